"""Pure tensor operations on maps. Shapes use B (batch), h×w (feature grid), H×W (image).

All functions keep the input's device and dtype and are differentiable unless noted.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from camkit.core.errors import CamkitError


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
    from camkit.core.errors import OptionError

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
    from camkit.core.errors import OptionError

    if reference == "max":
        ref = maps.flatten(1).amax(1)
    elif reference == "percentile":
        ref = percentile(maps, q)
    else:
        raise OptionError("reference", "use max or percentile", reference)
    return maps >= theta * ref[:, None, None]


def mask_to_boxes(mask: torch.Tensor, mode: str = "largest") -> torch.Tensor:
    """Boxes around the 8-connected components of one (H, W) bool mask.

    ``mode="largest"``: the component with the most pixels (first in scan order on ties), as a
    (1, 4) tensor; ``"all"``: one box per component, largest first. Boxes are inclusive pixel
    coordinates (x0, y0, x1, y1), int64, on the mask's device; an empty mask gives (0, 4).
    Labelling runs on the CPU (scipy.ndimage), the one step with no tensor op.
    """
    import numpy as np
    from scipy import ndimage

    from camkit.core.errors import OptionError

    if mode not in ("largest", "all"):
        raise OptionError("mode", "use largest or all", mode)
    lab, n = ndimage.label(mask.detach().bool().cpu().numpy(), structure=np.ones((3, 3), dtype=bool))
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
