"""The training loop: Adam, best checkpoint chosen on validation only.

One loop for every training mode: :func:`fit` is :func:`build_optimizer`,
:func:`~camkit.train.state.restore_state`, then per epoch :func:`train_one_epoch`,
:func:`evaluate_epoch` and the end-of-epoch callbacks (:mod:`camkit.train.callbacks`). The
loss of a batch comes from the ``mode``'s objective (:mod:`camkit.train.objectives`: ``cam``
is cross-entropy, or BCE for multi-label data; ``seg`` the SEG equivariance loss; ``recam``
BCE + ReCAM's L_sce on FC2). Multi-label runs select on validation mAP, single-label runs
on accuracy (ties: lower validation loss).

A run folder ``OUT/EXP_ID/`` holds:

* ``config.json``: the resolved :class:`RunConfig`;
* ``metrics.jsonl`` and ``metrics.csv``: one row per epoch (train/val loss and accuracy), and
  ``curves.png``, the loss and accuracy curves;
* ``best.safetensors``: the weights of the epoch with the best validation accuracy
  (ties: lower validation loss), with their metadata;
* ``epochs/epochNNN.safetensors``: every epoch's weights, with ``save_every_epoch``;
* ``last.pt``: the resume state (model, optimizer, epoch, RNG);
* ``summary.json``: the best epoch and, once, the test metrics of the best checkpoint.

The test split is never built before the best checkpoint is fixed.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from camkit.core.dist import World, all_sum, barrier, broadcast_object, device_for, resolve_device, setup
from camkit.core.errors import CamkitError, OptionError
from camkit.core.io import write_json
from camkit.core.progress import NoProgress, Progress
from camkit.core.runs import TrainingState, read_json, training_state
from camkit.data import dataset_len
from camkit.data.datasets import build_split, class_names
from camkit.models.camnet import CAMNet
from camkit.models.checkpoint import init_from_checkpoint, load_checkpoint
from camkit.train.callbacks import Callback, EarlyStopping, default_callbacks
from camkit.train.config import RunConfig, TrainConfig
from camkit.train.evaluate import better, check_labels, classification_loss, correct, evaluate_classifier
from camkit.train.loaders import GlobalBatchSampler, make_loader
from camkit.train.objectives import build_objective, get_objective
from camkit.train.optim import amp_dtype, build_optimizer, make_scheduler
from camkit.train.rundir import open_run_dir, write_run_provenance
from camkit.train.state import EpochEnd, FitContext, restore_state

log = logging.getLogger(__name__)

__all__ = [
    "EarlyStopping",
    "FitResult",
    "GlobalBatchSampler",
    "build_optimizer",
    "classification_loss",
    "evaluate_classifier",
    "fit",
    "make_loader",
    "make_scheduler",
    "train_one_epoch",
    "train_run",
]


@dataclass
class FitResult:
    best_epoch: int
    best_val: dict[str, float]
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped: dict[str, Any] | None = None  # {"epoch": e, "reason": "patience" | "overfit"}


def _place(model: CAMNet, cfg: TrainConfig, device: torch.device, world: World) -> torch.nn.Module:
    """Move ``model`` to ``device`` (NHWC with ``cfg.channels_last``); under torchrun, wrap it
    in DDP (gradients averaged over the ranks: the effective batch is world x batch)."""
    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    if not world.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def _step(fit: FitContext, loss: torch.Tensor, epoch: int) -> float:
    """One optimizer step on ``loss``; its value, refused if not finite."""
    lv = loss.item()
    if not math.isfinite(lv):
        raise OptionError(
            "lr", f"the loss became {lv} at epoch {epoch}; lower it or check the inputs for NaN", fit.cfg.lr
        )
    fit.opt.zero_grad(set_to_none=True)
    fit.scaler.scale(loss).backward()
    fit.scaler.step(fit.opt)
    fit.scaler.update()
    if fit.sched is not None:
        fit.sched.step()
    return lv


def train_one_epoch(fit: FitContext, train_ds: Dataset, epoch: int) -> dict[str, float]:
    """One pass over this rank's share of ``train_ds``; the epoch's ``train_loss``,
    ``train_accuracy``, ``train_<log>`` means of the objective's logs and ``images_per_s``,
    summed over every rank."""
    cfg, device, progress = fit.cfg, fit.device, fit.progress
    fit.model.train()
    loader = make_loader(train_ds, cfg, shuffle=True, epoch=epoch, world=fit.world)
    # counts are ints here; all_sum returns floats when the run is distributed
    seen: float = 0
    t0 = time.perf_counter()
    progress.start(len(loader), f"epoch {epoch}/{cfg.epochs}")
    tot: float = 0.0
    n: float = 0
    hits: float = 0
    logs: dict[str, float] = {}
    autocast = fit.amp_dtype is not None and fit.objective.autocast
    for batch in loader:
        x = batch["image"].to(device, non_blocking=True)
        y = batch["label"].to(device, non_blocking=True)
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        check_labels(y, fit.model.config.num_classes)
        with torch.autocast(device.type, dtype=fit.amp_dtype, enabled=autocast):
            loss, logits, parts = fit.objective(fit.net, {"image": x, "label": y})
        lv = _step(fit, loss, epoch)
        tot += lv * y.shape[0]
        n += y.shape[0]
        hits += correct(logits.detach(), y)
        seen += x.shape[0]
        for k, v in parts.items():
            logs[k] = logs.get(k, 0.0) + v * y.shape[0]
        progress.advance(1, loss=f"{tot / n:.3f}", acc=f"{hits / n:.3f}")
    progress.close()
    tot, n, hits, seen, *sums = all_sum(fit.world, [tot, n, hits, seen, *logs.values()])  # every rank
    speed = seen / max(time.perf_counter() - t0, 1e-9)
    out = {"train_loss": tot / n, "train_accuracy": hits / n}
    out.update({f"train_{k}": s / n for k, s in zip(logs, sums, strict=True)})
    return {**out, "images_per_s": speed}


def evaluate_epoch(fit: FitContext, val_ds: Dataset, epoch: int, train: dict[str, float]) -> EpochEnd:
    """Validate after ``epoch`` (rank 0; every rank takes its numbers, so all make the same
    decisions), append the metrics row to the history and select: an epoch improves when it
    is not overfit and beats the best validation so far."""
    val = broadcast_object(
        fit.world,
        evaluate_classifier(fit.model, val_ds, fit.cfg, fit.device, ks=(1, 3, 5)) if fit.world.main else None,
    )
    assert val is not None  # rank 0 (main) always evaluates, and every rank receives its result
    rec: dict[str, Any] = {
        "epoch": epoch,
        "train_loss": train["train_loss"],
        "train_accuracy": train["train_accuracy"],
    }
    rec.update({"val_loss": val["loss"], "val_accuracy": val["accuracy"]})
    rec.update({f"val_{k}": val[k] for k in ("top3", "top5", "f1", "map") if k in val})
    rec.update({k: v for k, v in train.items() if k not in rec})  # the objective's logs, then images_per_s
    st = fit.state
    st.history.append(rec)
    overfit = fit.stopper.overfit(rec["train_loss"], val["loss"])
    improved = not overfit and better(val, st.best)
    if improved:
        st.best, st.best_epoch = val, epoch
    return EpochEnd(epoch, rec, val, improved, overfit)


def _context(
    model: CAMNet,
    n_train: int,
    cfg: TrainConfig,
    names: list[str],
    mode: str,
    world: World,
    progress: Progress | None,
    extra_meta: dict[str, Any] | None,
) -> FitContext:
    """Everything one :func:`fit` works with: the objective of ``mode`` (checked against the
    model), the model on its device, the optimizer, schedule and loss scaler."""
    objective = build_objective(mode, cfg, model, world)
    device = resolve_device(device_for(world, cfg.device))
    net = _place(model, cfg, device, world)
    amp = amp_dtype(cfg.amp, device)
    opt = build_optimizer(model, cfg)
    steps = cfg.epochs * math.ceil(n_train / (cfg.batch_size * world.size))
    return FitContext(
        model=model,
        net=net,
        objective=objective,
        cfg=cfg,
        device=device,
        world=world,
        progress=(progress or NoProgress()) if world.main else NoProgress(),
        opt=opt,
        sched=make_scheduler(opt, cfg, steps),
        scaler=torch.amp.GradScaler(device.type, enabled=amp == torch.float16),
        amp_dtype=amp,
        stopper=EarlyStopping(cfg.patience, cfg.overfit_ratio),
        names=names,
        extra_meta=dict(extra_meta or {}),
    )


def fit(
    model: CAMNet,
    train_ds: Dataset,
    val_ds: Dataset,
    cfg: TrainConfig,
    run_dir: Path,
    names: list[str],
    progress: Progress | None = None,
    extra_meta: dict[str, Any] | None = None,
    mode: str = "cam",
    world: World | None = None,
    callbacks: list[Callback] | None = None,
) -> FitResult:
    """Train ``model`` on ``train_ds`` with the objective registered as ``mode``
    (:func:`camkit.train.objectives.objective_names`); keep the checkpoint with the best
    ``val_ds`` accuracy (mAP for multi-label data). ``callbacks`` run after the standard
    ones (:func:`camkit.train.callbacks.default_callbacks`) at the end of every epoch."""
    cfg.validate()
    if dataset_len(train_ds) == 0 or dataset_len(val_ds) == 0:
        raise CamkitError("the train or val split is empty; give the dataset more images")
    ctx = _context(model, dataset_len(train_ds), cfg, names, mode, world or World(), progress, extra_meta)
    world, stopper = ctx.world, ctx.stopper
    cbs = default_callbacks(cfg, run_dir, world, stopper) + list(callbacks or [])
    if cfg.resume:
        restore_state(ctx, run_dir / "last.pt")
    stopped = None
    for epoch in range(ctx.state.start, cfg.epochs + 1):
        ep = evaluate_epoch(ctx, val_ds, epoch, train_one_epoch(ctx, train_ds, epoch))
        for cb in cbs:
            cb.on_epoch_end(ctx, ep)
        barrier(world)
        if ep.stop:
            stopped = {"epoch": epoch, "reason": ep.stop}
            log.info("stopping after epoch %d (%s)", epoch, ep.stop)
            break
    for cb in cbs:
        cb.on_train_end(ctx)
    if ctx.state.best is None:
        raise OptionError(
            "overfit_ratio",
            f"no epoch was eligible: validation loss exceeded {cfg.overfit_ratio} x training loss from the start; raise it",
            cfg.overfit_ratio,
        )
    return FitResult(ctx.state.best_epoch, ctx.state.best, ctx.state.history, stopped)


@contextlib.contextmanager
def _no_debris(run_dir: Path, world: World, new: bool) -> Iterator[None]:
    """A new run that fails before its first epoch is saved (bad weights, layer or data)
    leaves no folder behind: only the config.json and provenance.json written at its start are there."""
    try:
        yield
    except BaseException:
        start = {"config.json", "provenance.json"}
        if new and world.main and run_dir.is_dir() and {p.name for p in run_dir.iterdir()} <= start:
            for name in start:
                (run_dir / name).unlink(missing_ok=True)
            run_dir.rmdir()
        raise


def train_run(cfg: RunConfig, progress: Progress | None = None) -> dict[str, Any]:
    """A full training run: fit on train, select on val, then test the best checkpoint once.

    Under torchrun every rank trains its share of each epoch (DDP); rank 0 alone writes the
    run folder and runs the final test."""
    cfg.train.validate()
    objective = get_objective(cfg.mode)
    world = setup(cfg.train.device)
    names = class_names(cfg.data)
    if cfg.model.num_classes != len(names):
        log.info("setting num_classes to %d from the dataset", len(names))
        cfg.model.num_classes = len(names)
    objective.configure(cfg.model)
    run_dir = open_run_dir(cfg, world)
    with _no_debris(run_dir, world, new=not cfg.train.resume):
        train_ds, val_ds = build_split(cfg.data, "train"), build_split(cfg.data, "val")
        write_run_provenance(run_dir, cfg, {"train": train_ds, "val": val_ds}, world)
        torch.manual_seed(cfg.train.seed)
        model = CAMNet(cfg.model)
        if cfg.train.init and not cfg.train.resume:
            fresh = init_from_checkpoint(model, cfg.train.init)
            log.info(
                "initialized from %s%s", cfg.train.init, f" (fresh: {', '.join(fresh)})" if fresh else ""
            )
        result = fit(model, train_ds, val_ds, cfg.train, run_dir, names, progress, mode=cfg.mode, world=world)
    summary: dict[str, Any] = {
        "best_epoch": result.best_epoch,
        "val": result.best_val,
        "run_dir": str(run_dir),
    }
    if result.stopped:
        summary["stopped"] = result.stopped
    if world.distributed:
        summary["world_size"] = world.size
    if world.main:
        if cfg.train.test:
            device = resolve_device(device_for(world, cfg.train.device))
            best, _ = load_checkpoint(run_dir / "best.safetensors", cfg.model, device)
            test_ds = build_split(cfg.data, "test")
            summary["test"] = evaluate_classifier(best, test_ds, cfg.train, device, ks=(1, 3, 5))
        write_json(run_dir / "summary.json", summary)
    return broadcast_object(world, summary)


def train_or_reuse(cfg: RunConfig, progress: Progress | None = None) -> dict[str, Any]:
    """The summary of the run ``cfg`` names: read back when the run has finished, else
    trained, resuming from its resume state when there is one (sweeps and studies rerun
    after an interruption this way)."""
    run_dir = Path(cfg.train.out) / cfg.train.exp_id
    state = training_state(run_dir)
    if state is TrainingState.DONE:
        log.info("%s is done; reusing it", run_dir)
        return dict(read_json(run_dir / "summary.json"))
    cfg.train.resume = state is TrainingState.RESUME
    log.info("%s %s", "resuming" if cfg.train.resume else "training", run_dir)
    return train_run(cfg, progress)
