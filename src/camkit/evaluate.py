"""Score map sets against ground-truth masks, and the trivial baselines to compare with.

Per image: min-max normalize the raw map, upsample it bilinearly to the mask, threshold at
``t`` (foreground where ``map >= t``), and take the IoU with the mask. The mean IoU over
images is reported at a chosen threshold and over a sweep (0 to 1, step 0.01) with its peak.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset

from camkit.errors import CamkitError
from camkit.maps import MapSet
from camkit.metrics.iou import default_thresholds, iou, iou_curve
from camkit.ops import minmax, upsample


def _mask_batches(ds: Dataset, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    for batch in DataLoader(ds, batch_size=batch_size, shuffle=False):
        yield batch["mask"].bool(), batch["has_mask"]


def normalized_maps(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Raw (B, h, w) maps -> min-max normalized, upsampled (B, H, W) in [0, 1]."""
    return upsample(minmax(maps.float()), size).clamp_(0, 1)


def score_maps(
    ms: MapSet, ds: Dataset, threshold: float | None = None, step: float = 0.01, batch_size: int = 128
) -> dict[str, object]:
    """Mean IoU of ``ms`` against the masks of ``ds`` (same order), swept over thresholds.

    Returns ``miou`` at ``threshold`` (None: at the peak), ``peak_iou``, ``peak_threshold``,
    the curve, and the per-image IoU list at the reported threshold. One pass over the maps;
    memory is O(images × thresholds) for the per-image curves, never O(pixels).
    """
    if len(ms) != len(ds):
        raise CamkitError(
            f"the map file has {len(ms)} maps but the split has {len(ds)} images; extract on the same split"
        )
    thr = default_thresholds(step)
    if threshold is not None:
        if not 0.0 <= threshold <= 1.0:
            raise CamkitError(f"--threshold {threshold}: must be between 0 and 1")
        thr = torch.unique(torch.cat([thr, torch.tensor([threshold], dtype=torch.float64)]))
    curves: list[torch.Tensor] = []
    start = 0
    for masks, has in _mask_batches(ds, batch_size):
        b = masks.shape[0]
        keep = has.bool()
        if keep.any():
            maps = normalized_maps(ms.maps[start : start + b][keep], tuple(masks.shape[-2:]))
            curves.append(iou_curve(maps, masks[keep], thr).float())
        start += b
    if not curves:
        raise CamkitError("no image of this split has a mask; pass a split with masks (e.g. --split test)")
    per = torch.cat(curves)  # (N, T)
    curve = per.double().mean(0)
    k = int(torch.argmax(curve))
    t_idx = k if threshold is None else int(torch.argmin((thr - threshold).abs()))
    return {
        "threshold": round(float(thr[t_idx]), 6),
        "miou": float(curve[t_idx]),
        "peak_iou": float(curve[k]),
        "peak_threshold": round(float(thr[k]), 6),
        "images": per.shape[0],
        "thresholds": [round(float(t), 6) for t in thr],
        "miou_curve": [float(v) for v in curve],
        "per_image_iou": [round(float(v), 6) for v in per[:, t_idx]],
    }


def whole_image_iou(masks: torch.Tensor) -> torch.Tensor:
    """IoU of the all-foreground prediction: object area / image area. (B, H, W) -> (B,)."""
    return iou(torch.ones_like(masks, dtype=torch.bool), masks)


def centre_box_mask(size: tuple[int, int], box_hw: tuple[float, float]) -> torch.Tensor:
    """(H, W) bool: a box of height×width ``box_hw`` (pixels) centred in the image."""
    h, w = size
    bh, bw = min(h, round(box_hw[0])), min(w, round(box_hw[1]))
    y0, x0 = (h - bh) // 2, (w - bw) // 2
    m = torch.zeros(size, dtype=torch.bool)
    m[y0 : y0 + bh, x0 : x0 + bw] = True
    return m


def mean_box_size(ds: Dataset, batch_size: int = 256) -> tuple[float, float]:
    """Mean (height, width) of the masks' tight boxes over a split (e.g. train)."""
    hs, ws = [], []
    for masks, has in _mask_batches(ds, batch_size):
        for m in masks[has.bool()]:
            ys, xs = torch.nonzero(m, as_tuple=True)
            if ys.numel():
                hs.append(float(ys.max() - ys.min() + 1))
                ws.append(float(xs.max() - xs.min() + 1))
    if not hs:
        raise CamkitError("no masks to measure the mean object size from")
    return sum(hs) / len(hs), sum(ws) / len(ws)


def baseline_scores(
    ds: Dataset, box_hw: tuple[float, float], batch_size: int = 256
) -> dict[str, dict[str, float]]:
    """Mean IoU of the whole-image and centred-box baselines (threshold-free)."""
    whole, centre = [], []
    for masks, has in _mask_batches(ds, batch_size):
        masks = masks[has.bool()]
        if not len(masks):
            continue
        whole.append(whole_image_iou(masks))
        box = centre_box_mask(tuple(masks.shape[-2:]), box_hw).expand_as(masks)
        centre.append(iou(box, masks))
    w, c = torch.cat(whole).mean().item(), torch.cat(centre).mean().item()
    return {
        "whole_image": {"miou": w, "peak_iou": w, "peak_threshold": None},
        "centre_box": {"miou": c, "peak_iou": c, "peak_threshold": None, "box_hw": list(box_hw)},
    }
