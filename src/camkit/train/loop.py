"""The training loop: Adam, best checkpoint chosen on validation only.

The loss is cross-entropy for single-label data and BCE (with logits, averaged over the
classes) for multi-label data; ``mode="seg"`` adds the SEG equivariance term and
``mode="recam"`` ReCAM's L_sce on FC2 (:mod:`camkit.train.recam`). Multi-label runs select
on validation mAP, single-label runs on accuracy (ties: lower validation loss).

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

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from camkit.core.dist import World, all_sum, barrier, broadcast_object, device_for, resolve_device, setup
from camkit.core.errors import CamkitError
from camkit.core.io import atomic_path, write_json
from camkit.core.progress import NoProgress, Progress
from camkit.data.datasets import build_split, class_names
from camkit.metrics.classification import Accuracy, MultiLabelMetrics
from camkit.models.camnet import CAMNet
from camkit.models.checkpoint import (
    describe_mismatch,
    init_from_checkpoint,
    load_checkpoint,
    load_state,
    save_checkpoint,
    save_state,
)
from camkit.train.config import RunConfig, TrainConfig
from camkit.train.recam import recam_loss
from camkit.train.seg import parse_transform, seg_loss

log = logging.getLogger(__name__)


class EarlyStopping:
    """Stopping rules, checked after each epoch.

    * ``patience``: stop after that many epochs without a better validation accuracy.
    * ``overfit_ratio`` k (the Flower-17 study's guard, k = 2): stop once the validation loss
      exceeds k times the training loss; that epoch and later ones are never selected.
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


@dataclass
class FitResult:
    best_epoch: int
    best_val: dict[str, float]
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped: dict[str, Any] | None = None  # {"epoch": e, "reason": "patience" | "overfit"}


def make_loader(
    ds: Dataset, cfg: TrainConfig, shuffle: bool, epoch: int = 0, world: World | None = None
) -> DataLoader:
    """The loader of one epoch: a seeded shuffle (the same for a seed and epoch), and under
    torchrun each rank's share of it (:class:`GlobalBatchSampler`, per-rank batch ``cfg.batch_size``)."""
    world = world or World()
    pin = cfg.pin_memory if cfg.pin_memory is not None else torch.cuda.is_available()
    if shuffle:  # one code path for 1 and N processes, so they see the same global batches
        order = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
        sampler = GlobalBatchSampler(len(ds), cfg.batch_size, world, order)
        base = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch + 50_000)  # workers' seeds only
        return DataLoader(
            ds,
            batch_size=cfg.batch_size,
            sampler=sampler,
            generator=base,
            num_workers=cfg.workers,
            pin_memory=pin,
        )
    return DataLoader(ds, batch_size=cfg.batch_size, shuffle=False, num_workers=cfg.workers, pin_memory=pin)


class GlobalBatchSampler(torch.utils.data.Sampler[int]):
    """Rank r's share of each *global* batch of ``world.size x batch_size`` images, drawn from
    the same seeded permutation a single process uses: global batch k is perm[k·W·B : (k+1)·W·B]
    and rank r takes its r-th slice of B. DDP averages the ranks' mean gradients, so a step
    sees exactly the images (and gradient) of one single-process step of batch W·B. The last
    global batch is padded by wrapping around, so every rank runs the same number of steps."""

    def __init__(self, n: int, batch_size: int, world: World, generator: torch.Generator) -> None:
        self.n, self.b, self.world, self.gen = n, batch_size, world, generator

    def _order(self) -> list[int]:
        perm = torch.randperm(self.n, generator=self.gen).tolist()
        step = self.b * self.world.size
        if self.world.distributed:
            perm += perm[: (-len(perm)) % step]
        out: list[int] = []
        for k in range(0, len(perm), step):
            out += perm[k + self.world.rank * self.b : k + (self.world.rank + 1) * self.b]
        return out

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._order())

    def __len__(self) -> int:
        if not self.world.distributed:
            return self.n
        return -(-self.n // (self.b * self.world.size)) * self.b


def _tensorboard(run_dir: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise CamkitError("--tensorboard needs the tensorboard package: pip install tensorboard") from None
    return SummaryWriter(str(run_dir / "tensorboard"))


def make_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig, steps: int) -> Any:
    """The per-batch learning-rate schedule named by ``cfg.schedule`` (None for constant)."""
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1))
    if cfg.schedule == "step":
        per_epoch = max(1, steps // max(cfg.epochs, 1))
        return torch.optim.lr_scheduler.StepLR(
            opt, step_size=cfg.step_epochs * per_epoch, gamma=cfg.step_gamma
        )
    if cfg.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=[g["lr"] for g in opt.param_groups], total_steps=max(steps, 1), pct_start=0.25
        )
    return None


