"""``camkit demo``: train, extract and score on the embedded benchmark."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from camkit.cli.sources import progress


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="train, extract and score on the embedded benchmark")
    p.add_argument("--quick", action="store_true", help="smoke size (<= 90 s)")
    p.add_argument("--out", default="camkit-demo", help="output folder")
    p.add_argument("--data-root", help="folder of the Fashion-MNIST IDX .gz files (default: Debian's)")
    p.add_argument("--force", action="store_true", help="replace a previous demo run in --out")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from camkit.apps.demo import run_demo

    m = run_demo(args.out, quick=args.quick, data_root=args.data_root, force=args.force, progress=progress)
    size = "quick" if args.quick else "full"
    print(f"camkit demo ({size}): {m['images']['train']} train / {m['images']['test']} test canvases, "
          f"best epoch {m['best_epoch']}")  # fmt: skip
    print(f"{'':<14} {'accuracy':>8} {'mIoU@t':>8} {'t':>5} {'peak IoU':>9} {'peak t':>7}")
    print(
        f"{'CAM':<14} {m['accuracy']:>8.4f} {m['miou']:>8.4f} {m['threshold']:>5.2f} "
        f"{m['peak_iou']:>9.4f} {m['peak_threshold']:>7.2f}"
    )
    for name, b in m["baselines"].items():
        print(f"{name:<14} {'':>8} {b['miou']:>8.4f} {'':>5} {b['peak_iou']:>9.4f} {'':>7}")
    out = Path(args.out)
    print(
        f"wall time {m['wall_time_s']:.1f} s; metrics in {out / 'metrics.json'}, overlays in {out / 'visuals'}"
    )
    return 0
