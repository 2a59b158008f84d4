"""Semantic-segmentation scores from a confusion matrix (VOC style: class 0 is background).

For class c with tp, fp, fn pixels (rows of the confusion matrix are ground truth, columns
predictions; pixels labelled ``ignore_index`` are skipped):

* IoU_c = tp / (tp + fp + fn); mIoU averages every class, background included;
* FP_c = fp / (tp + fp + fn) and FN_c = fn / (tp + fp + fn), the shares of the union that are
  false positives and false negatives, so IoU_c + FP_c + FN_c = 1;
* precision_c = tp / (tp + fp), recall_c = tp / (tp + fn).

FP, FN, precision and recall are averaged over the foreground classes (1..K-1), as in the
evaluation code behind LPCAM's Table 1 (Chen et al., CVPR 2023), where mIoU keeps background.
Classes absent from both prediction and ground truth are left out of every mean (no NaN).
"""

from __future__ import annotations

from typing import TypedDict

import torch

from camkit.core.errors import CamkitError, OptionError
from camkit.metrics.iou import iou_from_counts


def confusion_matrix(
    pred: torch.Tensor, gt: torch.Tensor, num_classes: int, ignore_index: int = 255
) -> torch.Tensor:
    """(B, H, W) int predictions and labels -> (K, K) int64 counts, rows = ground truth."""
    if pred.shape != gt.shape:
        raise CamkitError(f"prediction and mask sizes differ: {tuple(pred.shape)} vs {tuple(gt.shape)}")
    g, p = gt.flatten().long(), pred.flatten().long()
    keep = g != ignore_index
    g, p = g[keep], p[keep]
    if g.numel() and (int(g.min()) < 0 or int(g.max()) >= num_classes):
        raise OptionError(
            "num_classes",
            f"mask class {int(g.max())} out of range 0..{num_classes - 1}; fix the masks or the class count",
            num_classes,
        )
    if p.numel() and (int(p.min()) < 0 or int(p.max()) >= num_classes):
        raise CamkitError(f"predicted class {int(p.max())} out of range 0..{num_classes - 1}")
    return (
        torch.bincount(g * num_classes + p, minlength=num_classes * num_classes)
        .view(num_classes, num_classes)
        .cpu()
    )


class PerClassScores(TypedDict):
    """Per-class lists, index = class id (0 = background)."""

    iou: list[float]
    fp: list[float]
    fn: list[float]
    precision: list[float]
    recall: list[float]
    present: list[bool]


class SegmentationScores(TypedDict):
    """What :func:`scores_from_confusion` returns: the means, then ``per_class``."""

    miou: float
    fp: float
    fn: float
    precision: float
    recall: float
    pixel_accuracy: float
    per_class: PerClassScores


def mean_scores(s: SegmentationScores) -> dict[str, float]:
    """The means of ``s`` (everything but ``per_class``), in the same order."""
    return {
        "miou": s["miou"],
        "fp": s["fp"],
        "fn": s["fn"],
        "precision": s["precision"],
        "recall": s["recall"],
        "pixel_accuracy": s["pixel_accuracy"],
    }


def scores_from_confusion(conf: torch.Tensor) -> SegmentationScores:
    """IoU, FP, FN, precision and recall per class and their means (see module docstring)."""
    conf = conf.to(torch.float64)
    tp = conf.diag()
    gt = conf.sum(1)
    pr = conf.sum(0)
    union = gt + pr - tp
    present = union > 0

    def ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
        return torch.where(den > 0, num / den.clamp(min=1), torch.zeros_like(num))

    iou, fp, fn = (
        iou_from_counts(tp, pr - tp, gt - tp, empty=0.0),
        ratio(pr - tp, union),
        ratio(gt - tp, union),
    )
    precision, recall = ratio(tp, pr), ratio(tp, gt)
    fg = present.clone()
    fg[0] = False

    def mean(v: torch.Tensor, m: torch.Tensor) -> float:
        return float(v[m].mean()) if bool(m.any()) else 0.0

    return {
        "miou": mean(iou, present),
        "fp": mean(fp, fg),
        "fn": mean(fn, fg),
        "precision": mean(ratio(tp, pr), fg & (pr > 0)),
        "recall": mean(recall, fg & (gt > 0)),
        "pixel_accuracy": float(tp.sum() / conf.sum().clamp(min=1)),
        "per_class": {
            "iou": iou.tolist(), "fp": fp.tolist(), "fn": fn.tolist(),
            "precision": precision.tolist(), "recall": recall.tolist(), "present": present.tolist(),
        },
    }  # fmt: skip


class SegmentationConfusion:
    """Streaming confusion matrix: ``update(pred, gt)``, then ``compute()``."""

    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.conf = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, pred: torch.Tensor, gt: torch.Tensor) -> None:
        self.conf += confusion_matrix(pred, gt, self.num_classes, self.ignore_index)

    def compute(self) -> SegmentationScores:
        return scores_from_confusion(self.conf)
