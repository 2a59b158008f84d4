"""``camkit faithfulness``: deletion/insertion AUC, Average Drop and Increase in Confidence."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from camkit.cli.args import (
    add_device_arg,
    add_method_args,
    add_model_source_args,
    add_source_args,
    method_args,
)
from camkit.cli.sources import model_images, progress


def register(sub: Any) -> None:
    p = sub.add_parser("faithfulness", help="deletion/insertion AUC, Average Drop and Increase in Confidence")
    add_source_args(p)
    add_model_source_args(p)
    add_method_args(p, default="grad-cam", target="pred")
    p.add_argument("--steps", type=int, default=50, help="deletion/insertion steps")
    p.add_argument("--num", type=int, help="score only the first N images (default: all)")
    p.add_argument("--batch-size", type=int, default=16, help="images per batch")
    add_device_arg(p)
    p.add_argument("--out", help="write the results as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from camkit.core.dist import resolve_device
    from camkit.core.io import write_json
    from camkit.pipeline.faithfulness import faithfulness

    device = resolve_device(args.device)
    methods, layers, kw = method_args(args)
    model, _, _, ds, split, source = model_images(args, device)
    if args.num:
        ds = torch.utils.data.Subset(ds, range(min(args.num, len(ds))))
    res = faithfulness(model, ds, methods, layers, args.target, args.steps, args.batch_size, device, progress,
                       **kw)  # fmt: skip
    print(f"{source} on {split}, {res.images} images, {args.steps} steps")
    print(
        f"{'method':<14} {'deletion AUC':>12} {'insertion AUC':>13} {'Avg Drop %':>10} {'Incr. Conf. %':>13}"
    )
    for m, r in res.methods.items():
        print(
            f"{m:<14} {r.deletion_auc:>12.4f} {r.insertion_auc:>13.4f} {r.average_drop:>10.2f} "
            f"{r.increase_in_confidence:>13.2f}"
        )
    if args.out:
        methods_json = {m: dataclasses.asdict(r) for m, r in res.methods.items()}
        write_json(args.out, {"source": source, "split": split, "images": res.images, "steps": args.steps,
                              "methods": methods_json})  # fmt: skip
        print(f"wrote {args.out}")
    return 0
