"""``camkit sweep``: train a grid of settings, one run folder each."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from camkit.cli.args import add_run_args, run_config
from camkit.cli.sources import progress


def register(sub: Any) -> None:
    p = sub.add_parser("sweep", help="train a grid of settings, one run folder each; resumable")
    add_run_args(p)
    p.add_argument(
        "--grid",
        action="append",
        required=True,
        help="FIELD=V1,V2,... (repeat for more fields), e.g. lr=1e-5,5e-5,1e-4,2e-4",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from camkit.train.sweep import parse_grid, run_sweep, summary_table

    cfg = run_config(args)
    res = run_sweep(cfg, parse_grid(args.grid, cfg), progress())
    print(summary_table(res["points"]), end="")
    print(f"sweep folder: {Path(cfg.train.out) / cfg.train.exp_id} (sweep.json, sweep.md)")
    return 0
