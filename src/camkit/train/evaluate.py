"""Classification losses and the validation/test evaluation of a classifier."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from camkit.core.errors import OptionError
from camkit.metrics.classification import Accuracy, MultiLabelMetrics
from camkit.models.camnet import CAMNet
from camkit.train.config import TrainConfig
from camkit.train.loaders import make_loader


def check_labels(labels: torch.Tensor, num_classes: int) -> None:
    """Refuse (B,) class ids outside 0..num_classes-1 and (B, K) multi-hot labels with K != num_classes."""
    if labels.ndim == 2:
        if labels.shape[1] != num_classes:
            raise OptionError(
                "num_classes",
                f"the multi-hot labels have {labels.shape[1]} classes; fix the class count",
                num_classes,
            )
        return
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        bad = int(labels.max()) if int(labels.max()) >= num_classes else int(labels.min())
        raise OptionError(
            "num_classes", f"label {bad} is out of range; fix the labels or the class count", num_classes
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


def correct(logits: torch.Tensor, y: torch.Tensor) -> int:
    """(B, K) logits vs (B,) or (B, K) targets: top-1 hits, or exact matches (every class right at logit > 0) for multi-hot targets."""
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
        check_labels(y, model.config.num_classes)
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


def better(new: dict[str, float], best: dict[str, float] | None) -> bool:
    """Is ``new`` a better validation result: higher mAP (multi-label) or accuracy, ties: lower loss."""
    if best is None:
        return True
    key = "map" if "map" in new else "accuracy"
    if new[key] != best[key]:
        return new[key] > best[key]
    return new["loss"] < best["loss"]
