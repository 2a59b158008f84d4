"""Test-time augmentation smoothing of any map method: the maps of flipped, rescaled and
brightness-scaled copies of the input, mapped back to the original frame and averaged,

    M(x) = mean_{f, s, m}  T⁻¹_{f,s}( minmax( M(m · T_{f,s}(x)) ) )

with T_{f,s} a horizontal flip (f) after a bilinear rescale by s, and m a factor on the pixel
values. Every copy is explained for the (sample, class) pairs chosen on the original input
(target callables, where the base takes them, are passed to every copy as they are),
and each copy's map is min-max normalized before the mean, as pytorch-grad-cam's
``aug_smooth`` (which uses ttach: flips × multiply factors 0.9, 1, 1.1 by default); the
identity is always one of the copies. Works with 2-D inputs only.

>>> with AugSmooth(GradCAM(model, "layer4"), scales=(1.0, 1.5)) as m:
...     result = m(images, "pred")   # result.maps (N, H, W); result.low = [result.maps]
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from camkit.core.errors import OptionError
from camkit.core.ops import minmax
from camkit.methods.base import CAMMethod, CAMResult, Targets


def pair_lists(sample: torch.Tensor, target: torch.Tensor, batch: int) -> list[list[int]]:
    """(N,) pairs -> per-sample class lists, a target spec that reproduces exactly these pairs."""
    out: list[list[int]] = [[] for _ in range(batch)]
    for s, t in zip(sample.tolist(), target.tolist(), strict=True):
        out[s].append(t)
    return out


class AugSmooth:
    """Wraps a :class:`CAMMethod` instance; called like it, returns a :class:`CAMResult` whose
    ``maps`` (N, H, W) are the mean of the normalized maps over the augmented copies."""

    def __init__(
        self,
        method: CAMMethod,
        flips: Sequence[bool] = (False, True),
        scales: Sequence[float] = (1.0,),
        factors: Sequence[float] = (0.9, 1.0, 1.1),
        mode: str = "bilinear",
    ) -> None:
        if any(s <= 0 for s in scales) or any(m <= 0 for m in factors):
            raise OptionError(
                "scales", "scales and factors must be positive", f"{list(scales)} {list(factors)}"
            )
        self.method, self.mode = method, mode
        # the identity first, as ttach does
        self.flips = [False, *[f for f in flips if f]]
        self.scales = [1.0, *[s for s in scales if s != 1.0]]
        self.factors = [1.0, *[m for m in factors if m != 1.0]]

    def __enter__(self) -> AugSmooth:
        self.method.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.method.__exit__(*exc)

    def _resize(self, t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if tuple(t.shape[-2:]) == size:
            return t
        align = None if self.mode in ("nearest", "area") else False
        return F.interpolate(t, size=size, mode=self.mode, align_corners=align)

    def __call__(self, x: torch.Tensor, targets: Targets = None, differentiable: bool = False) -> CAMResult:
        """Smoothed maps for ``x`` (B, C, H, W) and ``targets`` (chosen on ``x`` itself)."""
        h, w = int(x.shape[-2]), int(x.shape[-1])
        first = self.method(x, targets, differentiable)
        scorers = callable(targets) or (
            isinstance(targets, (list, tuple)) and bool(targets) and callable(targets[0])
        )
        pairs: Targets = targets if scorers else pair_lists(first.sample, first.target, x.shape[0])
        total = minmax(first.maps)
        for flip, s, m in itertools.product(self.flips, self.scales, self.factors):
            if (flip, s, m) == (False, 1.0, 1.0):
                continue
            xa = self._resize(x, (int(h * s), int(w * s)))
            xa = (xa.flip(-1) if flip else xa) * m
            maps = minmax(self.method(xa, pairs, differentiable).maps)[:, None]
            total = total + self._resize(maps.flip(-1) if flip else maps, (h, w))[:, 0]
        maps = total / (len(self.flips) * len(self.scales) * len(self.factors))
        return CAMResult(maps, [maps], first.sample, first.target, first.score, first.logits)
