"""The Flower-17 study's training: offline augmentation, frozen features computed once, and the
GAP + linear heads (CAM, ReCAM) trained on them, with the study's discard rule.

The backbone is frozen and kept in eval mode (:class:`~camkit.models.camnet.CAMNet` with
``freeze_backbone``), and the augmentation is offline (fixed copies, as the study's
``augment.py``), so the features of every training image are the same at every epoch and for
every model of the grid: computing them once and training the heads on them is the same
optimization as running the frozen network each step, at a fraction of the cost.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from torch.utils.data import DataLoader, Dataset

from camkit.models.camnet import CAMNet, CAMNetOutput
from camkit.models.heads import build_head
from camkit.train.callbacks import EarlyStopping
from camkit.train.recam import recam_loss

log = logging.getLogger(__name__)

TOPK = (1, 3, 5)


def augment_copy(
    images: torch.Tensor, gen: torch.Generator, rotate: float = 20.0, shift: float = 0.2
) -> torch.Tensor:
    """The study's offline augmentation of (B, 3, H, W) images: a random rotation in
    [-rotate, rotate] degrees, a random shift up to ``shift`` of each side, a horizontal flip
    with probability 0.5 (torchvision's RandomAffine + RandomHorizontalFlip), drawn from ``gen``."""
    from torchvision.transforms.v2 import functional as TF

    out = torch.empty_like(images)
    h, w = images.shape[-2:]
    for i in range(images.shape[0]):
        u = torch.rand(4, generator=gen).tolist()
        angle = (2 * u[0] - 1) * rotate
        tx, ty = round((2 * u[1] - 1) * shift * w), round((2 * u[2] - 1) * shift * h)
        img = TF.affine(images[i], angle=angle, translate=[tx, ty], scale=1.0, shear=[0.0, 0.0])
        out[i] = TF.horizontal_flip(img) if u[3] < 0.5 else img
    return out


@torch.no_grad()
def cache_features(
    model: CAMNet, ds: Dataset, copies: int = 1, seed: int = 0, batch_size: int = 64, device: str = "cpu"
) -> dict[str, torch.Tensor]:
    """Frozen features of ``ds`` and ``copies - 1`` augmented copies of each image (copy 0 is the
    image itself): {"features": (N * copies, C, h, w) float16, "labels": (N * copies,) int64}."""
    model.eval().to(device)
    gen = torch.Generator().manual_seed(seed)
    feats, labels = [], []
    for batch in DataLoader(ds, batch_size=batch_size, shuffle=False):
        x, y = batch["image"], batch["label"]
        for c in range(copies):
            xc = x if c == 0 else augment_copy(x, gen)
            feats.append(model.forward_features(xc.to(device)).half().cpu())
            labels.append(y)
    return {"features": torch.cat(feats), "labels": torch.cat(labels)}


def save_tensors(path: Path, d: dict[str, torch.Tensor]) -> None:
    """Write ``d`` as safetensors, atomically."""
    from camkit.core.io import atomic_path

    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in d.items()}, str(tmp))


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


class Head(nn.Module):
    """GAP + FC1 (+ ReCAM's FC2, no bias), the trainable part of a frozen-backbone CAMNet."""

    def __init__(self, channels: int, num_classes: int, fc2: bool) -> None:
        super().__init__()
        self.head = build_head("gap")
        self.classifier = nn.Linear(channels, num_classes)
        self.classifier2 = nn.Linear(channels, num_classes, bias=False) if fc2 else None

    def forward(self, f: torch.Tensor) -> CAMNetOutput:
        pooled = self.head(f)
        return CAMNetOutput(self.classifier(pooled), f, pooled)


def overfit(row: dict[str, float], ratio: float | None) -> bool:
    """The study's rule: an epoch is overfit when its training loss is below 1/``ratio`` of its
    validation loss (ratio 2: "training loss less than half of validation loss")."""
    return EarlyStopping(None, ratio).overfit(row["train_ce"], row["val_loss"])


def eligible_epochs(history: Sequence[dict[str, Any]], ratio: float | None) -> list[int]:
    """The epochs a model may be selected from: those before the first overfit epoch (the
    study discards every model from the first overfit one on, its Figure 7's vertical line)."""
    out = []
    for row in history:
        if overfit(row, ratio):
            break
        out.append(int(row["epoch"]))
    return out


