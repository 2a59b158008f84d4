"""Pure tensor operations on maps. Shapes use B (batch), h×w (feature grid), H×W (image).

All functions keep the input's device and dtype and are differentiable unless noted.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable
from typing import Any, Literal

import torch
import torch.nn.functional as F

from camkit.core.errors import CamkitError, OptionError


def minmax(maps: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Min-max normalize each map to [0, 1] over its last two dims.

    (..., h, w) -> (..., h, w). A constant map becomes all zeros (no NaN).
    """
    flat = maps.flatten(-2)
    lo = flat.amin(-1, keepdim=True)[..., None]
    hi = flat.amax(-1, keepdim=True)[..., None]
    rng = hi - lo
    return torch.where(rng > eps, (maps - lo) / rng.clamp_min(eps), torch.zeros_like(maps))


def spatial_size(t: torch.Tensor) -> tuple[int, int]:
    """The (H, W) of a (..., H, W) tensor."""
    return int(t.shape[-2]), int(t.shape[-1])


def tensor_sum(terms: Iterable[torch.Tensor]) -> torch.Tensor:
    """Elementwise sum of equally shaped tensors (at least one), like ``sum()`` but typed as a tensor."""
    return functools.reduce(operator.add, terms)


def upsample(maps: torch.Tensor, size: tuple[int, ...] | int) -> torch.Tensor:
    """Bilinear upsampling (align_corners=False) of (B, h, w) maps to (B, H, W); trilinear of
    (B, d, h, w) volumes to (B, D, H, W) when ``size`` is (D, H, W)."""
    if isinstance(size, int):
        size = (size, size)
    if tuple(maps.shape[-len(size) :]) == tuple(size):
        return maps
    mode = "trilinear" if len(size) == 3 else "bilinear"
    return F.interpolate(maps[:, None], size=tuple(size), mode=mode, align_corners=False)[:, 0]


def binarize(maps: torch.Tensor, threshold: float) -> torch.Tensor:
    """Foreground where ``map >= threshold``. (...) float -> (...) bool. Not differentiable."""
    return maps >= threshold


def sigmoid(maps: torch.Tensor) -> torch.Tensor:
    """Sigmoid normalization (the Flower-17 study): (...) -> (...) in (0, 1)."""
    return torch.sigmoid(maps)


