"""``camkit explain``: where does this model look? Top-k classes and maps, PNGs and HTML."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from camkit.cli.args import add_device_arg, add_method_args, method_args
from camkit.cli.sources import model_and_data, progress
from camkit.core.errors import CamkitError

if TYPE_CHECKING:
    from torch import nn


def register(sub: Any) -> None:
    p = sub.add_parser(
        "explain", help="where does this model look? top-k classes and maps, PNGs and an HTML page"
    )
    p.add_argument("images", nargs="+", help="image files or folders")
    p.add_argument(
        "--model",
        help="a model by name: efficientnet_lite0 (offline ImageNet), resnet18/34/50, timm:NAME, "
        "torchvision:NAME or hf:PATH (random weights unless --weights or cached) "
        "(default: efficientnet_lite0 unless --run or --checkpoint)",
    )
    p.add_argument("--weights", help="a weights file (.safetensors or a torch state dict) for --model")
    p.add_argument("--num-classes", type=int, help="the class count of --model's head (with --weights)")
    p.add_argument(
        "--layout", default="auto", help="the target layer's layout: auto, nchw, nhwc, tokens, tokens:K"
    )
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
    model: nn.Module
    if (args.weights or args.num_classes) and (args.run or args.checkpoint):
        raise CamkitError("--weights and --num-classes go with --model, not --run or --checkpoint")
    if args.run or args.checkpoint:
        if args.model:
            raise CamkitError("give --model, or --run/--checkpoint, not both")
        from camkit.models.checkpoint import load_checkpoint

        data, ckpt = model_and_data(args)
        net, meta = load_checkpoint(ckpt, device=device)
        model, names, size = net, meta["class_names"], data.image_size
    else:
        from camkit.models.zoo import load_model

        zm = load_model(args.model or "efficientnet_lite0", args.weights, args.num_classes)
        model, names, size = zm.model, zm.class_names, zm.image_size
    res = explain(
        model, names, args.images, methods, args.out, args.image_size or size, args.topk, layers, device,
        args.alpha, args.cmap, args.tile, progress(), layout=args.layout, **kw,
    )  # fmt: skip
    for path, top in zip(res["images"], res["top_k"], strict=True):
        print(f"{path}: " + ", ".join(f"{q['name']} {q['prob']:.3f}" for q in top))
    if layers is None:
        for m, names_ in res["layers"].items():
            print(f"{m}: target layer {', '.join(names_)} (pass --layer to choose another)")
    print(f"wrote {args.out}/index.html, comparison.png and per-method grids ({', '.join(methods)})")
    return 0
