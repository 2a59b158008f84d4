"""Sanity checks for saliency maps (Adebayo et al., "Sanity Checks for Saliency Maps",
NeurIPS 2018), with Quantus 0.6's protocol.

* **Cascading model-parameter randomization (MPRT):** the model's modules that have
  ``reset_parameters`` are re-initialized one after another from the output down (Quantus'
  ``top_down`` order; each reset seeded with ``seed + 1``, as Quantus does), and after each
  step the maps are recomputed on the partly random model and compared with the original
  ones. A method that depends on the model gives maps that drift away (similarity towards 0).
* **Random logit:** maps for the target class against maps for a random other class.

Similarity is reported as Spearman's rank correlation over pixels (ties get average ranks,
as ``scipy.stats.spearmanr``) and SSIM (``skimage.metrics.structural_similarity`` with its
defaults: 7×7 uniform window, K1 = 0.01, K2 = 0.03, sample covariance, mean over the windows
inside the image; data range = the range of the two maps together, as Quantus). A
correlation with a constant map is undefined: that image is counted in ``skipped``, never NaN.

``explain(model, images, targets)`` computes (B, H, W) maps for (B, C, H, W) images and (B,)
class ids; the model it is handed is the original or a randomized copy (the original model is
never changed).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from camkit.core.errors import CamkitError, OptionError
from camkit.core.results import Result
from camkit.metrics.masked import MaskScores

Explain = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def _ranks(x: torch.Tensor) -> torch.Tensor:
    """Average ranks (1-based, ties share their mean rank) along dim 1 of (B, N)."""
    b, n = x.shape
    s, order = x.sort(dim=1, stable=True)
    new = torch.ones_like(s, dtype=torch.bool)
    new[:, 1:] = s[:, 1:] != s[:, :-1]
    group = (new.cumsum(1) - 1) + torch.arange(b, device=x.device)[:, None] * n  # (B, N) global ids
    pos = torch.arange(1, n + 1, dtype=torch.float64, device=x.device).expand(b, n)
    sums = torch.zeros(b * n, dtype=torch.float64, device=x.device).scatter_add_(
        0, group.flatten(), pos.flatten()
    )
    counts = torch.zeros(b * n, dtype=torch.float64, device=x.device).scatter_add_(
        0, group.flatten(), torch.ones_like(pos).flatten()
    )
    avg = (sums / counts.clamp_min(1))[group]  # (B, N) in sorted order
    return torch.empty_like(avg).scatter_(1, order, avg)


def spearman(a: torch.Tensor, b: torch.Tensor) -> MaskScores:
    """Spearman's rank correlation of each pair of (B, ...) maps over their pixels; a pair
    with a constant map is skipped."""
    if a.shape != b.shape:
        raise CamkitError(f"maps {tuple(a.shape)} and {tuple(b.shape)} differ in size")
    ra, rb = _ranks(a.flatten(1)), _ranks(b.flatten(1))
    ra, rb = ra - ra.mean(1, keepdim=True), rb - rb.mean(1, keepdim=True)
    den = (ra.square().sum(1) * rb.square().sum(1)).sqrt()
    valid = den > 0
    rho = (ra * rb).sum(1) / torch.where(valid, den, torch.ones_like(den))
    return MaskScores.of(rho.clamp(-1, 1).to(a.dtype), valid)


def ssim(
    a: torch.Tensor, b: torch.Tensor, data_range: float | None = None, win_size: int = 7
) -> torch.Tensor:
    """Mean SSIM of each pair of (B, H, W) maps, as skimage's ``structural_similarity``
    defaults (see the module docstring); ``data_range`` None: each pair's joint range.
    Returns (B,) in [-1, 1]; two equal constant maps score 1."""
    if a.shape != b.shape or a.ndim != 3:
        raise CamkitError(
            f"SSIM needs two (B, H, W) maps of one size, got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    if min(a.shape[-2:]) < win_size:
        raise OptionError(
            "win_size", f"larger than the maps {tuple(a.shape[-2:])}; use a smaller odd window", win_size
        )
    x, y = a.double()[:, None], b.double()[:, None]
    if data_range is None:
        both = torch.cat([x.flatten(1), y.flatten(1)], 1)
        rng = (both.amax(1) - both.amin(1)).clamp_min(1e-12)[:, None, None, None]
    else:
        rng = torch.full((a.shape[0], 1, 1, 1), float(data_range), dtype=torch.float64, device=a.device)

    def mean(t: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(t, win_size, stride=1)  # only the windows inside the image

    npix = win_size * win_size
    cov = npix / (npix - 1)
    ux, uy = mean(x), mean(y)
    vx = cov * (mean(x * x) - ux * ux)
    vy = cov * (mean(y * y) - uy * uy)
    vxy = cov * (mean(x * y) - ux * uy)
    c1, c2 = (0.01 * rng) ** 2, (0.03 * rng) ** 2
    s = (2 * ux * uy + c1) * (2 * vxy + c2) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.flatten(1).mean(1).to(a.dtype)


@dataclass(frozen=True)
class Similarity(Result):
    """Similarity of two sets of (B, H, W) maps: Spearman (with its skip count) and SSIM (B,)."""

    spearman: MaskScores
    ssim: torch.Tensor


def similarity(a: torch.Tensor, b: torch.Tensor) -> Similarity:
    """Spearman and SSIM of (B, H, W) maps ``a`` against ``b``."""
    return Similarity(spearman(a, b), ssim(a, b))


def randomizable_modules(model: nn.Module) -> list[str]:
    """Names of the modules MPRT re-initializes, from the output down (Quantus' top_down)."""
    return [n for n, m in model.named_modules() if hasattr(m, "reset_parameters")][::-1]


@dataclass(frozen=True)
class MPRTResult(Result):
    """Cascading randomization: ``steps[i]`` names the modules reset at step i (cumulative),
    ``similarity[i]`` compares the maps after step i with the original maps."""

    steps: list[list[str]]
    similarity: list[Similarity]


@torch.no_grad()
def _reset(modules: Sequence[nn.Module], seed: int, device: torch.device) -> None:
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        for m in modules:
            torch.manual_seed(seed + 1)  # Quantus reseeds before every module
            m.reset_parameters()  # type: ignore[operator]


def mprt(
    model: nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor,
    explain: Explain,
    steps: Sequence[Sequence[str]] | None = None,
    seed: int = 42,
    original: torch.Tensor | None = None,
) -> MPRTResult:
    """Cascading model-parameter randomization of a copy of ``model``.

    images (B, C, H, W), targets (B,); ``steps``: the module names to reset at each step, in
    order (every module under a named one that has ``reset_parameters`` is reset, deepest
    last-registered first); None: one step per module of :func:`randomizable_modules`.
    ``original``: the (B, H, W) maps of the unchanged model, if already computed."""
    names = dict(model.named_modules())
    if steps is None:
        steps = [[n] for n in randomizable_modules(model)]
    for group in steps:
        for n in group:
            if n not in names:
                raise OptionError("steps", "no module of that name in the model", n)
    if original is None:
        original = explain(model, images, targets)
    twin = copy.deepcopy(model)
    twin_modules = dict(twin.named_modules())
    out = []
    for group in steps:
        todo = []
        for n in group:
            sub = [m for sn, m in twin_modules.items() if (sn == n or sn.startswith(n + ".") or n == "")]
            todo += [m for m in sub if hasattr(m, "reset_parameters")][::-1]
        _reset(todo, seed, images.device)
        out.append(similarity(original, explain(twin, images, targets)))
    return MPRTResult([list(g) for g in steps], out)


@dataclass(frozen=True)
class RandomLogitResult(Result):
    """Maps for the target against maps for ``off_targets`` (B,), a random other class each."""

    off_targets: torch.Tensor
    similarity: Similarity


def random_logit(
    model: nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor,
    explain: Explain,
    num_classes: int,
    seed: int = 42,
    off_targets: torch.Tensor | None = None,
    original: torch.Tensor | None = None,
) -> RandomLogitResult:
    """The random-logit check: images (B, C, H, W), targets (B,); the other class is drawn
    uniformly from the ``num_classes`` - 1 others (seeded), unless ``off_targets`` is given."""
    if num_classes < 2:
        raise OptionError("num_classes", "the random-logit check needs at least 2 classes", num_classes)
    if off_targets is None:
        g = torch.Generator().manual_seed(seed)
        r = torch.randint(0, num_classes - 1, (targets.shape[0],), generator=g).to(targets.device)
        off_targets = r + (r >= targets).long()
    if original is None:
        original = explain(model, images, targets)
    return RandomLogitResult(off_targets, similarity(original, explain(model, images, off_targets)))