def relu_max(maps: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """ReLU, then divide by the map's max (the study's "ReLU hybrid"). (..., h, w) -> [0, 1].
    A map with no positive value becomes all zeros."""
    r = torch.relu(maps)
    mx = r.flatten(-2).amax(-1)[..., None, None]
    return torch.where(mx > eps, r / mx.clamp_min(eps), torch.zeros_like(r))


def tanh_max(maps: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """LayerCAM's scaling tanh(2 M / max M) per map. (..., h, w) -> [0, 1) for M >= 0."""
    mx = maps.flatten(-2).amax(-1)[..., None, None].clamp_min(eps)
    return torch.tanh(2 * maps / mx)


def display_stretch(maps: torch.Tensor, floor: float = 0.3, gain: float = 1.5) -> torch.Tensor:
    """The Flower-17 study's display post-processing of [0, 1] maps: zero below ``floor``,
    multiply by ``gain``, clamp to 1."""
    return torch.where(maps < floor, torch.zeros_like(maps), maps * gain).clamp(max=1.0)


NORMALIZATIONS = {"minmax": minmax, "sigmoid": sigmoid, "relu-max": relu_max, "tanh-max": tanh_max}


def normalize(maps: torch.Tensor, method: str = "minmax") -> torch.Tensor:
    """Apply a normalization by name: minmax, sigmoid, relu-max or tanh-max."""

    try:
        return NORMALIZATIONS[method](maps)
    except KeyError:
        raise OptionError("norm", f"unknown; choose one of {', '.join(NORMALIZATIONS)}", method) from None


def percentile(maps: torch.Tensor, q: float) -> torch.Tensor:
    """The q-th percentile (0-100, linear interpolation as numpy's default) of each map.
    (B, h, w) -> (B,)."""
    return torch.quantile(maps.flatten(1).float(), q / 100.0, dim=1).to(maps.dtype)


def threshold_relative(
    maps: torch.Tensor, theta: float, reference: str = "max", q: float = 98.0
) -> torch.Tensor:
    """Foreground where ``map >= theta · ref``, ref = the map's max (CAM's usual rule, Bae et
    al. Eq. 3) or its q-th percentile (PaS, Bae et al. Eq. 6; default q = 98).
    (B, h, w) -> (B, h, w) bool."""

    if reference == "max":
        ref = maps.flatten(1).amax(1)
    elif reference == "percentile":
        ref = percentile(maps, q)
    else:
        raise OptionError("reference", "use max or percentile", reference)
    return maps >= theta * ref[:, None, None]


BoxMode = Literal["tight", "largest", "all"]


def masks_to_boxes(masks: torch.Tensor, mode: BoxMode = "tight") -> list[torch.Tensor]:
    """Boxes of the foreground (nonzero pixels) of each of (B, H, W) masks.

    Boxes are *inclusive* pixel coordinates (x0, y0, x1, y1): x1 is the last foreground
    column, not one past it (torchvision's ``masks_to_boxes`` convention; OpenCV's
    ``boundingRect`` and slices are exclusive). Returns B int64 tensors on the masks' device,
    each (K, 4):

    * ``"tight"``: the tight box of all foreground pixels, K = 1 (K = 0 for an empty mask);
      one batched pass of tensor ops, on the masks' device.
    * ``"largest"``: the box of the largest 8-connected component (first in scan order on
      ties), K = 1 (0 if empty), as WSOL's "largest connected component".
    * ``"all"``: one box per 8-connected component, largest first.

    Component labelling runs on the CPU (scipy.ndimage), the one step with no tensor op.
    """
    if masks.ndim != 3:
        raise CamkitError(f"masks must be (B, H, W), got {tuple(masks.shape)}")
    if mode == "tight":
        return _tight_boxes(masks.detach().bool())
    if mode not in ("largest", "all"):
        raise OptionError("mode", "use tight, largest or all", mode)
    return [_component_boxes(m, mode) for m in masks.detach().bool()]


def _tight_boxes(masks: torch.Tensor) -> list[torch.Tensor]:
    rows, cols = masks.any(2).to(torch.uint8), masks.any(1).to(torch.uint8)  # (B, H), (B, W)
    h, w = rows.shape[1], cols.shape[1]
    # argmax returns the first maximal index: the first (or, flipped, the last) foreground line
    boxes = torch.stack(
        [cols.argmax(1), rows.argmax(1), w - 1 - cols.flip(1).argmax(1), h - 1 - rows.flip(1).argmax(1)], 1
    ).to(torch.int64)
    return [boxes[i : i + 1] if ok else boxes[:0] for i, ok in enumerate(rows.any(1).tolist())]


def _component_boxes(mask: torch.Tensor, mode: str) -> torch.Tensor:
    import numpy as np
    from scipy import ndimage

    lab, n = ndimage.label(mask.cpu().numpy(), structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        return torch.zeros((0, 4), dtype=torch.int64, device=mask.device)
    sizes = np.bincount(lab.ravel())[1:]
    order = np.argsort(-sizes, kind="stable")
    if mode == "largest":
        order = order[:1]
    slices = ndimage.find_objects(lab)
    boxes = [
        [slices[k][1].start, slices[k][0].start, slices[k][1].stop - 1, slices[k][0].stop - 1] for k in order
    ]
    return torch.tensor(boxes, dtype=torch.int64, device=mask.device)


def logits_of(output: Any) -> torch.Tensor:
    """The logits of a model output: a tensor, a ``.logits`` attribute, or the first element."""
    if isinstance(output, torch.Tensor):
        return output
    if hasattr(output, "logits"):
        return output.logits
    if isinstance(output, dict) and "logits" in output:
        return output["logits"]
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise CamkitError(
        f"cannot find logits in the model output ({type(output).__name__}); return a (B, K) tensor"
    )
