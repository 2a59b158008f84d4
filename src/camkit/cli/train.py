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


def top_k(scores: dict[str, float], classes: int) -> str:
    """`` top-3 … top-5 …`` for the k below the class count (top-5 of 5 classes is always 1)."""
    return "".join(f" top-{k} {scores[f'top{k}']:.4f}" for k in (3, 5) if k < classes and f"top{k}" in scores)


def run(args: argparse.Namespace) -> int:
    from camkit.train.loop import train_run

    cfg = run_config(args)
    s = train_run(cfg, progress())  # sets cfg.model.num_classes from the data
    if "map" in s["val"]:  # multi-label
        line = f"best epoch {s['best_epoch']}: val mAP {s['val']['map']:.4f}"
        if "test" in s:
            t = s["test"]
            line += f" | test mAP {t['map']:.4f} F1 {t['f1']:.4f} exact match {t['accuracy']:.4f}"
    else:
        line = f"best epoch {s['best_epoch']}: val accuracy {s['val']['accuracy']:.4f}"
        if "test" in s:
            t = s["test"]
            line += f" | test top-1 {t['accuracy']:.4f}" + top_k(t, cfg.model.num_classes)
    print(line)
    print(f"run folder: {s['run_dir']}")
    return 0
