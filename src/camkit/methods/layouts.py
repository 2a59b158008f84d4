"""Activation layouts: how a target layer's output maps onto a (B, C, h, w) grid.

CNNs yield (B, C, h, w) (``nchw``). Swin yields (B, h, w, C) (``nhwc``). ViT, DeiT and CLIP's
vision tower yield tokens (B, N, C): K extra tokens (class, distillation, register) in front
of an h × w patch grid, N = K + h·w (``tokens``; ``tokens:K`` fixes K). ``auto`` reads the
layout from the shape and the input size:

* 5-D: a volume (B, C, D, h, w), read as it is;
* 4-D: NCHW when dims 2, 3 have the input's aspect ratio, NHWC when dims 1, 2 have it and
  dims 2, 3 do not (both: NCHW);
* 3-D: tokens, with K the model's ``num_prefix_tokens`` when it has one (timm), else the
  smallest K <= 16 that leaves a grid of the input's aspect ratio.

A callable ``layout(t) -> (B, C, h, w)`` handles anything else (then the base cannot hand
edited activations back to the model, which only ablation-cam needs).

The base reshapes *at the hook*: it replaces the layer's output by one rebuilt from the grid
view (the extra tokens passed through unchanged), so the gradients w.r.t. the grid are the true
ones, and perturbation methods can edit the grid in place.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from camkit.core.errors import OptionError

LayoutSpec = str | Callable[[torch.Tensor], torch.Tensor]
MAX_EXTRA_TOKENS = 16


@dataclass(frozen=True)
class Layout:
    """One resolved layout: ``kind`` in nchw, nhwc, tokens, callable; ``extra`` leading tokens;
    ``grid`` the (h, w) of a token grid."""

    kind: str
    extra: int = 0
    grid: tuple[int, int] = (0, 0)
    fn: Callable[[torch.Tensor], torch.Tensor] | None = None

    @property
    def identity(self) -> bool:
        return self.kind == "nchw"

    def to_nchw(self, t: torch.Tensor) -> torch.Tensor:
        """The layer output (or its gradient) as a (B, C, h, w) view of the grid part."""
        if self.kind == "nchw":
            return t
        if self.kind == "nhwc":
            return t.permute(0, 3, 1, 2)
        if self.kind == "tokens":
            h, w = self.grid
            return t[:, self.extra :].transpose(1, 2).unflatten(2, (h, w))
        assert self.fn is not None
        return self.fn(t)

    def back(self, a: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The layer output rebuilt from the (B', C, h, w) grid ``a`` and the original ``t``
        (whose extra tokens are kept, broadcast to B' rows)."""
        if self.kind == "nchw":
            return a
        if self.kind == "nhwc":
            return a.permute(0, 2, 3, 1)
        if self.kind == "tokens":
            grid = a.flatten(2).transpose(1, 2)
            if not self.extra:
                return grid
            head = t[:, : self.extra]
            if head.shape[0] != grid.shape[0]:
                head = head.expand(grid.shape[0], *head.shape[1:])
            return torch.cat([head, grid], dim=1)
        raise OptionError(
            "layout", "a callable cannot feed edited activations back (ablation-cam); name the layout"
        )

    def describe(self) -> str:
        if self.kind == "tokens":
            return f"tokens ({self.extra} extra + {self.grid[0]}x{self.grid[1]} grid)"
        return self.kind


def _aspect_ok(h: int, w: int, size: tuple[int, int] | None) -> bool:
    return size is None or h * size[1] == w * size[0]


