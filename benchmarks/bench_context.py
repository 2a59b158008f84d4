"""Generation speed of the context benchmark (camkit.data.context): 10,000 canvases of 112 px,
single-label and multi-label (1-3 items), against the plain fashion-multi generator at its
64 px as a reference, all in one run. The target is under 30 s of CPU per 10,000 canvases.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_context.py [N]     # ~1 min on 2 CPU cores

Each line gives wall and CPU (user + sys) seconds of one process; nothing is cached.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from camkit.data import fashion
from camkit.data.context import ContextConfig, generate_split


def _timed(label: str, fn: object, n: int) -> None:
    t0, c0 = time.perf_counter(), os.times()
    fn()  # type: ignore[operator]
    c1 = os.times()
    wall, cpu = time.perf_counter() - t0, (c1.user - c0.user) + (c1.system - c0.system)
    print(
        f"{label:<44} {n:>6} canvases  wall {wall:6.1f} s  cpu {cpu:6.1f} s  ({1e3 * cpu / n:.2f} ms cpu each)"
    )


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    root = Path(fashion.DEBIAN_ROOT)
    single = ContextConfig(n_train=n)
    multi = ContextConfig(n_train=n, max_objects=3, min_scale=0.28, max_scale=0.5)
    ref = fashion.CanvasConfig(n_train=n, max_objects=3, min_scale=0.3, max_scale=0.55)
    _timed("fashion-context (112 px, 1 item)", lambda: generate_split(root, "train", single), n)
    _timed("fashion-context-multi (112 px, 1-3 items)", lambda: generate_split(root, "train", multi), n)
    _timed(
        "reference: fashion-multi (64 px, 1-3 items)",
        lambda: fashion.generate_multi_split(root, "train", ref),
        n,
    )


if __name__ == "__main__":
    main()
