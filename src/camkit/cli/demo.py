"""``camkit demo``: train, extract and score on the embedded benchmark."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from camkit.cli.sources import progress


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="train, extract and score on the embedded benchmark",
        description="Train a CAM model on Fashion-MNIST canvases, then score plain CAM and the "
        "method chosen on val against exact masks. Example: camkit demo --quick --out demo-quick",
    )
    p.add_argument("--quick", action="store_true", help="fewer canvases and epochs (<= 30 s on 2 cores)")
    p.add_argument("--out", default="camkit-demo", help="output folder (default: camkit-demo)")
    p.add_argument("--data-root", help="folder of the Fashion-MNIST IDX .gz files (default: Debian's)")
    p.add_argument("--force", action="store_true", help="replace a previous demo run in --out")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from camkit.apps.demo import run_demo

    m = run_demo(args.out, quick=args.quick, data_root=args.data_root, force=args.force, progress=progress)
    size = "quick" if args.quick else "full"
    print(f"camkit demo ({size}): {m['images']['train']} train / {m['images']['test']} test canvases, "
          f"best epoch {m['best_epoch']}, test top-1 accuracy {m['accuracy']:.4f}")  # fmt: skip
    print(f"{'test split':<22} {'mIoU@t':>8} {'t':>5} {'peak IoU':>9} {'peak t':>7}")
    best = m["best_method"]
    for name, r in m["methods"].items():
        if "miou" in r:
            label = name.upper() + (" (best on val)" if name == best else "")
            print(
                f"{label:<22} {r['miou']:>8.4f} {r['threshold']:>5.2f} {r['peak_iou']:>9.4f} {r['peak_threshold']:>7.2f}"
            )
    for name, b in m["baselines"].items():
        print(f"{name:<22} {b['miou']:>8.4f} {'':>5} {b['peak_iou']:>9.4f} {'':>7}")
    print("t: the threshold at the peak of the val sweep; the method is chosen by its val peak IoU")
    out = Path(args.out)
    print(
        f"wall time {m['wall_time_s']:.1f} s (CPU {m['cpu_time_s']:.1f} s); metrics in {out / 'metrics.json'}, "
        f"overlays in {out / 'visuals'}"
    )
    return 0