def token_grid(
    n: int, size: tuple[int, int] | None, extra: int | None = None
) -> tuple[int, tuple[int, int]] | None:
    """(K, (h, w)) with n = K + h·w and h/w the input's aspect ratio; K fixed or the smallest
    in 0..16. None when no such split exists."""
    for k in [extra] if extra is not None else range(MAX_EXTRA_TOKENS + 1):
        g = n - k
        if g <= 0:
            continue
        if size is None or size[0] == size[1]:
            s = math.isqrt(g)
            if s * s == g:
                return k, (s, s)
            continue
        h = math.isqrt(round(g * size[0] / size[1]))
        for hh in (h - 1, h, h + 1):
            if hh > 0 and g % hh == 0 and _aspect_ok(hh, g // hh, size):
                return k, (hh, g // hh)
    return None


def resolve_layout(
    spec: LayoutSpec,
    shape: torch.Size | tuple[int, ...],
    size: tuple[int, int] | None = None,
    prefix_tokens: int | None = None,
    strict: bool = True,
) -> Layout | None:
    """The layout of an output of ``shape`` for input size ``size`` (H, W). ``strict``: a
    one-line error naming ``layout`` when the shape does not fit; otherwise None."""
    if callable(spec):
        return Layout("callable", fn=spec)
    kind, _, arg = spec.partition(":")
    nd = len(shape)

    def fail(why: str) -> None:
        if strict:
            raise OptionError("layout", why, spec)

    if kind not in ("auto", "nchw", "nhwc", "tokens") or (arg and (kind != "tokens" or not arg.isdigit())):
        raise OptionError(
            "layout", "use auto, nchw, nhwc, tokens, tokens:K (K extra tokens) or a callable", spec
        )
    if nd == 5 and kind in ("auto", "nchw"):
        return Layout("nchw")  # a volume (B, C, D, h, w): the methods read it as it is
    if nd == 4 and kind in ("auto", "nchw", "nhwc"):
        nchw, nhwc = _aspect_ok(shape[2], shape[3], size), _aspect_ok(shape[1], shape[2], size)
        if kind == "nhwc" or (kind == "auto" and nhwc and not nchw):
            return Layout("nhwc")
        if kind == "nchw" or nchw:
            return Layout("nchw")
        fail(f"cannot read a grid of the input's aspect ratio from an output of shape {tuple(shape)}; "
             "give nchw, nhwc or a callable")  # fmt: skip
        return None
    if nd == 3 and kind in ("auto", "tokens"):
        n = int(shape[1])
        fixed = int(arg) if arg else prefix_tokens
        found = token_grid(n, size, fixed)
        if found is None and fixed is not None and not arg:
            found = token_grid(n, size)  # the model's hint did not fit this layer
        if found is None:
            fail(f"{n} tokens are not a square grid plus at most {MAX_EXTRA_TOKENS} extra tokens; "
                 "give tokens:K (K extra tokens in front) or a callable")  # fmt: skip
            return None
        return Layout("tokens", found[0], found[1])
    fail(f"an output of shape {tuple(shape)} has no spatial grid for this layout; pick a layer with one "
         "(B, C, h, w), (B, h, w, C) or (B, tokens, C)")  # fmt: skip
    return None


def layout_of(
    spec: LayoutSpec,
    shape: torch.Size | tuple[int, ...],
    size: tuple[int, int] | None,
    prefix_tokens: int | None,
) -> Layout:
    """:func:`resolve_layout` that raises rather than returning None."""
    lay = resolve_layout(spec, shape, size, prefix_tokens, strict=True)
    assert lay is not None
    return lay


def output_tensor(out: Any, layer: str) -> torch.Tensor:
    """The tensor a layer returns (the first of a tuple, as Hugging Face layers return)."""
    t = out[0] if isinstance(out, (tuple, list)) and out else out
    if not isinstance(t, torch.Tensor):
        raise OptionError(
            "layers", f"this layer returns a {type(t).__name__}, not a tensor; pick one inside it", layer
        )
    return t


def repack(out: Any, t: torch.Tensor) -> Any:
    """``out`` with its tensor replaced by ``t`` (a tensor, tuple, list or named tuple)."""
    if isinstance(out, torch.Tensor):
        return t
    return type(out)(t, *out[1:]) if hasattr(out, "_fields") else type(out)((t, *out[1:]))


def prefix_tokens_of(model: nn.Module) -> int | None:
    """The number of extra tokens a model declares (timm's ``num_prefix_tokens``), if any."""
    k = getattr(model, "num_prefix_tokens", None)
    return int(k) if isinstance(k, int) else None
