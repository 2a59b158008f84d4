"""``camkit train``: train a CAMNet classifier."""

from __future__ import annotations

import argparse
from typing import Any

from camkit.cli.args import add_run_args, run_config
from camkit.cli.sources import progress


def register(sub: Any) -> None:
    p = sub.add_parser("train", help="train a CAMNet classifier")
    add_run_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from camkit.train.loop import train_run

    s = train_run(run_config(args), progress())
    if "map" in s["val"]:  # multi-label
        line = f"best epoch {s['best_epoch']}: val mAP {s['val']['map']:.4f}"
        if "test" in s:
            t = s["test"]
            line += f" | test mAP {t['map']:.4f} F1 {t['f1']:.4f} exact match {t['accuracy']:.4f}"
    else:
        line = f"best epoch {s['best_epoch']}: val accuracy {s['val']['accuracy']:.4f}"
        if "test" in s:
            t = s["test"]
            line += f" | test top-1 {t['accuracy']:.4f} top-3 {t['top3']:.4f} top-5 {t['top5']:.4f}"
    print(line)
    print(f"run folder: {s['run_dir']}")
    return 0
