"""``camkit faithfulness``: faithfulness and sanity metrics of map methods (deletion/insertion,
Average Drop, ROAD, the pointing games, relevance mass/rank, MPRT, random logit)."""

from __future__ import annotations

import argparse
from typing import Any

from camkit.cli.args import (
    add_device_arg,
    add_method_args,
    add_model_source_args,
    add_source_args,
    method_args,
)
from camkit.cli.sources import model_images, progress

DEFAULT = "deletion,insertion,average-drop"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "faithfulness",
        help="faithfulness and sanity metrics: deletion/insertion, ROAD, pointing games, MPRT, ...",
    )
    from camkit.pipeline.faith_metrics import metric_names  # after add_parser: `camkit --help` stays light

    add_source_args(p)
    add_model_source_args(p)
    add_method_args(p, default="grad-cam", target="pred")
    g = p.add_argument_group("metrics")
    g.add_argument(
        "--metric", default=DEFAULT, help=f"one or more of: {', '.join(metric_names())} (comma-separated)"
    )
    g.add_argument("--steps", type=int, default=50, help="deletion/insertion steps")
    g.add_argument(
        "--percentiles", default="10,20,30,40,50,60,70,80,90", help="ROAD percentiles, each in (0, 100)"
    )
    g.add_argument(
        "--tolerance", type=float, default=15, help="pointing game tolerance in pixels (TorchRay: 15)"
    )
    g.add_argument(
        "--mprt-steps",
        type=int,
        default=5,
        help="MPRT: randomization steps (groups of modules, output first)",
    )
    p.add_argument("--num", type=int, help="score only the first N images (default: all)")
    p.add_argument("--batch-size", type=int, default=16, help="images per batch")
    add_device_arg(p)
    p.add_argument("--out", help="write the results as JSON")
    p.set_defaults(func=run)


def _percentiles(text: str) -> list[float]:
    from camkit.core.errors import OptionError

    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise OptionError(
            "percentiles", "give comma-separated numbers in (0, 100), e.g. 10,50,90", text
        ) from None


def _fmt(v: Any) -> str:
    return "-" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)


def run(args: argparse.Namespace) -> int:
    import torch

    from camkit.core.dist import resolve_device
    from camkit.core.io import write_json
    from camkit.pipeline.faith_metrics import get_metric
    from camkit.pipeline.faithfulness import faithfulness

    device = resolve_device(args.device)
    methods, layers, kw = method_args(args)
    metrics = [m.strip() for m in args.metric.split(",") if m.strip()]
    for m in metrics:
        get_metric(m)  # unknown names fail before the model loads
    opts = {
        "percentiles": _percentiles(args.percentiles),
        "tolerance": args.tolerance,
        "mprt_steps": args.mprt_steps,
    }
    if "road" in metrics:
        from camkit.metrics.road import check_percentiles

        check_percentiles(opts["percentiles"])
    model, _, _, ds, split, source = model_images(args, device)
    if args.num:
        ds = torch.utils.data.Subset(ds, range(min(args.num, len(ds))))
    res = faithfulness(model, ds, methods, layers, args.target, args.steps, args.batch_size, device, progress,
                       metrics=metrics, metric_options=opts, **kw)  # fmt: skip
    print(f"{source} on {split}, {res.images} images; metrics: {', '.join(metrics)}")
    names = list(res.methods)
    keys = [k for k, v in res.methods[names[0]].items() if not isinstance(v, (dict, list))]
    print(f"{'score':<24} " + " ".join(f"{m:>14}" for m in names))
    for k in keys:
        print(f"{k:<24} " + " ".join(f"{_fmt(res.methods[m][k]):>14}" for m in names))
    for m in names:
        for step in res.methods[m].get("mprt_steps", []):
            print(f"{m}: MPRT after {step['modules']} ({step['count']} modules): "
                  f"Spearman {_fmt(step['spearman'])}, SSIM {_fmt(step['ssim'])}")  # fmt: skip
    if args.out:
        write_json(args.out, {"source": source, "split": split, "images": res.images, "steps": args.steps,
                              "metrics": metrics, "options": opts, "methods": res.methods})  # fmt: skip
        print(f"wrote {args.out}")
    return 0
