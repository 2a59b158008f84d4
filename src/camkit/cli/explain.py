"""``camkit explain``: where does this model look? Top-k classes and maps, PNGs and HTML."""

from __future__ import annotations

import argparse
from typing import Any

from camkit.cli.args import add_device_arg, add_method_args, method_args
from camkit.cli.sources import model_and_data, progress
from camkit.core.errors import CamkitError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "explain", help="where does this model look? top-k classes and maps, PNGs and an HTML page"
    )
    p.add_argument("images", nargs="+", help="image files or folders")
    p.add_argument("--model", help="a pretrained ImageNet classifier (efficientnet_lite0 works offline)")
    p.add_argument("--run", help="a run folder (its best checkpoint)")
    p.add_argument("--checkpoint", help="a checkpoint file (.safetensors)")
    add_method_args(p, default="cam,grad-cam,layercam")
    p.add_argument("--topk", type=int, default=5, help="classes to list per image")
    p.add_argument("--image-size", type=int, help="input side (default: 224, or the run's)")
    p.add_argument("--alpha", type=float, default=0.5, help="heatmap opacity")
    p.add_argument("--cmap", default="jet", help="a matplotlib colormap")
    p.add_argument("--tile", type=float, default=1.8, help="panel size in inches")
    add_device_arg(p)
    p.add_argument("--out", default="explain", help="output folder")
    p.set_defaults(func=run, dataset=None, data_root=None)


def run(args: argparse.Namespace) -> int:
    from camkit.apps.explain import explain
    from camkit.core.dist import resolve_device

    device = resolve_device(args.device)
    methods, layers, kw = method_args(args)
    if args.model:
        from camkit.models.pretrained import imagenet_categories, imagenet_model

        model, names, size = imagenet_model(args.model), imagenet_categories(), 224
    elif args.run or args.checkpoint:
        from camkit.models.checkpoint import load_checkpoint

        data, ckpt = model_and_data(args)
        model, meta = load_checkpoint(ckpt, device=device)
        names, size = meta["class_names"], data.image_size
    else:
        raise CamkitError(
            "pass --model efficientnet_lite0 (offline ImageNet model), --run RUN_DIR or --checkpoint FILE"
        )
    res = explain(
        model, names, args.images, methods, args.out, args.image_size or size, args.topk, layers, device,
        args.alpha, args.cmap, args.tile, progress(), **kw,
    )  # fmt: skip
    for path, top in zip(res["images"], res["top_k"], strict=True):
        print(f"{path}: " + ", ".join(f"{q['name']} {q['prob']:.3f}" for q in top))
    print(f"wrote {args.out}/index.html, comparison.png and per-method grids ({', '.join(methods)})")
    return 0
