"""The pointing games.

* Pointing game (Zhang et al., "Top-down neural attention by excitation backprop", IJCV 2018),
  with TorchRay's protocol: the point is the map's maximum (the first one in row-major order
  on ties, as ``torch.argmax``); it is a *hit* when some object pixel lies at Euclidean
  distance strictly below ``tolerance`` pixels (``dy² + dx² < tolerance²``, TorchRay's
  acceptance disc; default 15 px), or when the point is on the object itself (which only
  matters for ``tolerance = 0``, where that is the whole test). Scores are 1 (hit) or 0.
  Over a dataset TorchRay reports the mean of the per-class accuracies; :class:`PointingGame`
  gives that, each class's accuracy and the overall hit rate.
* Energy-based pointing game (Wang et al., Score-CAM, CVPRW 2020): the share of the map's
  energy inside the object, ``Σ_{in} E / Σ E`` with E the map clamped at 0 (negative values
  carry no energy). With boxes, the box covers rows y0..y1 and columns x0..x1: Score-CAM's
  reference code indexes the map as ``[x0:x1, y0:y1]`` (transposed), which this does not.

Masks are (B, H, W), nonzero on the object; maps are (B, H, W) at the same size. Empty masks,
and for the energy game maps with no positive value, are skipped (see ``metrics.masked``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from camkit.core.errors import OptionError
from camkit.core.ops import spatial_size
from camkit.core.results import Result
from camkit.metrics.masked import MaskScores, boxes_to_masks, check_maps_masks


def _check_tolerance(tolerance: float) -> None:
    if not tolerance >= 0:
        raise OptionError("tolerance", "must be a distance in pixels, 0 or more", tolerance)


def map_peaks(maps: torch.Tensor) -> torch.Tensor:
    """The (row, column) of each map's maximum (the first on ties). (B, H, W) -> (B, 2) int64."""
    w = maps.shape[-1]
    idx = maps.flatten(1).argmax(1)
    return torch.stack([idx // w, idx % w], 1)


def pointing_game(maps: torch.Tensor, masks: torch.Tensor, tolerance: float = 15) -> MaskScores:
    """Pointing-game hits of (B, H, W) maps against (B, H, W) object masks.

    Returns per-image scores 1.0 (hit) / 0.0 (miss); images with empty masks are skipped."""
    _check_tolerance(tolerance)
    gt = check_maps_masks(maps, masks)
    b, h, w = maps.shape
    peak = map_peaks(maps)
    py, px = peak[:, 0, None, None], peak[:, 1, None, None]  # (B, 1, 1)
    ys = torch.arange(h, device=maps.device)[None, :, None]
    xs = torch.arange(w, device=maps.device)[None, None, :]
    d2 = (ys - py) ** 2 + (xs - px) ** 2  # (B, H, W) squared distance to the peak
    near = (gt & (d2 < tolerance**2)).flatten(1).any(1)
    on = gt.flatten(1).gather(1, (peak[:, 0] * w + peak[:, 1])[:, None])[:, 0]
    return MaskScores.of((near | on).to(maps.dtype), gt.flatten(1).any(1))


def pointing_game_boxes(
    maps: torch.Tensor, boxes: torch.Tensor | Sequence[torch.Tensor], tolerance: float = 15
) -> MaskScores:
    """:func:`pointing_game` against boxes: (B, 4) or B tensors (K_i, 4), inclusive
    (x0, y0, x1, y1); a hit counts against any of an image's boxes."""
    return pointing_game(maps, boxes_to_masks(boxes, spatial_size(maps), maps.device), tolerance)


def energy_pointing_game(maps: torch.Tensor, masks: torch.Tensor) -> MaskScores:
    """Share in [0, 1] of each (B, H, W) map's energy (values clamped at 0) inside its object
    mask. Images with an empty mask or no positive map value are skipped."""
    gt = check_maps_masks(maps, masks)
    e = maps.clamp(min=0).flatten(1)
    total = e.sum(1)
    inside = (e * gt.flatten(1)).sum(1)
    valid = gt.flatten(1).any(1) & (total > 0)
    return MaskScores.of(inside / total.clamp_min(torch.finfo(e.dtype).tiny), valid)


def energy_pointing_game_boxes(
    maps: torch.Tensor, boxes: torch.Tensor | Sequence[torch.Tensor]
) -> MaskScores:
    """:func:`energy_pointing_game` inside the union of each image's boxes ((B, 4) or B tensors
    (K_i, 4), inclusive x0, y0, x1, y1)."""
    return energy_pointing_game(maps, boxes_to_masks(boxes, spatial_size(maps), maps.device))


@dataclass(frozen=True)
class PointingResult(Result):
    """Pointing game over a dataset: ``per_class`` accuracy of each class seen, ``accuracy``
    their mean (TorchRay's number), ``overall`` the hit rate over all scored images,
    ``hits``/``scored`` counts and ``skipped`` (images with empty masks)."""

    per_class: dict[int, float]
    accuracy: float | None
    overall: float | None
    hits: int
    scored: int
    skipped: int


class PointingGame:
    """Streaming pointing game: :meth:`update` with batches, :meth:`compute` at the end."""

    def __init__(self, tolerance: float = 15) -> None:
        _check_tolerance(tolerance)
        self.tolerance = tolerance
        self.hits: dict[int, int] = {}
        self.counts: dict[int, int] = {}
        self.skipped = 0

    def update(self, maps: torch.Tensor, masks: torch.Tensor, labels: torch.Tensor) -> MaskScores:
        """Score a batch: (B, H, W) maps and masks, (B,) class ids. Returns the batch's scores."""
        r = pointing_game(maps, masks, self.tolerance)
        for k, hit, ok in zip(labels.tolist(), r.scores.tolist(), r.valid.tolist(), strict=True):
            if ok:
                self.hits[k] = self.hits.get(k, 0) + int(hit)
                self.counts[k] = self.counts.get(k, 0) + 1
        self.skipped += r.skipped
        return r

    def compute(self) -> PointingResult:
        per_class = {k: self.hits[k] / self.counts[k] for k in sorted(self.counts)}
        hits, scored = sum(self.hits.values()), sum(self.counts.values())
        return PointingResult(
            per_class=per_class,
            accuracy=sum(per_class.values()) / len(per_class) if per_class else None,
            overall=hits / scored if scored else None,
            hits=hits,
            scored=scored,
            skipped=self.skipped,
        )
