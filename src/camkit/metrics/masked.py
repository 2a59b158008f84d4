"""What the mask-based scores (pointing games, relevance mass and rank) share: the input
checks, boxes drawn as masks, and the per-image result with its skip count.

An image whose mask is empty (or whose map carries no energy, for the ratios) has no score:
it is *skipped*, counted in ``skipped``, and its entry of ``scores`` is 0 with ``valid``
False. No score is ever NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from camkit.core.errors import CamkitError
from camkit.core.results import Result


@dataclass(frozen=True)
class MaskScores(Result):
    """Per-image scores: ``scores`` (B,) float (0 where skipped), ``valid`` (B,) bool,
    ``skipped`` the number of images without a score, ``mean`` the mean over the valid ones
    (None when none is)."""

    scores: torch.Tensor
    valid: torch.Tensor
    skipped: int
    mean: float | None

    @staticmethod
    def of(scores: torch.Tensor, valid: torch.Tensor) -> MaskScores:
        """Wrap (B,) scores and their (B,) validity; skipped entries become 0."""
        scores = torch.where(valid, scores, torch.zeros_like(scores))
        n = int(valid.sum())
        mean = float(scores.sum() / n) if n else None
        return MaskScores(scores, valid, int(valid.numel() - n), mean)


def check_maps_masks(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Check (B, H, W) maps against (B, H, W) masks; return the masks as bool (nonzero = object)."""
    if maps.ndim != 3:
        raise CamkitError(f"maps must be (B, H, W), got {tuple(maps.shape)}")
    if tuple(masks.shape) != tuple(maps.shape):
        raise CamkitError(
            f"maps {tuple(maps.shape)} and masks {tuple(masks.shape)} differ in size; "
            "upsample the maps to the mask size first"
        )
    if torch.isnan(maps).any():
        raise CamkitError("the maps contain NaN; check the model's outputs")
    return masks.bool()


def boxes_to_masks(
    boxes: torch.Tensor | Sequence[torch.Tensor], size: tuple[int, int], device: torch.device | None = None
) -> torch.Tensor:
    """The union of each image's boxes as a (B, H, W) bool mask.

    boxes: a (B, 4) tensor (one box per image) or B tensors (K_i, 4) (K_i may be 0), each box
    *inclusive* pixel coordinates (x0, y0, x1, y1) as ``core.ops.masks_to_boxes`` gives them:
    rows y0..y1, columns x0..x1. Boxes are clipped to the image.
    """
    per_image = (
        [b.reshape(-1, 4) for b in boxes]
        if not isinstance(boxes, torch.Tensor)
        else [b[None] for b in boxes.reshape(-1, 4)]
    )
    h, w = size
    dev = device if device is not None else (per_image[0].device if per_image else None)
    ys = torch.arange(h, device=dev)[None, :, None]  # (1, H, 1)
    xs = torch.arange(w, device=dev)[None, None, :]  # (1, 1, W)
    out = torch.zeros((len(per_image), h, w), dtype=torch.bool, device=dev)
    for i, b in enumerate(per_image):
        if b.numel() == 0:
            continue
        b = b.to(dev)
        x0, y0, x1, y1 = (b[:, k, None, None] for k in range(4))  # (K, 1, 1) each
        inside = (ys >= y0) & (ys <= y1) & (xs >= x0) & (xs <= x1)  # (K, H, W)
        out[i] = inside.any(0)
    return out
