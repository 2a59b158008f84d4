"""Intersection over union between predicted and ground-truth masks.

Convention: a pixel is predicted foreground when ``map >= threshold``. When both the
prediction and the ground truth are empty, the IoU is 1 (nothing to find, nothing found);
when only one is empty it is 0. Results never contain NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from camkit.core.errors import CamkitError
from camkit.core.results import Result


def _check(pred: torch.Tensor, gt: torch.Tensor) -> None:
    if pred.shape != gt.shape:
        raise CamkitError(f"map and mask sizes differ: {tuple(pred.shape)} vs {tuple(gt.shape)}")


def iou_from_counts(tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor, empty: float = 1.0) -> torch.Tensor:
    """IoU = tp / (tp + fp + fn) from pixel (or box-area) counts of any, equal shape.

    Where the union tp + fp + fn is 0 (nothing predicted, nothing to find) the IoU is
    ``empty``: 1 for per-image IoU (the module's convention), 0 where such a class is left
    out of the mean anyway (semantic segmentation). The division is torch's: integer counts
    give float32 (torch's default float), float counts keep their dtype. Never NaN.
    """
    union = tp + fp + fn
    ratio = tp / union.clamp(min=1)
    return torch.where(union > 0, ratio, torch.full_like(ratio, empty))


def iou(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Per-image IoU of boolean masks. (B, H, W), (B, H, W) -> (B,) float32."""
    _check(pred, gt)
    pred, gt = pred.bool().flatten(1), gt.bool().flatten(1)
    return iou_from_counts((pred & gt).sum(1), (pred & ~gt).sum(1), (~pred & gt).sum(1))


def default_thresholds(step: float = 0.01) -> torch.Tensor:
    """Thresholds 0, step, 2·step, …, up to 1 inclusive (float64 for exact comparisons)."""
    n = int(round(1.0 / step))
    return torch.arange(n + 1, dtype=torch.float64) * step


def sweep_counts(maps: torch.Tensor, gt: torch.Tensor, thresholds: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Pixel counts at every threshold in one pass (a histogram, then reverse cumulative sums).

    maps: (B, H, W) float scores; gt: (B, H, W) bool; thresholds: (T,) ascending.
    Returns (inter, pred, gt_area), each (B, T) int64, where pred[b, t] counts pixels with
    ``map >= thresholds[t]`` (compared in the maps' dtype) and inter[b, t] those of them
    inside the ground truth.
    """
    _check(maps, gt)
    if torch.isnan(maps).any():
        raise CamkitError("the maps contain NaN; check the model's outputs")
    b, t = maps.shape[0], thresholds.numel()
    # compare in the maps' own dtype, exactly as ``maps >= t`` would
    thr = thresholds.to(device=maps.device, dtype=maps.dtype)
    if t > 1 and not bool((thr[1:] > thr[:-1]).all()):
        raise CamkitError("thresholds must be strictly increasing")
    # bucket j of a pixel: the number of thresholds <= v (0: below them all); int32 keeps the
    # memory traffic low. Image b's buckets go to bins b*(T+1) + j, ground-truth pixels to a
    # second block of B*(T+1) bins, so one bincount makes both histograms.
    n = b * (t + 1)
    idx = torch.bucketize(maps.flatten(1), thr, right=True, out_int32=True)
    idx += (torch.arange(b, dtype=torch.int32, device=maps.device) * (t + 1))[:, None]
    g = gt.flatten(1)
    idx += g.to(torch.int32) * n
    hist = torch.bincount(idx.flatten(), minlength=2 * n)
    hist_bg, hist_fg = hist[:n].view(b, t + 1)[:, 1:], hist[n:].view(b, t + 1)[:, 1:]
    hist_all = hist_bg + hist_fg
    pred = hist_all.flip(1).cumsum(1).flip(1)
    inter = hist_fg.flip(1).cumsum(1).flip(1)
    area = g.sum(1, keepdim=True).expand(b, t)
    return inter, pred, area


def iou_curve(maps: torch.Tensor, gt: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """Per-image IoU at every threshold. (B, H, W), (B, H, W), (T,) -> (B, T) float64."""
    inter, pred, area = sweep_counts(maps, gt, thresholds)
    return iou_from_counts(inter, pred - inter, area - inter).double()


@dataclass(frozen=True)
class IoUCurve(Result):
    """Mean IoU over images at every threshold (``miou_curve`` over ``thresholds``), its peak
    and the threshold of the peak."""

    thresholds: list[float]
    miou_curve: list[float]
    peak_iou: float
    peak_threshold: float
    images: int


class IoUSweep:
    """Streaming mean IoU over images at every threshold; memory O(T), not O(images).

    ``update(maps, masks)`` with (B, H, W) maps in [0, 1] and bool masks; ``compute()``
    returns the thresholds, the mean-IoU curve, the peak IoU and its threshold.
    """

    def __init__(self, thresholds: torch.Tensor | None = None) -> None:
        self.thresholds = default_thresholds() if thresholds is None else thresholds.to(torch.float64)
        self.total = torch.zeros(self.thresholds.numel(), dtype=torch.float64)
        self.count = 0

    def update(self, maps: torch.Tensor, masks: torch.Tensor) -> None:
        curve = iou_curve(maps, masks.bool(), self.thresholds)
        self.total += curve.sum(0).cpu()
        self.count += curve.shape[0]

    def compute(self) -> IoUCurve:
        if self.count == 0:
            raise CamkitError("no images with masks were scored; check that the split has masks")
        curve = self.total / self.count
        k = int(torch.argmax(curve))
        return IoUCurve(
            thresholds=[round(float(t), 6) for t in self.thresholds],
            miou_curve=[float(v) for v in curve],
            peak_iou=float(curve[k]),
            peak_threshold=round(float(self.thresholds[k]), 6),
            images=self.count,
        )

    def miou_at(self, threshold: float) -> float:
        """Mean IoU at the grid threshold nearest to ``threshold``."""
        k = int(torch.argmin((self.thresholds - threshold).abs()))
        return float(self.total[k] / max(self.count, 1))
