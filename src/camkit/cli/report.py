"""``camkit report``: one self-contained HTML page for a run or a study folder."""

from __future__ import annotations

import argparse
from typing import Any

from camkit.cli.args import add_device_arg, add_method_args, method_args
from camkit.cli.sources import check_outputs, progress


def register(sub: Any) -> None:
    p = sub.add_parser("report", help="one self-contained HTML page for a run or a study folder")
    p.add_argument("run_dir", help="a run folder (camkit train) or a study folder (camkit study)")
    p.add_argument("--out", help="output .html (default: RUN_DIR/report.html)")
    p.add_argument("--split", default="test", help="split to score")
    add_method_args(p, default="cam", layers=False)
    p.add_argument("--num", type=int, default=12, help="gallery size per method, worst first")
    p.add_argument("--alpha", type=float, default=0.5, help="heatmap opacity")
    p.add_argument("--cmap", default="jet", help="a matplotlib colormap")
    add_device_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from camkit.apps.report import report
    from camkit.core.dist import resolve_device

    check_outputs({"--out": args.out})
    methods, _, kw = method_args(args)
    path = report(
        args.run_dir, args.out, args.split, methods, args.num, resolve_device(args.device), args.alpha, args.cmap,
        progress(), kw,
    )  # fmt: skip
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, self-contained; open it in any browser)")
    return 0
