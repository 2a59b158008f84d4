"""``camkit cv``: k-fold cross-validation on the training split."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from camkit.cli.args import add_run_args, run_config
from camkit.cli.sources import progress


def register(sub: Any) -> None:
    p = sub.add_parser("cv", help="k-fold cross-validation on the training split")
    add_run_args(p)
    p.add_argument(
        "--folds",
        type=int,
        default=5,
        help="folds the training split is cut into; each is the validation split once",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from camkit.train.cv import cross_validate

    cfg = run_config(args)
    s = cross_validate(cfg, args.folds, progress())
    for r in s["folds"]:
        print(f"fold {r['fold']}: best epoch {r['best_epoch']}, val accuracy {r['val_accuracy']:.4f}")
    print(
        f"val accuracy {s['val_accuracy_mean']:.4f} ± {s['val_accuracy_std']:.4f} over {len(s['folds'])} folds"
    )
    print(f"test (fold {s['test_fold']} checkpoint): top-1 {s['test']['accuracy']:.4f}")
    print(
        f"cv folder: {Path(cfg.train.out) / cfg.train.exp_id} (cv.json, config.json, one run folder per fold)"
    )
    return 0