def select_epoch(history: Sequence[dict[str, Any]], ratio: float | None) -> dict[str, Any] | None:
    """The history row of the best eligible epoch (val top-1, ties: lower val loss), or None
    when every epoch is overfit (the model is discarded)."""
    ok = set(eligible_epochs(history, ratio))
    rows = [r for r in history if int(r["epoch"]) in ok]
    return max(rows, key=lambda r: (r["top1"], -r["val_loss"])) if rows else None


@torch.no_grad()
def evaluate_head(
    head: Head, feats: torch.Tensor, labels: torch.Tensor, batch: int = 256
) -> dict[str, float]:
    """Mean cross-entropy of FC1 and top-1/3/5 accuracy on cached features (N, C, h, w)."""
    head.eval()
    dev = head.classifier.weight.device
    loss, hits, n = 0.0, torch.zeros(len(TOPK)), labels.shape[0]
    for i in range(0, n, batch):
        logits = head(feats[i : i + batch].to(dev).float()).logits
        y = labels[i : i + batch].to(dev)
        loss += float(F.cross_entropy(logits, y, reduction="sum"))
        top = logits.topk(min(max(TOPK), logits.shape[1]), dim=1).indices
        for j, k in enumerate(TOPK):
            hits[j] += (top[:, :k] == y[:, None]).any(1).sum().cpu()
    res = {"val_loss": loss / max(n, 1)}
    res.update({f"top{k}": float(hits[j]) / max(n, 1) for j, k in enumerate(TOPK)})
    return res


def train_head(
    train: dict[str, torch.Tensor],
    val: dict[str, torch.Tensor],
    num_classes: int,
    norm: str | None,
    lr: float,
    epochs: int,
    batch_size: int,
    seed: int,
    ratio: float | None,
    device: str | torch.device = "cpu",
) -> tuple[dict[str, Any], dict[str, torch.Tensor] | None]:
    """Adam on the cached features; ``norm`` None trains a CAM model (cross-entropy), else a
    ReCAM model (CE + L_sce with masks normalized by ``norm``). Every epoch is kept in the
    history; returns ({"history", "best"}, the best eligible epoch's head weights or None)."""
    torch.manual_seed(seed)
    f, y = train["features"].to(device).float(), train["labels"].to(device)
    pooled = f.mean((2, 3)) if norm is None else None  # CAM: GAP is linear, pool once
    head = Head(f.shape[1], num_classes, fc2=norm is not None).to(device)
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    history: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    state: dict[str, torch.Tensor] | None = None
    stopped = False
    for epoch in range(1, epochs + 1):
        head.train()
        order = torch.randperm(y.shape[0], generator=gen).to(device)
        tot = ce_tot = 0.0
        for i in range(0, y.shape[0], batch_size):
            idx = order[i : i + batch_size]
            if pooled is not None:
                ce = F.cross_entropy(head.classifier(pooled[idx]), y[idx])
                loss = ce
            else:
                out = head(f[idx])
                ce = F.cross_entropy(out.logits, y[idx])
                loss = ce + recam_loss(cast(Any, head), out, y[idx], str(norm))
            if not math.isfinite(loss.item()):
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot += loss.item() * idx.numel()
            ce_tot += ce.item() * idx.numel()
        row = {"epoch": epoch, "train_loss": tot / y.shape[0], "train_ce": ce_tot / y.shape[0]}
        row.update(evaluate_head(head, val["features"], val["labels"]))
        history.append(row)
        stopped = stopped or overfit(row, ratio)
        if not stopped and (
            best is None or (row["top1"], -row["val_loss"]) > (best["top1"], -best["val_loss"])
        ):
            best, state = row, {k: v.detach().cpu().clone() for k, v in head.state_dict().items()}
    return {"history": history, "best": best}, state


def load_head(model: CAMNet, state: dict[str, torch.Tensor]) -> CAMNet:
    """Put a trained head's FC1 (and FC2) into ``model`` (built with ``fc2=True``)."""
    model.classifier.load_state_dict(
        {k.split(".", 1)[1]: v for k, v in state.items() if k.startswith("classifier.")}
    )
    if model.classifier2 is not None:
        w2 = state.get("classifier2.weight")
        with torch.no_grad():
            model.classifier2.weight.copy_(
                w2 if w2 is not None else torch.zeros_like(model.classifier2.weight)
            )
    return model
