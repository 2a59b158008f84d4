"""ROAD: RemOve And Debias (Rong et al., "A Consistent and Efficient Evaluation Strategy for
Attribution Methods", ICML 2022), as pytorch-grad-cam's ``metrics/road.py`` computes it.

At percentile p of a map, **MoRF** imputes the pixels at or above the map's p-th percentile
(the top 100 − p %; the kept ones are ``map < quantile(map, p)``) and **LeRF** those of
``1 − map`` at or above its p-th percentile (the bottom 100 − p % of the map). Imputation is
the *noisy linear imputer*: every removed pixel becomes the weighted mean of its 8 neighbours
(1/6 for the 4 edge neighbours, 1/12 for the 4 corners; neighbours outside the image are left
out and the weights of the rest renormalized, exactly the reference's sparse system), solved
jointly over the removed region, plus Gaussian noise of std ``noise`` (0.01). The model's target score (softmax probability, or the logit) is read on each imputed
image; ``morf`` and ``lerf`` hold these (B, P) scores, ``morf_mean``/``lerf_mean`` the mean
over the percentiles of *score − original score* (pytorch-grad-cam's
``ROAD*RelevantFirstAverage``), and ``combined = (lerf_mean − morf_mean) / 2``
(``ROADCombined``): higher is better.

The reference solves each system with scipy's sparse LU, one image and percentile at a time.
Here every (image, percentile, order, channel) system of a batch is solved at once in torch by
conjugate gradients preconditioned with a geometric multigrid V-cycle, until every removed
pixel differs from the weighted mean of its neighbours by less than ``tol`` (default 3e-4, in
image units; on a 224x224 photo that left the values within 0.004 of the exact solution, below
the 0.01 noise; ``tests/metrics/test_road.py`` checks 2e-5 against the reference at 1e-6).
A map that removes every pixel of an image (a constant map: its percentile is its value)
leaves the reference's system singular; here that image is filled with 0 plus the noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from camkit.core.errors import CamkitError, OptionError
from camkit.core.ops import logits_of
from camkit.core.results import Result

DEFAULT_PERCENTILES = (10, 20, 30, 40, 50, 60, 70, 80, 90)


def _neighbour_sum(v: torch.Tensor) -> torch.Tensor:
    """Σ_j w_j v_j over the 8 neighbours (1/6 edges, 1/12 corners, zero outside). (N, C, H, W)."""
    p = F.pad(v, (1, 1, 1, 1))
    s = p[..., :-2] + 2 * p[..., 1:-1] + p[..., 2:]  # [1 2 1] along rows
    t = s[..., :-2, :] + 2 * s[..., 1:-1, :] + s[..., 2:, :]  # then along columns
    return (t - 4 * v) / 12


class _Level:
    """One grid of the multigrid hierarchy: ``missing`` (N, 1, h, w) float, ``d`` the in-image
    neighbour weight sums (1, 1, h, w)."""

    def __init__(self, missing: torch.Tensor) -> None:
        h, w = missing.shape[-2:]
        self.missing = missing
        self.d = _neighbour_sum(torch.ones((1, 1, h, w), dtype=missing.dtype, device=missing.device))
        self.inv_d = missing / self.d

    def apply(self, u: torch.Tensor) -> torch.Tensor:
        """The system's matrix on the missing pixels: d·u − Σ w u_neighbours."""
        return self.missing * (self.d * u - _neighbour_sum(u))


