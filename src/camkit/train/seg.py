"""SEG mode: scale-equivariance (SSENet) generalized to any invertible spatial transform.

ENGN8536 Lab 4 §3 after Wang et al. (SSENet, arXiv 1909.03714). The image I and its
transformed copy A·I go through the same CAMNet; with y the ground-truth class,

    L = (CE(I) + CE(A·I)) / 2 + λ · MSE_valid( CAM(A·I), A(CAM(I)) )

where CAM is the lab's softmax-weighted CAM of class y (softmax over the class weights, then
the weighted sum of the feature maps) and A acts on the map at feature resolution. The MSE
averages only over positions valid in both: inside the frame after A (rotations and shifts
move content out) and covered by in-frame input pixels. With A = scale 0.5 this is the lab's
loss exactly (bilinearly resizing f then weighting equals weighting then resizing).

Transforms (compose left to right), as strings: ``scale:S``, ``hflip``, ``vflip``,
``rot:DEG`` (counter-clockwise as displayed; multiples of 90 are exact ``rot90``, other
angles bilinear with a validity mask), ``shift:DX,DY`` (fractions of the width/height).
All run as batched tensor ops on the input's device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from camkit.core.errors import OptionError
from camkit.core.ops import spatial_size
from camkit.methods.cam import class_activation_map


@dataclass(frozen=True)
class Transform:
    kind: str  # scale | hflip | vflip | rot | shift
    a: float = 0.0
    b: float = 0.0

    def inverse(self) -> Transform:
        if self.kind == "scale":
            return Transform("scale", 1.0 / self.a)
        if self.kind == "rot":
            return Transform("rot", -self.a)
        if self.kind == "shift":
            return Transform("shift", -self.a, -self.b)
        return self

    def __str__(self) -> str:
        return {
            "scale": f"scale:{self.a:g}",
            "rot": f"rot:{self.a:g}",
            "shift": f"shift:{self.a:g},{self.b:g}",
        }.get(self.kind, self.kind)


def parse_transform(spec: str) -> Transform:
    """``scale:0.5``, ``hflip``, ``vflip``, ``rot:90``, ``shift:0.1,0`` -> Transform."""
    name, _, arg = spec.strip().partition(":")
    try:
        if name == "scale" and float(arg) > 0:
            return Transform("scale", float(arg))
        if name in ("hflip", "vflip") and not arg:
            return Transform(name)
        if name == "rot":
            return Transform("rot", float(arg))
        if name == "shift":
            dx, dy = (float(v) for v in arg.split(","))
            if abs(dx) < 1 and abs(dy) < 1:
                return Transform("shift", dx, dy)
    except ValueError:
        pass
    raise OptionError(
        "seg_transforms", "use scale:S, hflip, vflip, rot:DEG or shift:DX,DY (fractions below 1)", spec
    )


def _affine(t: Transform, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if t.kind == "rot":
        c, s = math.cos(math.radians(t.a)), math.sin(math.radians(t.a))
        theta = [[c, -s, 0.0], [s, c, 0.0]]
    else:  # shift: content moves right/down by (dx, dy) of the size
        theta = [[1.0, 0.0, -2 * t.a], [0.0, 1.0, -2 * t.b]]
    th = torch.tensor(theta, dtype=x.dtype, device=x.device).expand(x.shape[0], 2, 3)
    grid = F.affine_grid(th, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    # a pixel is valid when it samples from inside the frame (its whole bilinear footprint)
    h, w = x.shape[-2:]
    gx, gy = grid[..., 0], grid[..., 1]
    valid = (gx.abs() <= 1 - 1 / w) & (gy.abs() <= 1 - 1 / h)
    return out, valid[:, None]


def warp(
    x: torch.Tensor, t: Transform, size: tuple[int, int] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply ``t`` to (B, C, H, W): returns (A·x, valid (B, 1, H', W') bool).

    ``size`` fixes the output size of a scale (so maps land exactly on the other branch's grid).
    """
    ones = torch.ones((x.shape[0], 1, *x.shape[-2:]), dtype=torch.bool, device=x.device)
    if t.kind == "scale":
        out_size = size or (max(1, round(x.shape[-2] * t.a)), max(1, round(x.shape[-1] * t.a)))
        y = F.interpolate(x, size=out_size, mode="bilinear", align_corners=False)
        return y, torch.ones((x.shape[0], 1, *out_size), dtype=torch.bool, device=x.device)
    if t.kind == "hflip":
        return x.flip(-1), ones
    if t.kind == "vflip":
        return x.flip(-2), ones
    if t.kind == "rot" and t.a % 90 == 0:
        return torch.rot90(x, int(t.a // 90) % 4, dims=(-2, -1)), torch.rot90(
            ones, int(t.a // 90) % 4, dims=(-2, -1)
        )
    return _affine(t, x)


def warp_all(
    x: torch.Tensor, ts: list[Transform], size: tuple[int, int] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Compose transforms left to right; the validity of earlier steps is carried along."""
    valid = torch.ones((x.shape[0], 1, *x.shape[-2:]), dtype=torch.bool, device=x.device)
    for t in ts:
        x, v = warp(x, t, size if t.kind == "scale" else None)
        moved, _ = warp(valid.to(x.dtype), t, size if t.kind == "scale" else None)
        valid = (moved >= 0.999) & v
    return x, valid


def seg_loss(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    ts: list[Transform],
    weight: float = 1.0,
    label_smoothing: float = 0.0,
) -> tuple[torch.Tensor, dict[str, float], torch.Tensor]:
    """The two-branch loss. Returns (total, parts, logits of the original branch)."""
    out_l = model(x)
    xa, valid_img = warp_all(x, ts)
    out_s = model(xa)
    w = model.get_parameter("classifier.weight")
    cam_l = class_activation_map(out_l.features, w, y, softmax_weights=True)[:, None]  # (B, 1, h, w)
    cam_s = class_activation_map(out_s.features, w, y, softmax_weights=True)[:, None]  # (B, 1, h', w')
    a_cam_l, valid_map = warp_all(cam_l, ts, size=spatial_size(cam_s))
    if a_cam_l.shape != cam_s.shape:
        raise OptionError(
            "seg_transforms",
            f"the transformed CAM is {tuple(a_cam_l.shape[-2:])} but the other branch's is {tuple(cam_s.shape[-2:])}",
        )
    valid_feat = F.interpolate(valid_img.float(), size=cam_s.shape[-2:], mode="area") >= 0.999
    valid = (valid_feat & valid_map).to(cam_s.dtype)
    l_seg = ((cam_s - a_cam_l) ** 2 * valid).sum() / valid.sum().clamp(min=1)
    l_l = F.cross_entropy(out_l.logits, y, label_smoothing=label_smoothing)
    l_s = F.cross_entropy(out_s.logits, y, label_smoothing=label_smoothing)
    total = (l_l + l_s) / 2 + weight * l_seg
    return total, {"cls_l": l_l.item(), "cls_s": l_s.item(), "seg": l_seg.item()}, out_l.logits
