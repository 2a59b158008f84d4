"""Speed of the map methods on a ViT, side by side in one run: camkit (token layout read at the
hook) vs a bare forward (and backward), vs pytorch-grad-cam (with its ``reshape_transform``)
and vs torchcam (which reads (B, C, h, w) only: it hooks a tap module inserted after the same
layer that exposes the grid, on its own copy of the model). Same weights, batch, layer
(``blocks.11.norm1``) and targets; the ViT rows of ``bench_methods.py``'s table.

    .venv/bin/python benchmarks/bench_methods_vit.py            # ~3 min on 2 CPU cores
    .venv/bin/python benchmarks/bench_methods_vit.py --quick

Each cell is the median of ``--repeats`` timed calls after one warm-up; sides are interleaved.
Ratios < 1 mean camkit is faster. CPU time (user + sys) of the whole run is printed last.
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
from collections.abc import Callable

import torch
from torch import nn

from bench_methods import (
    GRAD_METHODS,
    bare_passes,
    camkit_side,
    interleaved,
    pgc_side,
    print_rows,
    ratio_row,
    torchcam_side,
)


class Tap(nn.Module):
    """Exposes a token layer's 14x14 grid as (B, C, h, w) through ``tap`` (for torchcam)."""

    def __init__(self, inner: nn.Module, grid: int) -> None:
        super().__init__()
        self.inner, self.grid, self.tap = inner, grid, nn.Identity()

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        out = self.inner(t)
        g = self.tap(out[:, 1:].transpose(1, 2).unflatten(2, (self.grid, self.grid)))
        return torch.cat([out[:, :1], g.flatten(2).transpose(1, 2)], 1)


def vit(size: int) -> tuple[nn.Module, nn.Module]:
    import timm

    torch.manual_seed(0)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=size).eval()
    tapped = copy.deepcopy(model)
    tapped.blocks[-1].norm1 = Tap(tapped.blocks[-1].norm1, size // 16)
    return model, tapped


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=None)
    args = ap.parse_args()
    reps = args.repeats or (3 if args.quick else 7)
    logging.disable(logging.WARNING)
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    layer = "blocks.11.norm1"
    model, tapped = vit(224)
    x = torch.rand(8, 3, 224, 224)
    targets = [int(c) for c in torch.randint(0, 1000, (8,))]
    pgc_targets = [ClassifierOutputTarget(c) for c in targets]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; timm vit_tiny_patch16_224, batch 8 at 224, "
          f"{layer} (1 class token + 14x14); median of {reps}\n")  # fmt: skip

    def reshape(t: torch.Tensor) -> torch.Tensor:
        g = int((t.shape[1] - 1) ** 0.5)
        return t[:, 1:, :].reshape(t.size(0), g, g, t.size(2)).transpose(2, 3).transpose(1, 2)

    _, fwd_bwd = bare_passes(model, x, targets)

    def ck(
        m: nn.Module, name: str, inp: torch.Tensor, tg: list[int], grad: bool, **kw: object
    ) -> Callable[[], object]:
        return camkit_side(m, layer, name, inp, tg, grad, **kw)

    def pg(m: nn.Module, pname: str, inp: torch.Tensor, tg: list, **attrs: object) -> Callable[[], object]:
        return pgc_side(m, dict(m.named_modules())[layer], pname, inp, tg, reshape, **attrs)

    def tc(
        m: nn.Module, tname: str, inp: torch.Tensor, tg: list[int], grad: bool, **kw: object
    ) -> Callable[[], object]:
        return torchcam_side(m, layer + ".tap", tname, inp, tg, grad, **kw)

    rows = []
    for name, (pname, tname) in GRAD_METHODS.items():
        fns = {
            "camkit": ck(model, name, x, targets, True),
            "ref": fwd_bwd,
            "pgc": pg(model, pname, x, pgc_targets),
        }
        if tname:
            fns["tc"] = tc(tapped, tname, x, targets, True)
        t = interleaved(fns, reps)
        rows.append(ratio_row(name, t, "forward+backward"))

    # score-cam: one 112x112 image, 192 channels -> 192 masked forwards
    small, small_tapped = vit(112)
    xs = torch.rand(1, 3, 112, 112)

    def masked_forwards() -> object:
        with torch.no_grad():
            for _ in range(0, 192, 64):
                small(xs.expand(64, -1, -1, -1) * 0.5)

    fns = {"camkit": ck(small, "score-cam", xs, targets[:1], False, batch_size=64, align_corners=True),
           "ref": masked_forwards, "pgc": pg(small, "ScoreCAM", xs, pgc_targets[:1], batch_size=64),
           "tc": tc(small_tapped, "ScoreCAM", xs, targets[:1], False, batch_size=64, input_shape=(3, 112, 112))}  # fmt: skip
    t = interleaved(fns, max(2, reps // 2))
    rows.append(ratio_row("score-cam", t, "192 batched forwards"))
    print_rows(rows, "method (ViT)")
    cpu = os.times()
    print(f"\nCPU time of the run: {cpu.user + cpu.system:.0f} s (user + sys)")


if __name__ == "__main__":
    main()
