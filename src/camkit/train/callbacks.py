"""End-of-epoch callbacks of the training loop (:func:`camkit.train.loop.fit`).

A callback has two hooks, both optional (:class:`Callback`): ``on_epoch_end(fit, ep)`` after
each epoch's validation, and ``on_train_end(fit)`` once the loop is over. ``fit`` is the
run's :class:`~camkit.train.state.FitContext` (model, optimizer, the state carried across
epochs); ``ep`` the epoch's :class:`~camkit.train.state.EpochEnd` (its metrics row, whether
it improved, and ``stop``, which a callback sets to end the run). They run in list order:
:func:`default_callbacks` puts :class:`EarlyStopping` first (it decides ``stop``), then the
log line, then the files, the resume state before the metrics, so that an epoch that shows
in the metrics can always be resumed from.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from camkit.core.dist import World
from camkit.core.errors import OptionError
from camkit.core.io import atomic_path
from camkit.models.checkpoint import save_checkpoint, save_state
from camkit.train.config import TrainConfig
from camkit.train.state import EpochEnd, FitContext, resume_state

log = logging.getLogger(__name__)


class Callback:
    """The callback protocol; subclasses override the hooks they need."""

    def on_epoch_end(self, fit: FitContext, ep: EpochEnd) -> None:
        """After epoch ``ep.epoch`` is trained, validated and selected (or not)."""

    def on_train_end(self, fit: FitContext) -> None:
        """Once, after the last epoch (also after an early stop)."""


class EarlyStopping(Callback):
    """Stopping rules, checked after each epoch.

    * ``patience``: stop after that many epochs without a better validation accuracy.
    * ``overfit_ratio`` k (the Flower-17 study's guard, k = 2): stop once the validation loss
      exceeds k times the training loss; that epoch and later ones are never selected (the
      loop asks :meth:`overfit` before selecting).
    """

    def __init__(self, patience: int | None = None, overfit_ratio: float | None = None) -> None:
        self.patience = patience
        self.overfit_ratio = overfit_ratio
        self.stale = 0

    def overfit(self, train_loss: float, val_loss: float) -> bool:
        return self.overfit_ratio is not None and val_loss > self.overfit_ratio * train_loss

    def step(self, improved: bool) -> bool:
        """Record whether this epoch improved; True when patience has run out."""
        self.stale = 0 if improved else self.stale + 1
        return self.patience is not None and self.stale >= self.patience

    def on_epoch_end(self, fit: FitContext, ep: EpochEnd) -> None:
        if ep.overfit:
            ep.stop = "overfit"
        elif self.step(ep.improved):
            ep.stop = "patience"


class EpochLog(Callback):
    """One INFO line per epoch: losses, accuracies, best mark and speed."""

    def on_epoch_end(self, fit: FitContext, ep: EpochEnd) -> None:
        r = ep.record
        log.info(
            "epoch %d: train loss %.4f acc %.4f | val loss %.4f acc %.4f%s | %.0f images/s",
            ep.epoch,
            r["train_loss"],
            r["train_accuracy"],
            r["val_loss"],
            r["val_accuracy"],
            " (best)" if ep.improved else "",
            r["images_per_s"],
        )


class Checkpoints(Callback):
    """``best.safetensors`` when the epoch improved, ``epochs/epochNNN.safetensors`` with
    ``every_epoch``, and ``last.pt``, the resume state (model, optimizer, epoch, RNG)."""

    def __init__(self, run_dir: Path, every_epoch: bool = False) -> None:
        self.run_dir, self.every_epoch = run_dir, every_epoch

    def on_epoch_end(self, fit: FitContext, ep: EpochEnd) -> None:
        if ep.improved:
            best = self.run_dir / "best.safetensors"
            save_checkpoint(best, fit.model, fit.names, epoch=ep.epoch, val=ep.val, **fit.extra_meta)
        if self.every_epoch:
            path = self.run_dir / "epochs" / f"epoch{ep.epoch:03d}.safetensors"
            save_checkpoint(path, fit.model, fit.names, epoch=ep.epoch, val=ep.val)
        save_state(self.run_dir / "last.pt", resume_state(fit, ep.epoch))


class MetricsFiles(Callback):
    """``metrics.jsonl`` and ``metrics.csv``: the history so far, one row per epoch, each
    rewritten atomically."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir

    def on_epoch_end(self, fit: FitContext, ep: EpochEnd) -> None:
        history = fit.state.history
        with atomic_path(self.run_dir / "metrics.jsonl") as tmp:
            tmp.write_text("".join(json.dumps(r) + "\n" for r in history))
        with atomic_path(self.run_dir / "metrics.csv") as tmp:
            keys = list(history[0])
            tmp.write_text(
                ",".join(keys) + "\n" + "".join(",".join(str(r.get(k)) for k in keys) + "\n" for r in history)
            )


class TensorBoard(Callback):
    """Every metric of the epoch's row under ``tensorboard/`` (needs the tensorboard package)."""

    def __init__(self, run_dir: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise OptionError(
                "tensorboard", "needs the tensorboard package: pip install tensorboard"
            ) from None
        self.writer = SummaryWriter(str(run_dir / "tensorboard"))

    def on_epoch_end(self, fit: FitContext, ep: EpochEnd) -> None:
        for k, v in ep.record.items():
            if k != "epoch":
                self.writer.add_scalar(k, v, ep.epoch)
        self.writer.flush()

    def on_train_end(self, fit: FitContext) -> None:
        self.writer.close()


class Curves(Callback):
    """``curves.png``: the loss and accuracy curves of the whole run."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir

    def on_train_end(self, fit: FitContext) -> None:
        if fit.state.history:
            from camkit.viz.curves import plot_training

            plot_training(self.run_dir / "curves.png", fit.state.history, self.run_dir.name)


def default_callbacks(
    cfg: TrainConfig, run_dir: Path, world: World, stopper: EarlyStopping
) -> list[Callback]:
    """The standard list: ``stopper``, the log line, and on the main rank the checkpoints, the
    metrics files, TensorBoard (``cfg.tensorboard``) and the curves."""
    out: list[Callback] = [stopper, EpochLog()]
    if world.main:
        out += [Checkpoints(run_dir, cfg.save_every_epoch), MetricsFiles(run_dir)]
        if cfg.tensorboard:
            out.append(TensorBoard(run_dir))
        out.append(Curves(run_dir))
    return out


__all__ = [
    "Callback",
    "Checkpoints",
    "Curves",
    "EarlyStopping",
    "EpochLog",
    "MetricsFiles",
    "TensorBoard",
    "default_callbacks",
]
