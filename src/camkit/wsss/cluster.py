"""Batched spherical k-means (cosine distance) in torch, for LPCAM's local prototypes.

Cosine k-means clusters directions: every vector is L2-normalized, a point joins the center
of highest cosine similarity, and a center is the normalized mean of its members
(Dhillon & Modha 2001). The objective, the *inertia*, is ``Σ_i (1 - cos(x_i, c_{a(i)}))``;
each assignment step and each update step can only lower it, so it never increases.

Policies, for the failure modes people hit with ``kmeans_pytorch`` on background features:

* **Zero vectors** (all-zero post-ReLU features are common in background) have no direction.
  They are dropped before clustering and counted in ``dropped``; they would otherwise turn
  the cosine into NaN and keep the loop from ever meeting its tolerance.
* **Non-convergence**: the loop stops after ``max_iter`` iterations whatever happens. The last
  iterate is kept (it has the lowest inertia so far), ``converged`` is False, and a warning
  names the run. Convergence means no point changed cluster (a fixed point), or no center
  moved by more than ``tol`` in cosine distance.
* **Empty clusters** are re-seeded with the point farthest from its center.
* **Fewer points than clusters**: k drops to the number of distinct points, with a warning.

Initialization is k-means++ from a seeded generator, so a result is a function of the data
and the seed. Memory is O(chunk × k) beyond the data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from camkit.core.errors import CamkitError, OptionError

log = logging.getLogger(__name__)


@dataclass
class KMeansResult:
    centers: torch.Tensor  # (k, D) unit-norm directions
    means: torch.Tensor  # (k, D) plain means of the members (raw scale, for classifiers)
    labels: torch.Tensor  # (N,) int64 cluster of each input row; -1 for dropped zero rows
    sizes: torch.Tensor  # (k,) members per cluster
    inertia: float  # Σ (1 - cos) over the kept rows
    iterations: int
    converged: bool
    dropped: int  # zero rows left out


def _assign(xn: torch.Tensor, centers: torch.Tensor, chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Best center and its cosine for each row: (N, D), (k, D) -> (N,) int64, (N,) float."""
    labels = torch.empty(xn.shape[0], dtype=torch.long, device=xn.device)
    best = torch.empty(xn.shape[0], dtype=xn.dtype, device=xn.device)
    for s in range(0, xn.shape[0], chunk):
        sim = xn[s : s + chunk] @ centers.T
        best[s : s + chunk], labels[s : s + chunk] = sim.max(1)
    return labels, best


def _sums(x: torch.Tensor, labels: torch.Tensor, k: int, chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-cluster sums and sizes, (N, D), (N,) -> (k, D), (k,): a one-hot matmul per chunk,
    which runs on BLAS (several times faster than ``index_add_`` on CPU)."""
    sums = x.new_zeros((k, x.shape[1]))
    sizes = x.new_zeros(k)
    for s in range(0, x.shape[0], chunk):
        lab = labels[s : s + chunk, None]
        onehot = x.new_zeros((lab.shape[0], k)).scatter_(1, lab, 1.0)
        sums += onehot.T @ x[s : s + chunk]
        sizes += onehot.sum(0)
    return sums, sizes


def _kmeans_pp(xn: torch.Tensor, k: int, gen: torch.Generator, chunk: int) -> torch.Tensor:
    """k-means++ seeding under cosine distance (1 - cos), sampled with ``gen``."""
    n = xn.shape[0]
    first = int(torch.randint(n, (1,), generator=gen, device="cpu"))
    centers = [xn[first]]
    dist = (1 - xn @ xn[first]).clamp_min(0)
    for _ in range(1, k):
        total = float(dist.sum())
        if total <= 0:  # every point sits on a center already
            break
        idx = int(torch.multinomial((dist / total).float().cpu(), 1, generator=gen))
        centers.append(xn[idx])
        dist = torch.minimum(dist, (1 - xn @ xn[idx]).clamp_min(0))
    return torch.stack(centers)


def spherical_kmeans(
    x: torch.Tensor,
    k: int,
    seed: int = 0,
    max_iter: int = 100,
    tol: float = 1e-5,
    n_init: int = 1,
    chunk: int = 65536,
    name: str = "k-means",
) -> KMeansResult:
    """Cluster the rows of ``x`` (N, D) into ``k`` groups by cosine similarity.

    Runs ``n_init`` seedings (``seed``, ``seed + 1``, ...) and keeps the lowest inertia. The
    computation stays on ``x``'s device; ``name`` labels the warnings (e.g. "class 3 bg")."""
    if x.ndim != 2:
        raise CamkitError(f"k-means needs an (N, D) matrix, got {tuple(x.shape)}")
    if k < 1:
        raise OptionError("k", "need at least one cluster", k)
    x = x.float()
    norms = x.norm(dim=1)
    keep = norms > 1e-12
    dropped = int((~keep).sum())
    xk, xn = x[keep], x[keep] / norms[keep, None]
    if xn.shape[0] == 0:
        raise CamkitError(f"{name}: no non-zero feature vectors to cluster")
    distinct = int(torch.unique(xn, dim=0).shape[0]) if xn.shape[0] <= 4 * k else xn.shape[0]
    if distinct < k:
        log.warning("%s: %d distinct vectors for %d clusters; using k = %d", name, distinct, k, distinct)
        k = distinct
    best: KMeansResult | None = None
    for run in range(max(1, n_init)):
        gen = torch.Generator().manual_seed(seed + run)
        centers = _kmeans_pp(xn, k, gen, chunk)
        kk = centers.shape[0]
        converged, done, shift = False, 0, float("inf")
        labels, sim = _assign(xn, centers, chunk)
        for it in range(1, max_iter + 1):
            sums, sizes = _sums(xn, labels, kk, chunk)
            for e in torch.nonzero(sizes == 0, as_tuple=True)[0].tolist():  # re-seed empty clusters
                far = int(torch.argmin(sim))
                sums[e] = xn[far]
                sim[far] = 1.0
            new = F.normalize(sums, dim=1)
            shift = float((1 - (new * centers).sum(1)).max())
            done = it
            centers = new
            before = labels
            labels, sim = _assign(xn, centers, chunk)
            if shift <= tol or bool((labels == before).all()):  # a fixed point: nothing moves again
                converged = True
                break
        inertia = float((1 - sim).clamp_min(0).sum())
        if not converged:
            log.warning(
                "%s: not converged after %d iterations (last center shift %.2e > tol %.0e); keeping the last iterate",
                name, max_iter, shift, tol,
            )  # fmt: skip
        if best is None or inertia < best.inertia:
            sums, sizes = _sums(xk, labels, kk, chunk)
            means = sums / sizes.clamp_min(1)[:, None]
            full = torch.full((x.shape[0],), -1, dtype=torch.long, device=x.device)
            full[keep] = labels
            best = KMeansResult(centers, means, full, sizes.long(), inertia, done, converged, dropped)
    assert best is not None
    return best


def cosine_inertia(x: torch.Tensor, centers: torch.Tensor, chunk: int = 65536) -> float:
    """Σ (1 - max_j cos(x_i, c_j)) over the non-zero rows of ``x``: the objective above, for
    scoring any clustering (e.g. another library's centers) on equal terms."""
    x = x.float()
    keep = x.norm(dim=1) > 1e-12
    _, sim = _assign(F.normalize(x[keep], dim=1), F.normalize(centers.float(), dim=1), chunk)
    return float((1 - sim).clamp_min(0).sum())
