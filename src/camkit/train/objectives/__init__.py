"""Training objectives: the loss of one batch, one per training ``mode``.

An objective is a class registered by name (``@register("cam")``) in its own module of this
package; every module here is imported when the registry is first read, so a new mode is
exactly one new file. The training loop, the validation of ``mode`` and the CLI's ``--mode``
choices all read :func:`objective_names`.

An objective is built once per run, ``Objective(cfg, model, world)`` (it checks that the
model and settings fit the mode), then called once per batch::

    loss, logits, logs = objective(net, batch)

``net`` is the module to run forward (``model`` itself, or its DDP wrapper); ``batch`` holds
``image`` (B, 3, H, W) and ``label`` ((B,) class ids or (B, K) multi-hot) on the model's
device; ``loss`` is the scalar to minimize, ``logits`` (B, K) feed the training accuracy and
``logs`` are floats averaged over the epoch and recorded as ``train_<name>`` metrics.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch

from camkit.core.dist import World
from camkit.core.registry import Registry

if TYPE_CHECKING:
    from camkit.models.camnet import CAMNet, ModelConfig
    from camkit.train.config import TrainConfig

Batch = dict[str, torch.Tensor]
Step = tuple[torch.Tensor, torch.Tensor, dict[str, float]]


class Objective:
    """The loss of one batch for one training mode (see the module docstring)."""

    name: ClassVar[str] = ""
    #: run under the loop's mixed-precision autocast (``TrainConfig.amp``)
    autocast: ClassVar[bool] = True

    def __init__(self, cfg: TrainConfig, model: CAMNet, world: World) -> None:
        self.cfg, self.model, self.world = cfg, model, world

    @classmethod
    def configure(cls, model_cfg: ModelConfig) -> None:
        """Adjust the model settings this mode needs before the model is built (default: none)."""

    def __call__(self, net: torch.nn.Module, batch: Batch) -> Step:
        """``(loss, logits, logs)`` of one batch: a scalar, (B, K) and floats to record."""
        raise NotImplementedError(f"{type(self).__name__} must define __call__")


OBJECTIVES: Registry[type[Objective]] = Registry("training mode", option="mode", package=__name__)
register = OBJECTIVES.register


def objective_names() -> list[str]:
    """The registered training modes, sorted (the CLI's ``--mode`` choices)."""
    return sorted(OBJECTIVES.names())


def get_objective(mode: str) -> type[Objective]:
    """The objective class of ``mode``; an :class:`OptionError` on ``mode`` if unknown."""
    return OBJECTIVES.get(mode)


def build_objective(mode: str, cfg: TrainConfig, model: CAMNet, world: World | None = None) -> Objective:
    """``get_objective(mode)(cfg, model, world)``: the objective of one run, checked."""
    return get_objective(mode)(cfg, model, world or World())


__all__ = [
    "OBJECTIVES",
    "Batch",
    "Objective",
    "Step",
    "build_objective",
    "get_objective",
    "objective_names",
    "register",
]
