"""Relevance mass and relevance rank accuracy (Arras et al., "CLEVR-XAI", Information Fusion
2022), as Quantus 0.6 defines them.

* Relevance mass accuracy: ``Σ_{in} R / Σ R``, the share of the map's total relevance inside
  the mask. Signed maps are taken as they are (Quantus' default ``abs=False``; its default
  normalization by the max does not change the ratio).
* Relevance rank accuracy: with K the mask's pixel count, the share of the map's K highest
  pixels that lie in the mask, ``|top-K ∩ GT| / K``. Ties are ranked by a stable descending
  sort (row-major order first); Quantus' ``np.argsort`` breaks them arbitrarily.

Maps and masks are (B, H, W); empty masks (and, for the mass, maps summing to 0) are skipped.
"""

from __future__ import annotations

import torch

from camkit.metrics.masked import MaskScores, check_maps_masks


def relevance_mass_accuracy(maps: torch.Tensor, masks: torch.Tensor) -> MaskScores:
    """Share of each (B, H, W) map's relevance inside its (B, H, W) mask."""
    gt = check_maps_masks(maps, masks).flatten(1)
    a = maps.flatten(1)
    total = a.sum(1)
    valid = gt.any(1) & (total != 0)
    safe = torch.where(total != 0, total, torch.ones_like(total))
    return MaskScores.of((a * gt).sum(1) / safe, valid)


def relevance_rank_accuracy(maps: torch.Tensor, masks: torch.Tensor) -> MaskScores:
    """Share of each map's K = |mask| highest pixels inside the mask. (B, H, W) -> scores (B,)."""
    gt = check_maps_masks(maps, masks).flatten(1)
    k = gt.sum(1)  # (B,)
    order = maps.flatten(1).argsort(dim=1, descending=True, stable=True)
    ranked_in = gt.gather(1, order)  # (B, N): is the r-th highest pixel in the mask?
    top = torch.arange(gt.shape[1], device=maps.device)[None] < k[:, None]
    hits = (ranked_in & top).sum(1)
    return MaskScores.of(hits.to(maps.dtype) / k.clamp_min(1).to(maps.dtype), k > 0)
