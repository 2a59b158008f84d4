"""Weakly supervised segmentation from class map sets: seeds, their scores, and the
per-class peak IoU of Bae et al.

**Seeds** (IRN, Ahn et al. CVPR 2019; used by ReCAM and LPCAM): with the normalized maps of
the classes present in an image (ground-truth image labels, as in the papers' seed
evaluation) and a background threshold t, each pixel takes

    argmax over [t, CAM_k1, CAM_k2, ...]   -> 0 (background) or the class k + 1,

so a pixel is foreground iff its best class map exceeds t (ties go to background). The
class a foreground pixel gets does not depend on t, which makes the whole threshold sweep
one pass: a histogram over (bucket of the best map value, ground truth, best class), then
cumulative sums give the confusion matrix at every t exactly.

**Peak IoU per class** (Bae et al. Table 1): each (image, present class) pair's map is
resized to the mask, binarized at ``M' >= θ · ref`` with ref = max M' (CAM's rule) or the
98th percentile of M' (PaS), and compared with that class's mask; the mean IoU over pairs is
swept over θ and its peak reported.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset

from camkit.core.errors import CamkitError, OptionError
from camkit.core.mapfile import MapSet
from camkit.core.ops import normalize, percentile, spatial_size, upsample
from camkit.core.results import Result
from camkit.data import dataset_len
from camkit.metrics.iou import default_thresholds, iou_from_counts, sweep_counts
from camkit.metrics.segmentation import scores_from_confusion


def _masks(ds: Dataset, batch_size: int) -> Iterator[torch.Tensor]:
    for batch in DataLoader(ds, batch_size=batch_size, shuffle=False):
        yield batch["mask"].long()


def class_scores(maps: torch.Tensor, size: tuple[int, int], norm: str = "relu-max") -> torch.Tensor:
    """Raw (B, K, h, w) class maps -> normalized (per map), upsampled (B, K, H, W)."""
    b, k = maps.shape[:2]
    x = normalize(maps.float(), norm)
    return upsample(x.flatten(0, 1), size).view(b, k, *size)


def seed_masks(scores: torch.Tensor, present: torch.Tensor, bg_threshold: float) -> torch.Tensor:
    """IRN seeds: (B, K, H, W) normalized maps, (B, K) bool present classes, threshold ->
    (B, H, W) int64 with 0 = background and k + 1 for class k."""
    best, cls = _best_present(scores, present)
    return torch.where(best > bg_threshold, cls + 1, torch.zeros_like(cls))


def _best_present(scores: torch.Tensor, present: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per pixel, the best map among the present classes and its class: (B, K, H, W), (B, K)
    -> (B, H, W) values (-inf where no class is present) and (B, H, W) class ids."""
    return scores.masked_fill(~present[:, :, None, None].bool(), float("-inf")).max(1)


