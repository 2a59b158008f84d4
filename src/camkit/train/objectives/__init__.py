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

import importlib
import pkgutil
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, TypeVar

import torch

from camkit.core.dist import World
from camkit.core.errors import OptionError, close_matches

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


ObjT = TypeVar("ObjT", bound=type[Objective])


class _Registry:
    """name -> objective class; refuses duplicates; imports this package's modules on first read."""

    def __init__(self) -> None:
        self.items: dict[str, type[Objective]] = {}
        self.loaded = False

    def register(self, name: str) -> Callable[[ObjT], ObjT]:
        def deco(cls: ObjT) -> ObjT:
            if name in self.items:
                raise ValueError(f"objective {name!r} is already registered by {self.items[name].__module__}")
            cls.name = name
            self.items[name] = cls
            return cls

        return deco

    def load(self) -> dict[str, type[Objective]]:
        if not self.loaded:
            self.loaded = True
            for mod in sorted(m.name for m in pkgutil.iter_modules(__path__)):
                importlib.import_module(f"{__name__}.{mod}")
        return self.items


_REGISTRY = _Registry()
register = _REGISTRY.register


def objective_names() -> list[str]:
    """The registered training modes, sorted (the CLI's ``--mode`` choices)."""
    return sorted(_REGISTRY.load())


def get_objective(mode: str) -> type[Objective]:
    """The objective class of ``mode``; an :class:`OptionError` on ``mode`` if unknown."""
    items = _REGISTRY.load()
    if mode not in items:
        raise OptionError(
            "mode", f"unknown training mode; choose one of {close_matches(mode, sorted(items))}", mode
        )
    return items[mode]


def build_objective(mode: str, cfg: TrainConfig, model: CAMNet, world: World | None = None) -> Objective:
    """``get_objective(mode)(cfg, model, world)``: the objective of one run, checked."""
    return get_objective(mode)(cfg, model, world or World())


__all__ = ["Batch", "Objective", "Step", "build_objective", "get_objective", "objective_names", "register"]
