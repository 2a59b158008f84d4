"""Score map sets against ground-truth masks, and the trivial baselines to compare with.

Per image: min-max normalize the raw map, upsample it bilinearly to the mask, threshold at
``t`` (foreground where ``map >= t``), and take the IoU with the mask. The mean IoU over
images is reported at a chosen threshold and over a sweep (0 to 1, step 0.01) with its peak.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from camkit.core.errors import CamkitError, OptionError
from camkit.core.mapfile import MapSet
from camkit.core.ops import masks_to_boxes, minmax, spatial_size, upsample
from camkit.core.results import Result
from camkit.data import dataset_len
from camkit.metrics.iou import default_thresholds, iou, iou_from_counts, sweep_counts
from camkit.metrics.segmentation import mean_scores, scores_from_confusion


def _mask_batches(
    ds: Dataset, batch_size: int, raw: bool = False
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(masks, has_mask) batches: masks bool, 255 (ignore) not foreground; ``raw``: as stored (uint8)."""
    for batch in DataLoader(ds, batch_size=batch_size, shuffle=False):
        m = batch["mask"]
        yield (m if raw else (m > 0) & (m != 255)), batch["has_mask"]


def normalized_maps(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Raw (B, h, w) maps -> min-max normalized, upsampled (B, H, W) in [0, 1]."""
    return upsample(minmax(maps.float()), size).clamp_(0, 1)


@dataclass(frozen=True)
class WsolScores(Result):
    """WSOL scores (%) of a map set (see camkit.metrics.wsol); None where nothing was scored.
    ``max_box_acc_threshold`` and ``max_box_acc_v2_per_iou`` are None (and left out of
    ``to_dict()``) when no image has a non-empty mask."""

    pxap: float | None
    pr_curve: dict[str, list[float]]
    max_box_acc: float | None = None
    max_box_acc_threshold: float | None = None
    gt_known_loc: float | None = None
    top1_loc: float | None = None
    max_box_acc_v2: float | None = None
    max_box_acc_v2_per_iou: dict[str, float] | None = None

    def _omitted(self) -> set[str]:
        return {k for k in ("max_box_acc_threshold", "max_box_acc_v2_per_iou") if getattr(self, k) is None}


@dataclass(frozen=True)
class MapScores(Result):
    """What :func:`score_maps` measures. Curves are over ``thresholds``; ``per_image_iou`` is
    at ``threshold``, one entry per image with a mask (``image_index``: its split position);
    ``segmentation``: the background/foreground scores there (miou, fp, fn, precision,
    recall, pixel_accuracy). ``to_dict()`` is flat: the WSOL fields sit beside the others."""

    threshold: float
    miou: float
    peak_iou: float
    peak_threshold: float
    images: int
    thresholds: list[float]
    miou_curve: list[float]
    per_image_iou: list[float]
    image_index: list[int]
    segmentation: dict[str, float]
    wsol: WsolScores | None = None

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        wsol = out.pop("wsol")
        extra = {k: out.pop(k) for k in self.__dict__.get("_extra", {})}
        return {**out, **(wsol or {}), **extra}


def score_maps(
    ms: MapSet,
    ds: Dataset,
    threshold: float | None = None,
    step: float = 0.01,
    batch_size: int = 128,
    wsol: bool = False,
) -> MapScores:
    """Score ``ms`` against the masks of ``ds`` (same order) in one pass over the maps.

    Always: mean IoU at ``threshold`` (None: at the peak), ``peak_iou``, ``peak_threshold``,
    the curve, the per-image IoU list at the reported threshold, and the background/foreground
    segmentation scores there (dataset-level mIoU, FP, FN, precision, recall). With ``wsol``: also PxAP,
    MaxBoxAcc (largest contour, IoU 0.5), MaxBoxAccV2 (all contours, IoU 0.3/0.5/0.7) and
    GT-known / top-1 localization, against each mask's tight box (see camkit.metrics.wsol).
    Memory is O(images × thresholds) for the per-image curves, never O(pixels).
    """
    from camkit.metrics.wsol import BoxAccuracy, PxAP

    if len(ms) != dataset_len(ds):
        raise CamkitError(
            f"the map file has {len(ms)} maps but the split has {dataset_len(ds)} images; extract on the same split"
        )
    thr = default_thresholds(step)
    if threshold is not None:
        if not 0.0 <= threshold <= 1.0:
            raise OptionError("threshold", "must be between 0 and 1", threshold)
        if not bool(((thr - threshold).abs() < 1e-6).any()):  # a grid value (up to rounding) is reused:
            # a near-duplicate would collapse with it in the maps' float32 and break the sweep
            thr = torch.unique(torch.cat([thr, torch.tensor([threshold], dtype=torch.float64)]))
    curves: list[torch.Tensor] = []
    scored: list[torch.Tensor] = []  # split positions of the images with a mask
    counts = torch.zeros(thr.numel(), 4, dtype=torch.int64)
    pxap, box_v1, box_v2 = (
        PxAP(step),
        BoxAccuracy(step, (50,)),
        BoxAccuracy(step, (30, 50, 70), multi_contour=True),
    )
    start = 0
    gt_boxes = getattr(ds, "gt_boxes", None)  # the data's own boxes (wsol), else each mask's tight box
    for raw, has in _mask_batches(ds, batch_size, raw=True):
        masks = (raw > 0) & (raw != 255)
        b = masks.shape[0]
        keep = has.bool()
        if keep.any():
            scored.append(torch.nonzero(keep, as_tuple=True)[0] + start)
            maps = normalized_maps(ms.maps[start : start + b][keep], spatial_size(masks))
            gt = masks[keep]
            inter, pred, area = sweep_counts(maps, gt, thr)
            curves.append(iou_from_counts(inter, pred - inter, area - inter).float())
            # dataset-level background/foreground confusion at every threshold: tp, fp, fn, tn
            pixels = gt[0].numel()
            counts += torch.stack([inter, pred - inter, area - inter, pixels - pred - area + inter], -1).sum(
                0
            )
            if wsol:
                own = None if gt_boxes is None else [gt_boxes[int(i)] for i in scored[-1]]
                ok = ms.preds[scored[-1]] == ms.labels[scored[-1]]
                _update_wsol(pxap, box_v1, box_v2, maps, raw[keep], ok, own)
        start += b
    if not curves:
        raise CamkitError(
            "no image of this split has a mask; give the dataset masks ({mask_root}, test_seg/) or pick a split that has them",
            refs={"mask_root": None},
        )
    per = torch.cat(curves)  # (N, T)
    curve = per.double().mean(0)
    k = int(torch.argmax(curve))
    t_idx = k if threshold is None else int(torch.argmin((thr - threshold).abs()))
    tp, fp, fn, tn = counts[t_idx].tolist()
    conf = torch.tensor([[tn, fp], [fn, tp]])  # rows: ground truth (background, foreground)
    return MapScores(
        threshold=round(float(thr[t_idx]), 6),
        miou=float(curve[t_idx]),
        peak_iou=float(curve[k]),
        peak_threshold=round(float(thr[k]), 6),
        images=per.shape[0],
        thresholds=[round(float(t), 6) for t in thr],
        miou_curve=[float(v) for v in curve],
        per_image_iou=[round(float(v), 6) for v in per[:, t_idx]],
        image_index=torch.cat(scored).tolist(),
        segmentation=mean_scores(scores_from_confusion(conf)),
        wsol=_wsol_scores(pxap, box_v1, box_v2, getattr(ds, "masks_from_boxes", False)) if wsol else None,
    )


def _update_wsol(
    pxap: Any,
    box_v1: Any,
    box_v2: Any,
    maps: torch.Tensor,
    gt: torch.Tensor,
    correct: torch.Tensor,
    own: list[np.ndarray] | None = None,
) -> None:
    """Feed one batch to the WSOL accumulators: normalized maps (B, H, W), masks (B, H, W)
    (1 object, 0 background, 255 ignored by PxAP), ``correct`` (B,) whether the class was
    predicted right. Boxes are ``own`` (per image (K, 4), the data's) or each mask's tight
    box; images with no box count for PxAP only."""
    pxap.update(maps, gt)
    boxes = (
        own if own is not None else [bx.numpy() for bx in masks_to_boxes(gt == 1)]
    )  # (K, 4); (0, 4) if none
    nonempty = [i for i, bx in enumerate(boxes) if len(bx)]
    if nonempty:
        idx = torch.tensor(nonempty)
        box_v1.update(maps[idx], [boxes[i] for i in nonempty], correct[idx])
        box_v2.update(maps[idx], [boxes[i] for i in nonempty], correct[idx])


def _wsol_scores(pxap: Any, box_v1: Any, box_v2: Any, no_pxap: bool = False) -> WsolScores:
    precision, recall = pxap.curve()
    pr = {
        "precision": [float(v) for v in np.nan_to_num(precision)],
        "recall": [float(v) for v in np.nan_to_num(recall)],
    }
    px = pxap.compute() if float(pxap.pos.sum()) > 0 and not no_pxap else None  # no_pxap: masks are boxes
    if not box_v1.count:
        return WsolScores(px, pr)
    v1, v2 = box_v1.compute(), box_v2.compute()
    return WsolScores(
        pxap=px,
        pr_curve=pr,
        max_box_acc=v1["max_box_acc"],
        max_box_acc_threshold=v1["per_iou"][50]["best_threshold"],
        gt_known_loc=v1["max_box_acc"],
        top1_loc=v1["per_iou"][50]["top1_loc"],
        max_box_acc_v2=v2["max_box_acc"],
        max_box_acc_v2_per_iou={str(d): v2["per_iou"][d]["max_box_acc"] for d in (30, 50, 70)},
    )


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
        for box in masks_to_boxes(masks[has.bool()]):
            if len(box):
                x0, y0, x1, y1 = box[0].tolist()
                hs.append(float(y1 - y0 + 1))
                ws.append(float(x1 - x0 + 1))
    if not hs:
        raise CamkitError("no masks to measure the mean object size from")
    return sum(hs) / len(hs), sum(ws) / len(ws)


@dataclass(frozen=True)
class BaselineScore(Result):
    """A threshold-free baseline's mean IoU (``peak_threshold`` is always None); ``box_hw``:
    the centred box's (height, width), None (and left out of ``to_dict()``) otherwise."""

    miou: float
    peak_iou: float
    peak_threshold: None = None
    box_hw: list[float] | None = None

    def _omitted(self) -> set[str]:
        return {"box_hw"} if self.box_hw is None else set()


@dataclass(frozen=True)
class BaselineScores(Result):
    """The two trivial baselines of :func:`baseline_scores`."""

    whole_image: BaselineScore
    centre_box: BaselineScore


def baseline_scores(ds: Dataset, box_hw: tuple[float, float], batch_size: int = 256) -> BaselineScores:
    """Mean IoU of the whole-image and centred-box baselines (threshold-free)."""
    whole, centre = [], []
    for masks, has in _mask_batches(ds, batch_size):
        masks = masks[has.bool()]
        if not len(masks):
            continue
        whole.append(whole_image_iou(masks))
        box = centre_box_mask(spatial_size(masks), box_hw).expand_as(masks)
        centre.append(iou(box, masks))
    w, c = torch.cat(whole).mean().item(), torch.cat(centre).mean().item()
    return BaselineScores(BaselineScore(w, w), BaselineScore(c, c, box_hw=list(box_hw)))


def folder_iou(pred_dir: str | Path, gt_dir: str | Path) -> dict[str, float]:
    """The lab's per-image IoU list: every mask in ``pred_dir`` against the mask of the same
    stem in ``gt_dir`` (binary masks, read as in camkit.data.folders). Returns {stem: IoU}."""
    from camkit.data.folders import IMAGE_EXTS, read_mask

    pred_dir, gt_dir = Path(pred_dir), Path(gt_dir)
    for d, opt in ((pred_dir, "pred_dir"), (gt_dir, "gt_dir")):
        if not d.is_dir():
            raise OptionError(opt, "folder not found", d)
    gts = {p.stem: p for p in gt_dir.iterdir() if p.suffix.lower() in IMAGE_EXTS}
    preds = sorted(p for p in pred_dir.iterdir() if p.suffix.lower() in IMAGE_EXTS)
    if not preds:
        raise OptionError("pred_dir", "no mask images found", pred_dir)
    out = {}
    for p in preds:
        if p.stem not in gts:
            raise OptionError("gt_dir", f"no mask named {p.stem}.* for {p.name}", gt_dir)
        a, b = read_mask(p), read_mask(gts[p.stem])
        if a.shape != b.shape:
            raise CamkitError(
                f"{p}: mask is {a.shape[1]}x{a.shape[0]} but {gts[p.stem].name} is {b.shape[1]}x{b.shape[0]}"
            )
        out[p.stem] = float(iou(torch.from_numpy(a)[None], torch.from_numpy(b)[None])[0])
    return out


@dataclass(frozen=True)
class ClassMapScores(Result):
    """What :func:`evaluate_class_maps` measures: the seeds' scores (a ``SeedScores``), the
    per-class peak IoU per reference ("max", "percentile": peak_iou, peak_theta, pairs,
    miou_curve) and the multi-label classification scores (exact_match, f1)."""

    method: str
    seeds: Any
    peak_iou: dict[str, dict[str, Any]]
    classification: dict[str, float]


def evaluate_class_maps(
    ms: MapSet, ds: Dataset, bg_threshold: float | None = None, step: float = 0.01, norm: str = "relu-max"
) -> ClassMapScores:
    """Class map sets (multi-label data, maps (N, K, h, w)): IRN seeds from the ground-truth
    image labels (at ``bg_threshold``, or the sweep's peak), the per-class peak IoU with the
    max and the PaS (98th percentile) reference, and the multi-label classification scores
    (F1, exact match) of the map file's predictions."""
    from camkit.metrics.classification import MultiLabelMetrics
    from camkit.wsss.seeds import class_peak_iou, score_seeds

    seeds = score_seeds(ms, ds, bg_threshold=bg_threshold, step=step, norm=norm)
    peak = {ref: class_peak_iou(ms, ds, ref, step=step) for ref in ("max", "percentile")}
    cls = MultiLabelMetrics()
    cls.update(ms.preds.float() * 2 - 1, ms.labels)  # predicted classes as logits of +-1
    scores = cls.compute()
    return ClassMapScores(
        method=ms.method,
        seeds=seeds,
        peak_iou={ref: {k: v for k, v in r.items() if k != "thresholds"} for ref, r in peak.items()},
        classification={"exact_match": scores["exact_match"], "f1": scores["f1"]},
    )


def map_classification(ms: MapSet) -> dict[str, object]:
    """Top-1 accuracy and confusion matrix (rows: true class) of a single-label map set's
    predictions over the images with a known label; empty when no label is known."""
    from camkit.metrics.classification import confusion

    known = ms.labels >= 0
    if not bool(known.any()):
        return {}
    names = ms.meta.get("class_names")
    k = max(len(names) if isinstance(names, list) else 0, int(ms.preds.max()) + 1, int(ms.labels.max()) + 1)
    return {
        "accuracy": float((ms.preds[known] == ms.labels[known]).float().mean()),
        "confusion_matrix": confusion(ms.preds[known], ms.labels[known], k).tolist(),
    }