class SeedSweep:
    """The confusion matrix of the seeds at every background threshold, in one pass.

    ``update(scores (B, K, H, W), present (B, K), gt (B, H, W) class masks)``, then
    ``confusion()`` -> (T, K+1, K+1) int64 counts (rows ground truth). Pixels with ground truth
    ``ignore_index`` are skipped."""

    def __init__(self, num_classes: int, thresholds: torch.Tensor, ignore_index: int = 255) -> None:
        self.k = num_classes + 1
        self.thr = thresholds.double()
        self.ignore = ignore_index
        t = self.thr.numel()
        self.hist = torch.zeros((t + 1) * self.k * self.k, dtype=torch.int64)

    def update(self, scores: torch.Tensor, present: torch.Tensor, gt: torch.Tensor) -> None:
        best, cls = _best_present(scores, present)
        cls = torch.where(torch.isfinite(best), cls + 1, torch.zeros_like(cls))  # no class present: bg
        best = torch.where(torch.isfinite(best), best, torch.full_like(best, -1.0))
        g = gt.long()
        keep = g != self.ignore
        if bool(keep.any()) and (int(g[keep].min()) < 0 or int(g[keep].max()) >= self.k):
            raise CamkitError(f"mask class {int(g[keep].max())} out of range 0..{self.k - 1}")
        # bucket: how many thresholds lie strictly below the value (foreground at t_i iff i < bucket)
        # compared in the maps' own dtype, exactly as ``best > t`` in :func:`seed_masks`
        thr = self.thr.to(device=best.device, dtype=best.dtype)
        bucket = torch.searchsorted(thr, best[keep].contiguous(), right=False)
        idx = (bucket * self.k + g[keep]) * self.k + cls[keep]
        self.hist += torch.bincount(idx.flatten().cpu(), minlength=self.hist.numel())

    def confusion(self) -> torch.Tensor:
        t = self.thr.numel()
        h = self.hist.view(t + 1, self.k, self.k)
        # foreground at threshold i: buckets > i keep their class; the rest fall to background
        above = torch.flip(torch.cumsum(torch.flip(h, [0]), 0), [0])[1:]  # (T, K, K): buckets > i
        below = torch.cumsum(h, 0)[:-1]  # buckets <= i
        conf = above.clone()
        conf[:, :, 0] += below.sum(2)
        return conf


@dataclass(frozen=True)
class SeedScores(Result):
    """What :func:`score_seeds` measures: the scores at ``bg_threshold`` (mIoU with background;
    FP, FN, precision, recall over the foreground classes), the peak of the sweep, and the
    sweep itself (``miou_curve`` over ``thresholds``)."""

    bg_threshold: float
    peak_bg_threshold: float
    peak_miou: float
    miou: float
    fp: float
    fn: float
    precision: float
    recall: float
    pixel_accuracy: float
    per_class_iou: list[float]
    thresholds: list[float]
    miou_curve: list[float]
    norm: str
    images: int


@dataclass(frozen=True)
class ClassPeakIoU(Result):
    """What :func:`class_peak_iou` measures: the peak mean IoU over (image, class) pairs and
    its θ, and the curve (``miou_curve`` over ``thresholds``)."""

    peak_iou: float
    peak_theta: float
    reference: str
    pairs: int
    thresholds: list[float]
    miou_curve: list[float]


def score_seeds(
    ms: MapSet,
    ds: Dataset,
    bg_threshold: float | None = None,
    step: float = 0.01,
    norm: str = "relu-max",
    batch_size: int = 64,
) -> SeedScores:
    """Seed scores of a class map set against the class masks of ``ds`` (same order).

    Sweeps the background threshold over [0, 1) in ``step`` and reports the peak (mIoU with
    background, FP, FN, precision and recall over the foreground classes, as in LPCAM's
    Table 1), and the same scores at ``bg_threshold`` when given."""
    if not ms.per_class:
        raise OptionError("maps", "seeds need a class map set; extract on multi-label data (fashion-multi)")
    if len(ms) != dataset_len(ds):
        raise CamkitError(
            f"the map file has {len(ms)} maps but the split has {dataset_len(ds)} images; extract on the same split"
        )
    thr = default_thresholds(step)
    thr = thr[thr < 1.0]
    if bg_threshold is not None:
        if not 0.0 <= bg_threshold <= 1.0:
            raise OptionError("bg_threshold", "must be between 0 and 1", bg_threshold)
        thr = torch.unique(torch.cat([thr, torch.tensor([bg_threshold], dtype=torch.float64)]))
    k = ms.maps.shape[1]
    sweep = SeedSweep(k, thr)
    start = 0
    for gt in _masks(ds, batch_size):
        b = gt.shape[0]
        scores = class_scores(ms.maps[start : start + b], spatial_size(gt), norm)
        sweep.update(scores, ms.targets[start : start + b].bool(), gt)
        start += b
    conf = sweep.confusion()
    curve = [scores_from_confusion(c)["miou"] for c in conf]
    best = max(range(len(curve)), key=lambda i: curve[i])
    at = best if bg_threshold is None else int(torch.argmin((thr - bg_threshold).abs()))
    res = scores_from_confusion(conf[at])
    return SeedScores(
        bg_threshold=round(float(thr[at]), 6),
        peak_bg_threshold=round(float(thr[best]), 6),
        peak_miou=curve[best],
        miou=res["miou"],
        fp=res["fp"],
        fn=res["fn"],
        precision=res["precision"],
        recall=res["recall"],
        pixel_accuracy=res["pixel_accuracy"],
        per_class_iou=res["per_class"]["iou"],
        thresholds=[round(float(v), 6) for v in thr],
        miou_curve=curve,
        norm=norm,
        images=len(ms),
    )


