"""What the training loop carries across epochs, and its resume state ``last.pt``."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from camkit.core.dist import World
from camkit.core.errors import OptionError
from camkit.core.progress import Progress
from camkit.models.camnet import CAMNet
from camkit.models.checkpoint import load_state
from camkit.train.config import TrainConfig
from camkit.train.objectives import Objective

if TYPE_CHECKING:
    from camkit.train.callbacks import EarlyStopping

log = logging.getLogger(__name__)


@dataclass
class RunState:
    """The loop's progress: the first epoch to run, the best validation so far and the history."""

    start: int = 1
    best: dict[str, float] | None = None
    best_epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class EpochEnd:
    """One finished epoch, as the callbacks see it: ``record`` is its metrics row."""

    epoch: int
    record: dict[str, Any]
    val: dict[str, float]
    improved: bool
    overfit: bool
    stop: str | None = None  # set by a callback to end the run: "patience" | "overfit" | ...


@dataclass
class FitContext:
    """Everything one run of :func:`camkit.train.loop.fit` works with."""

    model: CAMNet
    net: torch.nn.Module  # ``model`` or its DDP wrapper: what the objective runs forward
    objective: Objective
    cfg: TrainConfig
    device: torch.device
    world: World
    progress: Progress
    opt: torch.optim.Optimizer
    sched: Any
    scaler: torch.amp.GradScaler
    amp_dtype: torch.dtype | None
    stopper: EarlyStopping
    names: list[str]
    extra_meta: dict[str, Any] = field(default_factory=dict)
    state: RunState = field(default_factory=RunState)


def resume_state(fit: FitContext, epoch: int) -> dict[str, Any]:
    """The ``last.pt`` contents after ``epoch``: model, optimizer, scheduler, selection, RNG."""
    st = fit.state
    return {
        "model": fit.model.state_dict(), "optimizer": fit.opt.state_dict(), "epoch": epoch,
        "scheduler": fit.sched.state_dict() if fit.sched is not None else None, "best": st.best,
        "best_epoch": st.best_epoch, "history": st.history, "rng": torch.get_rng_state(), "stale": fit.stopper.stale,
    }  # fmt: skip


def restore_state(fit: FitContext, path: Path) -> None:
    """Load ``path`` (written by :func:`resume_state`) into ``fit``: the run continues after
    the saved epoch exactly as if it had never stopped. Refuses a state of another model."""
    st = load_state(path)
    own = fit.model.state_dict()
    diff = [k for k in own if k not in st["model"] or tuple(st["model"][k].shape) != tuple(own[k].shape)]
    if diff:
        k = diff[0]
        found = tuple(st["model"][k].shape) if k in st["model"] else "missing"
        raise OptionError(
            "resume",
            f"{path} was saved for another model ({k}: {found} vs {tuple(own[k].shape)}); "
            "resume with the run's original backbone, layer and num_classes",
        )
    fit.model.load_state_dict(st["model"])
    fit.opt.load_state_dict(st["optimizer"])
    if fit.sched is not None and st.get("scheduler"):
        fit.sched.load_state_dict(st["scheduler"])
    fit.state = RunState(st["epoch"] + 1, st["best"], st["best_epoch"], list(st["history"]))
    torch.set_rng_state(st["rng"])
    fit.stopper.stale = int(st.get("stale", 0))
    log.info("resuming %s at epoch %d", path.parent, fit.state.start)