MODES = ("cam", "seg", "recam")


def _check_labels(labels: torch.Tensor, num_classes: int) -> None:
    if labels.ndim == 2:
        if labels.shape[1] != num_classes:
            raise CamkitError(
                f"multi-hot labels have {labels.shape[1]} classes but the model has {num_classes}; fix --num-classes"
            )
        return
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        bad = int(labels.max()) if int(labels.max()) >= num_classes else int(labels.min())
        raise CamkitError(
            f"label {bad} is out of range for --num-classes {num_classes}; fix the labels or the class count"
        )


def classification_loss(
    logits: torch.Tensor, y: torch.Tensor, label_smoothing: float = 0.0, reduction: str = "mean"
) -> torch.Tensor:
    """Cross-entropy for (B,) class ids; BCE with logits, averaged over the K classes, for
    (B, K) multi-hot targets (ReCAM's L_bce)."""
    if y.ndim == 2:
        loss = F.binary_cross_entropy_with_logits(logits, y.to(logits.dtype), reduction="none").mean(1)
        return loss.mean() if reduction == "mean" else loss.sum()
    return F.cross_entropy(logits, y, label_smoothing=label_smoothing, reduction=reduction)


def _correct(logits: torch.Tensor, y: torch.Tensor) -> int:
    """Top-1 hits, or exact matches (every class right at logit > 0) for multi-hot targets."""
    if y.ndim == 2:
        return int(((logits > 0) == (y > 0.5)).all(1).sum())
    return int((logits.argmax(1) == y).sum())


@torch.no_grad()
def evaluate_classifier(
    model: CAMNet, ds: Dataset, cfg: TrainConfig, device: torch.device, ks: tuple[int, ...] = (1,)
) -> dict[str, float]:
    """Mean loss and accuracy of ``model`` on ``ds`` (eval mode, restored after).

    Single-label: cross-entropy and top-k accuracy. Multi-label: BCE, ``accuracy`` (exact
    match), micro ``f1`` and ``map`` (mean average precision)."""
    was = model.training
    model.eval()
    acc, multi = Accuracy(ks), MultiLabelMetrics()
    total, n, is_multi = 0.0, 0, False
    for batch in make_loader(ds, cfg, shuffle=False):
        x, y = batch["image"].to(device), batch["label"].to(device)
        _check_labels(y, model.config.num_classes)
        logits = model(x).logits
        total += float(classification_loss(logits, y, reduction="sum"))
        n += y.shape[0]
        if y.ndim == 2:
            is_multi = True
            multi.update(logits, y)
        else:
            acc.update(logits, y)
    model.train(was)
    out = {"loss": total / max(n, 1)}
    if is_multi:
        m = multi.compute()
        out.update({"accuracy": m["exact_match"], "f1": m["f1"], "map": m["map"]})
    else:
        out.update({("accuracy" if k == "top1" else k): v for k, v in acc.compute().items()})
    return out