def _restrict(r: torch.Tensor) -> torch.Tensor:
    """Sum over 2x2 cells (zero-padded to even sizes): (N, C, h, w) -> (N, C, ceil(h/2), ceil(w/2))."""
    h, w = r.shape[-2:]
    r = F.pad(r, (0, w % 2, 0, h % 2))
    n, c, hh, ww = r.shape
    return r.view(n, c, hh // 2, 2, ww // 2, 2).sum((3, 5))


def _prolong(e: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Piecewise-constant interpolation, the transpose of :func:`_restrict`."""
    return e.repeat_interleave(2, -2).repeat_interleave(2, -1)[..., : size[0], : size[1]]


def _vcycle(levels: list[_Level], k: int, r: torch.Tensor, omega: float = 0.8) -> torch.Tensor:
    """A symmetric V-cycle from zero (damped Jacobi before and after the coarse correction): an
    SPD approximation of A⁻¹ r, the conjugate gradients' preconditioner."""
    lv = levels[k]
    if k == len(levels) - 1:
        v = omega * lv.inv_d * r
        for _ in range(20):
            v = v + omega * lv.inv_d * (r - lv.apply(v))
        return v
    v = omega * lv.inv_d * r
    e = _vcycle(levels, k + 1, _restrict(r - lv.apply(v)), omega)
    # the rediscretized coarse operator is half the Galerkin one of piecewise-constant transfers
    v = v + 0.5 * lv.missing * _prolong(e, (r.shape[-2], r.shape[-1]))
    return v + omega * lv.inv_d * (r - lv.apply(v))


def _impute(
    x: torch.Tensor, missing: torch.Tensor, tol: float, max_iter: int, min_size: int = 8
) -> torch.Tensor:
    """Solve for the missing pixels of x (N, C, H, W), ``missing`` (N, 1, H, W) float, by
    multigrid-preconditioned conjugate gradients; returns the filled image."""
    levels = [_Level(missing)]
    while min(levels[-1].missing.shape[-2:]) > min_size:  # a coarse cell is unknown if any child is
        levels.append(_Level(F.max_pool2d(levels[-1].missing, 2, ceil_mode=True)))
    fine = levels[0]
    known = x * (1 - missing)
    r = missing * _neighbour_sum(known)  # the right-hand side; the start is v = 0
    v = torch.zeros_like(x)
    z = _vcycle(levels, 0, r)
    p, rz = z, (r * z).sum((2, 3), keepdim=True)
    for _ in range(max_iter):
        active = (r.abs() / fine.d).amax((2, 3), keepdim=True) >= tol  # (N, C, 1, 1)
        if not bool(active.any()):
            break
        ap = fine.apply(p)
        pap = (p * ap).sum((2, 3), keepdim=True)
        alpha = torch.where(active & (pap > 0), rz / pap.clamp_min(1e-30), torch.zeros_like(pap))
        v = v + alpha * p
        r = r - alpha * ap
        z = _vcycle(levels, 0, r)
        rz_new = (r * z).sum((2, 3), keepdim=True)
        p = z + torch.where(rz > 0, rz_new / rz.clamp_min(1e-30), torch.zeros_like(rz)) * p
        rz = rz_new
    return known + v * missing


def noisy_linear_impute(
    images: torch.Tensor,
    keep: torch.Tensor,
    noise: float = 0.01,
    generator: torch.Generator | None = None,
    tol: float = 3e-4,
    max_iter: int = 500,
) -> torch.Tensor:
    """ROAD's noisy linear imputation of (N, C, H, W) images where (N, H, W) ``keep`` is False.

    Kept pixels are returned unchanged; removed ones get the solution of the neighbour-mean
    system (see the module docstring) plus N(0, noise²) noise drawn from ``generator``."""
    if keep.shape != (images.shape[0], *images.shape[2:]):
        raise CamkitError(f"keep {tuple(keep.shape)} does not match images {tuple(images.shape)}")
    missing = (~keep.bool()).to(images.dtype)[:, None]
    out = _impute(images, missing, tol, max_iter)
    if noise > 0:
        eps = torch.randn(out.shape, generator=generator, device=out.device, dtype=out.dtype)
        out = out + noise * eps * missing
    return out


def road_keep_masks(maps: torch.Tensor, percentiles: Sequence[float]) -> torch.Tensor:
    """The kept pixels of MoRF then LeRF at each percentile: (B, H, W) -> (B, 2P, H, W) bool."""
    check_percentiles(percentiles)
    q = torch.tensor([p / 100 for p in percentiles], dtype=torch.float64, device=maps.device)
    flat = maps.flatten(1).double()
    out = []
    for m in (flat, 1 - flat):  # MoRF ranks the map, LeRF 1 - map
        thr = torch.quantile(m, q, dim=1).T  # (B, P), linear interpolation as numpy
        out.append(m[:, None, :] < thr[:, :, None])
    return torch.cat(out, 1).view(maps.shape[0], 2 * len(percentiles), *maps.shape[1:])


def check_percentiles(percentiles: Sequence[float]) -> None:
    """Every percentile must lie strictly between 0 and 100."""
    if len(percentiles) == 0:
        raise OptionError("percentiles", "give at least one percentile", list(percentiles))
    for p in percentiles:
        if not 0 < p < 100:
            raise OptionError("percentiles", "each must lie strictly between 0 and 100", p)


@dataclass(frozen=True)
class ROADResult(Result):
    """ROAD scores of B images over P percentiles: ``original`` (B,) target scores,
    ``morf``/``lerf`` (B, P) scores after imputation, ``morf_mean``/``lerf_mean`` (B,) mean
    change over the percentiles, ``combined`` (B,) = (lerf_mean − morf_mean) / 2."""

    percentiles: list[float]
    original: torch.Tensor
    morf: torch.Tensor
    lerf: torch.Tensor
    morf_mean: torch.Tensor
    lerf_mean: torch.Tensor
    combined: torch.Tensor


@torch.no_grad()
def _scores(
    model: nn.Module, x: torch.Tensor, targets: torch.Tensor, score: str, batch_size: int
) -> torch.Tensor:
    outs = []
    for i in range(0, x.shape[0], batch_size):
        logits = logits_of(model(x[i : i + batch_size]))
        outs.append(logits.softmax(1) if score == "prob" else logits)
    return torch.cat(outs).gather(1, targets[:, None])[:, 0]


@torch.no_grad()
def road(
    model: nn.Module,
    images: torch.Tensor,
    maps: torch.Tensor,
    targets: torch.Tensor,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
    score: str = "prob",
    noise: float = 0.01,
    seed: int | None = 0,
    batch_size: int = 64,
    tol: float = 3e-4,
) -> ROADResult:
    """ROAD MoRF, LeRF and combined scores.

    images (B, C, H, W); maps (B, H, W) at image size (only their order matters); targets
    (B,) class ids; ``score`` "prob" (softmax, pytorch-grad-cam's
    ``ClassifierOutputSoftmaxTarget``) or "logit" (``ClassifierOutputTarget``); ``seed`` seeds
    the imputation noise (None: torch's global generator). The 2P imputed copies of each image
    are solved together and scored ``batch_size`` at a time."""
    if score not in ("prob", "logit"):
        raise OptionError("score", "use prob or logit", score)
    if maps.shape != (images.shape[0], *images.shape[2:]):
        raise CamkitError(
            f"maps {tuple(maps.shape)} do not match images {tuple(images.shape)}; upsample the maps first"
        )
    if torch.isnan(maps).any():
        raise CamkitError("the maps contain NaN; check the model's outputs")
    keep = road_keep_masks(maps, percentiles)  # (B, 2P, H, W)
    gen = None if seed is None else torch.Generator(device=images.device).manual_seed(seed)
    b, n = images.shape[0], len(percentiles)
    original = _scores(model, images, targets, score, batch_size)
    per_chunk = max(1, batch_size // (2 * n))  # images whose 2P copies are imputed together
    after = []
    for i in range(0, b, per_chunk):
        x = images[i : i + per_chunk]
        k = keep[i : i + per_chunk]
        xs = x[:, None].expand(-1, 2 * n, *x.shape[1:]).reshape(-1, *x.shape[1:])
        imputed = noisy_linear_impute(xs, k.reshape(-1, *k.shape[2:]), noise, gen, tol)
        t = targets[i : i + per_chunk].repeat_interleave(2 * n)
        after.append(_scores(model, imputed, t, score, batch_size).view(-1, 2 * n))
    s = torch.cat(after)  # (B, 2P)
    morf, lerf = s[:, :n], s[:, n:]
    morf_mean = (morf - original[:, None]).mean(1)
    lerf_mean = (lerf - original[:, None]).mean(1)
    return ROADResult(
        [float(p) for p in percentiles],
        original,
        morf,
        lerf,
        morf_mean,
        lerf_mean,
        (lerf_mean - morf_mean) / 2,
    )
