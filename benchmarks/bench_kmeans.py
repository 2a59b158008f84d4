"""LPCAM's clustering: camkit's batched spherical k-means against kmeans_pytorch (the LPCAM
authors' choice), side by side in one run.

    .venv/bin/python benchmarks/bench_kmeans.py          # ~3 min on 2 CPU cores

Data: LPCAM-like feature sets, non-negative (post-ReLU) 128-d vectors drawn around 24 random
directions with random magnitudes. Both libraries cluster the same matrix into K = 12 groups
with cosine distance; each runs once per seed (5 seeds) from its own initialization
(camkit: k-means++, kmeans_pytorch: random points, seeded through numpy); camkit also
runs with n_init = 3 (three seedings, the best kept), which the library offers for this. Inertia is scored
for both by the same function, Σ (1 - cos(x, nearest center)).

1. 100,000 foreground-like vectors: time and inertia, medians over seeds, and the ratio.
2. The same with 10% all-zero rows, as background features have: kmeans_pytorch divides
   by zero norms, its centers turn NaN and its loop (it has no iteration cap) never meets
   its tolerance. It runs in a subprocess killed after a time limit.
3. Scale: camkit alone on 1,000,000 vectors (kmeans_pytorch materializes an N x K x D
   tensor per iteration: 6 GB at this size).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

import numpy as np
import torch

from camkit.wsss.cluster import cosine_inertia, spherical_kmeans

K, D, SEEDS = 12, 128, 5


def features(n: int, zero_share: float = 0.0, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    dirs = torch.relu(torch.randn(24, D, generator=g))
    lab = torch.randint(24, (n,), generator=g)
    x = torch.relu(dirs[lab] + 0.6 * torch.randn(n, D, generator=g)) * (
        torch.rand(n, 1, generator=g) * 3 + 0.2
    )
    if zero_share:
        x[torch.rand(n, generator=g) < zero_share] = 0.0
    return x


def run_kp(x: torch.Tensor, seed: int) -> tuple[float, torch.Tensor]:
    from kmeans_pytorch import kmeans

    np.random.seed(seed)
    t = time.perf_counter()
    _, centers = kmeans(X=x, num_clusters=K, distance="cosine", device=torch.device("cpu"))
    return time.perf_counter() - t, centers


_CHILD = """
import sys, time, torch
sys.path.insert(0, {here!r})
from bench_kmeans import features, run_kp
x = features({n}, {zero}, 0)
dt, c = run_kp(x, 0)
print(dt, bool(torch.isnan(c).any()))
"""


def compare(n: int) -> None:
    x = features(n)
    rows = []
    for seed in range(SEEDS):
        t = time.perf_counter()
        ours = spherical_kmeans(x, K, seed=seed)
        t_ours = time.perf_counter() - t
        t = time.perf_counter()
        ours3 = spherical_kmeans(x, K, seed=seed * 3, n_init=3)
        t_ours3 = time.perf_counter() - t
        t_kp, c_kp = run_kp(x, seed)
        rows.append(
            (t_ours, ours.inertia, ours.iterations, t_kp, cosine_inertia(x, c_kp), t_ours3, ours3.inertia)
        )
    t_o, i_o, it_o, t_k, i_k, t_o3, i_o3 = (statistics.median(r[j] for r in rows) for j in range(7))
    print(f"\n1. {n:,} x {D} vectors, K = {K}, median of {SEEDS} seeds")
    print(f"   camkit         {t_o * 1e3:9.1f} ms  inertia {i_o:12.1f}  ({it_o:.0f} iterations)")
    print(f"   kmeans_pytorch {t_k * 1e3:9.1f} ms  inertia {i_k:12.1f}")
    print(f"   time ratio camkit / kmeans_pytorch: {t_o / t_k:.3f}x; inertia ratio: {i_o / i_k:.4f}")
    wins = sum(r[1] <= r[4] for r in rows)
    print(f"   camkit inertia <= kmeans_pytorch's on {wins} of {SEEDS} seeds")
    wins3 = sum(r[6] <= r[4] for r in rows)
    print(f"   camkit n_init=3 {t_o3 * 1e3:9.1f} ms  inertia {i_o3:12.1f}")
    print(
        f"   time ratio {t_o3 / t_k:.3f}x; inertia ratio {i_o3 / i_k:.4f}; <= kmeans_pytorch's on {wins3} of {SEEDS} seeds"
    )


def background(n: int, limit: float) -> None:
    from pathlib import Path

    x = features(n, 0.1)
    t = time.perf_counter()
    ours = spherical_kmeans(x, K, seed=0)
    t_ours = time.perf_counter() - t
    print(f"\n2. {n:,} vectors with 10% zero rows (background-like)")
    print(
        f"   camkit         {t_ours * 1e3:9.1f} ms  inertia {ours.inertia:.1f}, converged {ours.converged}, "
        f"{ours.dropped:,} zero rows dropped"
    )
    code = _CHILD.format(here=str(Path(__file__).parent), n=n, zero=0.1)
    try:
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=limit)
        dt, nan = p.stdout.split()[-2:] if p.stdout.strip() else ("?", "?")
        print(f"   kmeans_pytorch finished in {dt} s; NaN centers: {nan}")
    except subprocess.TimeoutExpired:
        print(
            f"   kmeans_pytorch did not finish in {limit:.0f} s (killed): NaN centers never meet its tolerance"
        )


def scale(n: int) -> None:
    x = features(n)
    t = time.perf_counter()
    r = spherical_kmeans(x, K, seed=0)
    dt = time.perf_counter() - t
    print(f"\n3. camkit on {n:,} x {D}: {dt:.2f} s ({r.iterations} iterations, converged {r.converged})")


if __name__ == "__main__":
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    compare(100_000)
    background(100_000, 60.0)
    scale(1_000_000)