def _better(new: dict[str, float], best: dict[str, float] | None) -> bool:
    if best is None:
        return True
    key = "map" if "map" in new else "accuracy"
    if new[key] != best[key]:
        return new[key] > best[key]
    return new["loss"] < best["loss"]


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
) -> FitResult:
    """Train ``model`` on ``train_ds``; keep the checkpoint with the best ``val_ds`` accuracy.

    ``mode="cam"``: cross-entropy (BCE for multi-hot labels). ``mode="seg"``: the two-branch
    equivariance loss of :mod:`camkit.train.seg` with ``cfg.seg_transforms`` and weight
    ``cfg.seg_weight``. ``mode="recam"``: L_bce + ``cfg.recam_weight`` · L_sce on FC2, masks
    normalized by ``cfg.recam_norm`` (:mod:`camkit.train.recam`).
    """
    cfg.validate()
    if mode not in MODES:
        raise CamkitError(f"--mode {mode}: use one of {', '.join(MODES)}")
    if mode == "recam" and getattr(model, "classifier2", None) is None:
        raise CamkitError("--mode recam: the model has no FC2; build it with ModelConfig(fc2=True)")
    transforms = [parse_transform(t) for t in cfg.seg_transforms] if mode == "seg" else []
    if mode == "seg" and not transforms:
        raise CamkitError("--mode seg needs at least one --transform (e.g. scale:0.5)")
    world = world or World()
    progress = (progress or NoProgress()) if world.main else NoProgress()
    device = resolve_device(device_for(world, cfg.device))
    if world.distributed and mode == "seg":
        raise CamkitError("--mode seg runs in one process for now; start it without torchrun")
    if len(train_ds) == 0 or len(val_ds) == 0:
        raise CamkitError("the train or val split is empty; give the dataset more images")
    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    net: torch.nn.Module = model
    if world.distributed:  # gradients are averaged over the ranks; the effective batch is world x batch
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    amp_dtype = _amp_dtype(cfg.amp, device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    backbone = getattr(model, "backbone", None)
    ids = {id(p) for p in backbone.parameters()} if backbone is not None else set()
    groups = [
        {
            "params": [p for p in model.parameters() if p.requires_grad and id(p) in ids],
            "lr": cfg.lr * cfg.backbone_lr_mult,
        },
        {"params": [p for p in model.parameters() if p.requires_grad and id(p) not in ids], "lr": cfg.lr},
    ]
    opt = torch.optim.Adam([g for g in groups if g["params"]], lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * math.ceil(len(train_ds) / (cfg.batch_size * world.size))
    sched = make_scheduler(opt, cfg, steps)
    start, best, best_epoch, history = 1, None, 0, []
    stopper, stopped = EarlyStopping(cfg.patience, cfg.overfit_ratio), None
    writer = _tensorboard(run_dir) if cfg.tensorboard and world.main else None
    state_path = run_dir / "last.pt"
    if cfg.resume:
        st = load_state(state_path)
        own = model.state_dict()
        diff = [k for k in own if k not in st["model"] or tuple(st["model"][k].shape) != tuple(own[k].shape)]
        if diff:
            k = diff[0]
            found = tuple(st["model"][k].shape) if k in st["model"] else "missing"
            raise CamkitError(
                f"--resume: {state_path} was saved for another model ({k}: {found} vs {tuple(own[k].shape)}); "
                "resume with the run's original --backbone/--layer/--num-classes"
            )
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        if sched is not None and st.get("scheduler"):
            sched.load_state_dict(st["scheduler"])
        start, best, best_epoch, history = st["epoch"] + 1, st["best"], st["best_epoch"], list(st["history"])
        torch.set_rng_state(st["rng"])
        stopper.stale = int(st.get("stale", 0))
        log.info("resuming %s at epoch %d", run_dir, start)
    for epoch in range(start, cfg.epochs + 1):
        model.train()
        loader = make_loader(train_ds, cfg, shuffle=True, epoch=epoch, world=world)
        seen, t0 = 0, time.perf_counter()
        progress.start(len(loader), f"epoch {epoch}/{cfg.epochs}")
        tot, n, correct = 0.0, 0, 0
        for batch in loader:
            x = batch["image"].to(device, non_blocking=True)
            y = batch["label"].to(device, non_blocking=True)
            if cfg.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            _check_labels(y, model.config.num_classes)
            if transforms:  # SEG mode: the two-branch equivariance loss
                if y.ndim == 2:
                    raise CamkitError(
                        "--mode seg: multi-label data is not supported; use --mode cam or recam"
                    )
                loss, _, logits = seg_loss(model, x, y, transforms, cfg.seg_weight, cfg.label_smoothing)
            else:
                with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                    out = net(x)
                    logits = out.logits
                    loss = classification_loss(logits.float(), y, cfg.label_smoothing)
                    if mode == "recam":
                        loss = loss + cfg.recam_weight * recam_loss(model, out, y, cfg.recam_norm)
            lv = loss.item()
            if not math.isfinite(lv):
                raise CamkitError(
                    f"the loss became {lv} at epoch {epoch}; lower --lr or check the inputs for NaN"
                )
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            if sched is not None:
                sched.step()
            tot += lv * y.shape[0]
            n += y.shape[0]
            correct += _correct(logits.detach(), y)
            seen += x.shape[0]
            progress.advance(1, loss=f"{tot / n:.3f}", acc=f"{correct / n:.3f}")
        progress.close()
        tot, n, correct, seen = all_sum(world, [tot, n, correct, seen])  # the epoch over every rank
        speed = seen / max(time.perf_counter() - t0, 1e-9)
        # rank 0 validates; every rank takes its numbers, so all make the same decisions
        val = broadcast_object(
            world, evaluate_classifier(model, val_ds, cfg, device, ks=(1, 3, 5)) if world.main else None
        )  # type: ignore[assignment]
        rec = {
            "epoch": epoch,
            "train_loss": tot / n,
            "train_accuracy": correct / n,
            "val_loss": val["loss"],
            "val_accuracy": val["accuracy"],
        }
        for key in ("top3", "top5", "f1", "map"):
            if key in val:
                rec[f"val_{key}"] = val[key]
        history.append(rec)
        overfit = stopper.overfit(rec["train_loss"], val["loss"])
        improved = not overfit and _better(val, best)
        rec["images_per_s"] = speed
        if improved:
            best, best_epoch = val, epoch
        if improved and world.main:
            save_checkpoint(
                run_dir / "best.safetensors", model, names, epoch=epoch, val=val, **(extra_meta or {})
            )
        if cfg.save_every_epoch and world.main:
            save_checkpoint(
                run_dir / "epochs" / f"epoch{epoch:03d}.safetensors", model, names, epoch=epoch, val=val
            )
        log.info(
            "epoch %d: train loss %.4f acc %.4f | val loss %.4f acc %.4f%s | %.0f images/s",
            epoch,
            rec["train_loss"],
            rec["train_accuracy"],
            val["loss"],
            val["accuracy"],
            " (best)" if improved else "",
            speed,
        )
        if writer is not None and world.main:
            for k, v in rec.items():
                if k != "epoch":
                    writer.add_scalar(k, v, epoch)
            writer.flush()
        if world.main:
            _write_epoch_files(run_dir, history, state_path, {
                "model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch,
                "scheduler": sched.state_dict() if sched is not None else None, "best": best,
                "best_epoch": best_epoch, "history": history, "rng": torch.get_rng_state(), "stale": stopper.stale,
            })  # fmt: skip
        barrier(world)
        if overfit or stopper.step(improved):
            stopped = {"epoch": epoch, "reason": "overfit" if overfit else "patience"}
            log.info("stopping after epoch %d (%s)", epoch, stopped["reason"])
            break
    if writer is not None:
        writer.close()
    if history and world.main:
        from camkit.viz.curves import plot_training

        plot_training(run_dir / "curves.png", history, run_dir.name)
    if best is None:
        raise CamkitError(
            f"no epoch was eligible: validation loss exceeded {cfg.overfit_ratio} x training loss from the start; raise --overfit-ratio"
        )
    return FitResult(best_epoch, best, history, stopped)


def _write_epoch_files(
    run_dir: Path, history: list[dict[str, Any]], state_path: Path, state: dict[str, Any]
) -> None:
    """The resume state, then metrics.jsonl and metrics.csv, each written atomically. The state
    goes first, so an epoch that shows in the metrics can always be resumed from."""
    save_state(state_path, state)
    with atomic_path(run_dir / "metrics.jsonl") as tmp:
        tmp.write_text("".join(json.dumps(r) + "\n" for r in history))
    with atomic_path(run_dir / "metrics.csv") as tmp:
        keys = list(history[0])
        tmp.write_text(
            ",".join(keys) + "\n" + "".join(",".join(str(r.get(k)) for k in keys) + "\n" for r in history)
        )


def _amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """Mixed precision: ``auto`` is bf16 on GPUs that have it (else fp16 with loss scaling)
    and off on CPUs; ``bf16``/``fp16`` force it; ``off`` disables it."""
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return None
    if amp == "fp16":
        return torch.float16
    if amp == "bf16" or (device.type == "cuda" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return torch.float16


def prepare_run_dir(cfg: RunConfig) -> Path:
    """Create (or, with resume, reopen) the run folder; never overwrite a finished run."""
    run_dir = Path(cfg.train.out) / cfg.train.exp_id
    if cfg.train.resume:
        if not (run_dir / "last.pt").is_file():
            raise CamkitError(f"--resume: {run_dir}/last.pt not found; start the run without --resume")
    elif (run_dir / "best.safetensors").exists() or (run_dir / "last.pt").exists():
        raise CamkitError(
            f"--exp-id {cfg.train.exp_id}: {run_dir} already holds a run; pass --resume or choose another --exp-id"
        )
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CamkitError(
            f"--out {cfg.train.out}: cannot create {run_dir} ({e.strerror}); choose a writable folder"
        ) from None
    return run_dir


def train_run(cfg: RunConfig, progress: Progress | None = None) -> dict[str, Any]:
    """A full training run: fit on train, select on val, then test the best checkpoint once.

    Under torchrun every rank trains its share of each epoch (DDP); rank 0 alone writes the
    run folder and runs the final test."""
    cfg.train.validate()
    world = setup(cfg.train.device)
    names = class_names(cfg.data)
    if cfg.model.num_classes != len(names):
        log.info("setting num_classes to %d from the dataset", len(names))
        cfg.model.num_classes = len(names)
    if cfg.mode == "recam" and not cfg.model.fc2:
        log.info("--mode recam: adding FC2 to the model")
        cfg.model.fc2 = True
    err = None
    if world.main:  # one rank checks and prepares the folder; the others learn the outcome
        try:
            run_dir = prepare_run_dir(cfg)
            _check_resume(cfg, run_dir)
            write_json(run_dir / "config.json", cfg.to_dict())
        except CamkitError as e:
            err = str(e)
    err = broadcast_object(world, err)  # type: ignore[assignment]
    if err:
        raise CamkitError(err)
    run_dir = Path(cfg.train.out) / cfg.train.exp_id
    train_ds, val_ds = build_split(cfg.data, "train"), build_split(cfg.data, "val")
    torch.manual_seed(cfg.train.seed)
    model = CAMNet(cfg.model)
    if cfg.train.init and not cfg.train.resume:
        fresh = init_from_checkpoint(model, cfg.train.init)
        log.info("initialized from %s%s", cfg.train.init, f" (fresh: {', '.join(fresh)})" if fresh else "")
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
            summary["test"] = evaluate_classifier(
                best, build_split(cfg.data, "test"), cfg.train, device, ks=(1, 3, 5)
            )
        write_json(run_dir / "summary.json", summary)
    return broadcast_object(world, summary)  # type: ignore[return-value]


def _check_resume(cfg: RunConfig, run_dir: Path) -> None:
    if cfg.train.resume and (run_dir / "config.json").is_file():
        before = RunConfig.from_dict(json.loads((run_dir / "config.json").read_text())).model
        diff = describe_mismatch(cfg.model.arch(), before.arch())
        if diff:
            raise CamkitError(
                f"--resume: {run_dir} holds another model: {diff}; resume with the run's settings"
            )
