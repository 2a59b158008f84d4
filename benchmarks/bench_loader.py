"""Training on an ImageFolder tree of PNGs against a bare PyTorch loop over tensors in memory.

Builds a tree of ``--n`` 96-px RGB PNGs in 10 classes (Fashion-MNIST canvases, coloured),
then trains three copies of the same CAMNet (ResNet-18 cut after layer2, GAP, linear; Adam,
batch 64, channels-last: camkit's defaults) one epoch at a time, interleaved so machine
noise hits them alike:

* ``bare``: a plain PyTorch loop over the images already decoded into one tensor;
* ``camkit, no cache``: camkit's training epoch (``train_one_epoch``) over the folder
  dataset with the decoded cache off (every epoch decodes every PNG);
* ``camkit``: the same with the decoded cache on (the default for sets that fit in memory);
  its first epoch fills the cache and is reported on its own.

Prints the median images/s of each side and the ratios to the bare loop.

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/bench_loader.py [--n 640] [--epochs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image


def make_tree(root: Path, n: int, size: int) -> list[tuple[Path, int]]:
    from camkit.data.fashion import CanvasConfig, find_root, generate_split

    d = generate_split(find_root(None), "train", CanvasConfig(size=size, n_train=n))
    tint = np.random.default_rng(0).uniform(0.5, 1.0, (n, 1, 1, 3))
    rgb = (d["images"][..., None] * tint).astype(np.uint8)
    out = []
    for i, (img, label) in enumerate(zip(rgb, d["labels"], strict=True)):
        folder = root / f"class{int(label)}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / f"{i:05d}.png")
        out.append((folder / f"{i:05d}.png", int(label)))
    return out


class Bare:
    """The reference: decoded tensors in memory, the same model, optimizer and batches."""

    def __init__(self, model: Any, images: torch.Tensor, labels: torch.Tensor, cfg: Any) -> None:
        self.model, self.x, self.y, self.cfg = model, images, labels, cfg
        self.opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)

    def epoch(self, epoch: int) -> float:
        self.model.train()
        order = torch.randperm(len(self.y), generator=torch.Generator().manual_seed(epoch))
        t0 = time.perf_counter()
        for k in range(0, len(order), self.cfg.batch_size):
            idx = order[k : k + self.cfg.batch_size]
            x = self.x[idx].contiguous(memory_format=torch.channels_last)
            loss = torch.nn.functional.cross_entropy(self.model(x).logits, self.y[idx])
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            loss.item()
        return len(order) / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=640, help="images in the tree")
    ap.add_argument("--size", type=int, default=96, help="image side (the tree and the model input)")
    ap.add_argument("--epochs", type=int, default=5, help="timed epochs per side (after one warm-up)")
    args = ap.parse_args()

    from camkit.core.dist import World
    from camkit.data.base import FileDataset
    from camkit.data.datasets import DataConfig, build_split
    from camkit.models.camnet import CAMNet, ModelConfig
    from camkit.train.config import TrainConfig
    from camkit.train.loop import _context, train_one_epoch
    from camkit.train.state import FitContext

    with tempfile.TemporaryDirectory() as tmp:
        make_tree(Path(tmp) / "tree", args.n, args.size)
        data = DataConfig(dataset="folder", root=str(Path(tmp) / "tree"), image_size=args.size)
        cached = build_split(data, "train")
        assert isinstance(cached, FileDataset) and cached.cached
        plain = FileDataset(cached.records, args.size, cache_bytes=0)
        images = torch.stack([plain[i]["image"] for i in range(len(plain))])
        cfg = TrainConfig(batch_size=64, device="cpu")

        def model() -> CAMNet:
            torch.manual_seed(0)
            return CAMNet(ModelConfig(num_classes=10))

        def ctx() -> FitContext:
            names = [str(i) for i in range(10)]
            return _context(model(), len(plain), cfg, names, "cam", World(), None, None)

        sides: dict[str, Any] = {
            "bare": Bare(model().to(memory_format=torch.channels_last), images, plain.labels, cfg).epoch,
            "camkit, no cache": (lambda c: lambda e: train_one_epoch(c, plain, e)["images_per_s"])(ctx()),
            "camkit": (lambda c: lambda e: train_one_epoch(c, cached, e)["images_per_s"])(ctx()),
        }
        speeds: dict[str, list[float]] = {k: [] for k in sides}
        first = sides["camkit"](0)  # fills the cache
        for k in ("bare", "camkit, no cache"):
            sides[k](0)  # warm-up
        for e in range(1, args.epochs + 1):
            for k, f in sides.items():
                speeds[k].append(f(e))
    ref = statistics.median(speeds["bare"])
    print(f"{len(plain)} images of {args.size} px, batch {cfg.batch_size}, {torch.get_num_threads()} threads, "
          f"median of {args.epochs} epochs")  # fmt: skip
    print(f"{'side':<18} {'images/s':>9} {'vs bare':>8}")
    for k, v in speeds.items():
        m = statistics.median(v)
        print(f"{k:<18} {m:>9.1f} {m / ref:>7.2f}x")
    print(f"camkit's first epoch (filling the cache): {first:.1f} images/s ({first / ref:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