def class_peak_iou(
    ms: MapSet,
    ds: Dataset,
    reference: str = "max",
    q: float = 98.0,
    step: float = 0.01,
    batch_size: int = 64,
) -> ClassPeakIoU:
    """Bae et al.'s peak IoU over every (image, present class) pair: binarize ``M' >= θ · ref``
    (ref = max, or the ``q``-th percentile with ``reference="percentile"``, PaS) and sweep θ
    over [0, 1]."""
    if not ms.per_class:
        raise OptionError("maps", "per-class peak IoU needs a class map set (multi-label data)")
    if reference not in ("max", "percentile"):
        raise OptionError("reference", "use max or percentile", reference)
    thr = default_thresholds(step)
    curves: list[torch.Tensor] = []
    start = 0
    for gt in _masks(ds, batch_size):
        b = gt.shape[0]
        s, c = torch.nonzero(ms.targets[start : start + b].bool(), as_tuple=True)
        scored = (gt[s] != 255).flatten(1).any(1)  # an image without a mask (all 255) is not scored
        s, c = s[scored], c[scored]
        if s.numel():
            raw = upsample(ms.maps[start : start + b][s, c].float(), spatial_size(gt))
            ref = raw.flatten(1).amax(1) if reference == "max" else percentile(raw, q)
            rel = torch.where(
                ref[:, None, None] > 0, raw / ref.clamp_min(1e-12)[:, None, None], torch.zeros_like(raw)
            )
            target = gt[s] == (c + 1)[:, None, None]
            rel = rel.masked_fill(gt[s] == 255, -1.0)  # ignored pixels (VOC's borders) are never predicted
            inter, pred, area = sweep_counts(rel, target, thr)
            curves.append(iou_from_counts(inter, pred - inter, area - inter).double())
        start += b
    if not curves:
        raise CamkitError("no image has a labelled class; nothing to score")
    per = torch.cat(curves)
    curve = per.mean(0)
    k = int(torch.argmax(curve))
    return ClassPeakIoU(
        peak_iou=float(curve[k]),
        peak_theta=round(float(thr[k]), 6),
        reference=reference,
        pairs=per.shape[0],
        thresholds=[round(float(v), 6) for v in thr],
        miou_curve=[float(v) for v in curve],
    )


def class_pair_masks(
    maps: torch.Tensor, targets: torch.Tensor, masks: torch.Tensor, norm: str = "relu-max"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One row per (image, class present), for drawing seeds: class maps (N, K, h, w) with
    multi-hot ``targets`` (N, K) and class masks (N, H, W) (0 background, class + 1 elsewhere)
    -> image indices (P,), class indices (P,), normalized scores (P, H, W) in [0, 1] and the
    class's ground-truth masks (P, H, W) bool."""
    s, c = torch.nonzero(targets.bool(), as_tuple=True)
    scores = class_scores(maps, (int(masks.shape[-2]), int(masks.shape[-1])), norm)[s, c]
    gt = masks.long()[s] == (c + 1)[:, None, None].to(masks.device)
    return s, c, scores, gt
