"""Pure tensor operations on maps. Shapes use B (batch), h×w (feature grid), H×W (image).

All functions keep the input's device and dtype and are differentiable unless noted.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def minmax(maps: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Min-max normalize each map to [0, 1] over its last two dims.

    (..., h, w) -> (..., h, w). A constant map becomes all zeros (no NaN).
    """
    flat = maps.flatten(-2)
    lo = flat.amin(-1, keepdim=True)[..., None]
    hi = flat.amax(-1, keepdim=True)[..., None]
    rng = hi - lo
    return torch.where(rng > eps, (maps - lo) / rng.clamp_min(eps), torch.zeros_like(maps))


def upsample(maps: torch.Tensor, size: tuple[int, int] | int) -> torch.Tensor:
    """Bilinear upsampling (align_corners=False) of (B, h, w) maps to (B, H, W)."""
    if isinstance(size, int):
        size = (size, size)
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


def binarize(maps: torch.Tensor, threshold: float) -> torch.Tensor:
    """Foreground where ``map >= threshold``. (...) float -> (...) bool. Not differentiable."""
    return maps >= threshold
