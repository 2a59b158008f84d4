"""Speed of camkit.wsss.dense_crf (WSSS defaults: 10 mean-field iterations, Gaussian 3/3,
bilateral 80/13/10) at 128 px on CPU, K = 21 (VOC) and K = 2, for a few source counts.
The issue's target: at least 20 images/s at 128 px on 2 CPU cores.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_crf.py [THREADS] [BATCH] [N]   # ~1 min

Each line: images per second of wall time and per CPU second (user + sys of this process),
batch B images per call; inputs are scikit-image photos resized to 128 px with random
softmax maps. The machine may be shared: CPU time is the steadier number.
"""

from __future__ import annotations

import os
import sys
import time

import torch
import torch.nn.functional as F
from skimage import data

from camkit.wsss.crf import dense_crf


def _images(n: int, size: int) -> torch.Tensor:
    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    out = []
    for i in range(n):
        img = torch.from_numpy(photos[i % len(photos)]).permute(2, 0, 1)[None].float()
        img = F.interpolate(img, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out.append(img[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8))
    return torch.stack(out)


def main() -> None:
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    batch = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 32
    torch.set_num_threads(threads)
    size = 128
    images = _images(n, size)
    print(f"torch threads {threads}, batch {batch}, {n} images of {size} px, 10 iterations")
    for k in (21, 2):
        gen = torch.Generator().manual_seed(k)
        probs = torch.softmax(2 * torch.randn(n, k, size, size, generator=gen), dim=1)
        for sources in (128, 256):
            dense_crf(images[:batch], probs[:batch], sources=sources)  # warm-up
            t0, c0 = time.perf_counter(), os.times()
            for i in range(0, n, batch):
                dense_crf(images[i : i + batch], probs[i : i + batch], sources=sources)
            c1 = os.times()
            wall, cpu = time.perf_counter() - t0, (c1.user - c0.user) + (c1.system - c0.system)
            print(
                f"K={k:<3} sources={sources:<4} wall {wall:6.2f} s  cpu {cpu:6.2f} s  "
                f"{n / wall:6.1f} images/s  {n / cpu:6.1f} images per cpu-s"
            )


if __name__ == "__main__":
    main()
