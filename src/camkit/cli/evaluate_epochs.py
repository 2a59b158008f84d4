"""``camkit evaluate-epochs``: score every saved epoch of a run."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from camkit.cli.args import add_device_arg
from camkit.cli.sources import progress


def register(sub: Any) -> None:
    p = sub.add_parser("evaluate-epochs", help="top-1/3/5 of every saved epoch of a run (epochs.json)")
    p.add_argument("--run", required=True, help="a run folder trained with --save-every-epoch")
    p.add_argument("--split", default="val", help="split to score")
    add_device_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from camkit.train.epochs import evaluate_epochs

    res = evaluate_epochs(args.run, args.split, args.device, progress())
    multi = bool(res["epochs"]) and "map" in res["epochs"][0]
    from camkit.train.config import RunConfig

    classes = RunConfig.load(Path(args.run) / "config.json").model.num_classes
    ks = [k for k in (1, 3, 5) if k == 1 or k < classes]  # no top-5 of 5 classes or fewer
    cols = ("top1", "map", "f1") if multi else tuple(f"top{k}" for k in ks)
    heads = ("exact", "mAP", "F1") if multi else tuple(f"top-{k}" for k in ks)
    print(f"{'epoch':>5} {'loss':>8} " + " ".join(f"{h:>7}" for h in heads))
    for r in res["epochs"]:
        print(f"{r['epoch']:>5} {r['loss']:>8.4f} " + " ".join(f"{r[c]:>7.4f}" for c in cols))
    print(f"wrote {Path(args.run) / 'epochs.json'}")
    return 0
