"""ROAD's cost against the forward passes it needs, side by side in one run.

    .venv/bin/python benchmarks/bench_faithfulness.py                  # 100 images x 9 percentiles
    .venv/bin/python benchmarks/bench_faithfulness.py --images 8       # a quick look

Model: the offline pretrained EfficientNet-Lite0 (eval mode; ``--model resnet50``: a randomly
initialized torchvision ResNet-50, ten times the forward cost), 224x224 crops of scikit-image's
photos, Grad-CAM maps (computed before the clocks start). ROAD combined
(MoRF and LeRF at 9 percentiles: 18 imputed copies per image, plus the original) against the
same number of forward passes on tensors of the same shape and batch size. The target is
ROAD <= 1.2x its forward passes. Also timed: the imputation alone, and pytorch-grad-cam's
scipy imputer on a few (image, percentile) pairs for scale. Wall time and CPU time
(user + sys of this process) are both printed; on a shared machine trust the CPU time.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
import torch.nn.functional as F


def photos(n: int, size: int = 224) -> torch.Tensor:
    """n (3, size, size) crops in [0, 1] from scikit-image's colour photos (shifted, flipped)."""
    from skimage import data

    src = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket(), data.immunohistochemistry()]
    out = []
    for i in range(n):
        im = torch.from_numpy(src[i % len(src)].copy()).permute(2, 0, 1).float() / 255
        im = F.interpolate(im[None], size=(size + 32, size + 32), mode="bilinear", align_corners=False)[0]
        dy, dx = (i * 7) % 32, (i * 13) % 32
        crop = im[:, dy : dy + size, dx : dx + size]
        out.append(crop.flip(-1) if (i // len(src)) % 2 else crop)
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    return (torch.stack(out) - mean) / std


class Clock:
    def __enter__(self) -> Clock:
        self.w, self.c = time.perf_counter(), sum(os.times()[:2])
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.w, sum(os.times()[:2]) - self.c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--model", default="efficientnet_lite0",
                    help="efficientnet_lite0 (pretrained, Grad-CAM on backbone.head) or resnet50 (random weights, layer4)")  # fmt: skip
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from camkit.core.ops import logits_of
    from camkit.methods import get_method
    from camkit.metrics.road import DEFAULT_PERCENTILES, noisy_linear_impute, road, road_keep_masks
    from camkit.models.pretrained import imagenet_model

    if args.model == "resnet50":  # a heavier model: ~10x the forward cost, the same imputation
        import torchvision

        model, layer = torchvision.models.resnet50().eval(), "layer4"
    else:
        model, layer = imagenet_model("efficientnet_lite0").eval(), "backbone.head"
    x = photos(args.images)
    maps = torch.cat([get_method("grad-cam")(model, [layer])(x[i : i + 16], "pred").maps
                      for i in range(0, args.images, 16)])  # fmt: skip
    with torch.no_grad():
        targets = torch.cat([logits_of(model(x[i : i + 16])).argmax(1) for i in range(0, args.images, 16)])
    pct = list(DEFAULT_PERCENTILES)
    n_fwd = args.images * (1 + 2 * len(pct))
    print(f"{args.model}: {args.images} images x {len(pct)} percentiles x (MoRF, LeRF): {n_fwd} forward passes, "
          f"batch {args.batch_size}, {torch.get_num_threads()} thread(s)")  # fmt: skip

    def forwards() -> None:  # the same passes on the same shapes: the originals, then 2P copies of each
        with torch.no_grad():
            for i in range(0, args.images, args.batch_size):
                model(x[i : i + args.batch_size])
            per_chunk = max(1, args.batch_size // (2 * len(pct)))
            for i in range(0, args.images, per_chunk):
                xs = x[i : i + per_chunk].repeat_interleave(2 * len(pct), 0)
                for j in range(0, xs.shape[0], args.batch_size):
                    model(xs[j : j + args.batch_size])

    def imputation_only() -> None:
        keep = road_keep_masks(maps, pct)
        per_chunk = max(1, args.batch_size // (2 * len(pct)))
        for i in range(0, args.images, per_chunk):
            k = keep[i : i + per_chunk]
            xs = x[i : i + per_chunk].repeat_interleave(2 * len(pct), 0)
            noisy_linear_impute(xs, k.reshape(-1, *k.shape[2:]))

    with Clock() as f1:
        forwards()
    with Clock() as r:
        res = road(model, x, maps, targets, pct, batch_size=args.batch_size)
    with Clock() as f2:
        forwards()
    with Clock() as imp:
        imputation_only()
    fw, fc = (f1.wall + f2.wall) / 2, (f1.cpu + f2.cpu) / 2
    print(
        f"forward passes only : wall {fw:8.1f} s   cpu {fc:8.1f} s   ({f1.wall:.1f} s before, {f2.wall:.1f} s after)"
    )
    print(f"ROAD (all of it)    : wall {r.wall:8.1f} s   cpu {r.cpu:8.1f} s")
    print(f"imputation alone    : wall {imp.wall:8.1f} s   cpu {imp.cpu:8.1f} s")
    print(f"ROAD / forwards     : wall {r.wall / fw:.2f}x   cpu {r.cpu / fc:.2f}x   (target <= 1.2x)")
    print(f"ROAD combined {float(res.combined.mean()):.4f}, MoRF {float(res.morf_mean.mean()):.4f}, "
          f"LeRF {float(res.lerf_mean.mean()):.4f}")  # fmt: skip

    try:  # the reference imputer, for scale
        from pytorch_grad_cam.metrics.road import NoisyLinearImputer
    except ImportError:
        return
    keep = road_keep_masks(maps[:1], [10, 50, 90])[0]
    with Clock() as ref:
        for k in keep:
            NoisyLinearImputer()(x[0], k.float())
    with Clock() as ours:
        noisy_linear_impute(x[:1].expand(len(keep), -1, -1, -1), keep)
    print(f"one image x 6 imputations: pytorch-grad-cam (scipy, one at a time) {ref.wall:.2f} s, camkit batched "
          f"{ours.wall:.2f} s")  # fmt: skip


if __name__ == "__main__":
    main()
