"""``camkit evaluate``: score saved maps (or a folder of predicted masks)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from camkit.cli.args import add_data_args
from camkit.cli.sources import check_outputs, maps_and_split
from camkit.core.errors import CamkitError


def register(sub: Any) -> None:
    p = sub.add_parser("evaluate", help="score saved maps: IoU sweep, PxAP, MaxBoxAcc(V2), localization")
    p.add_argument("--maps", help="a .npz from camkit extract")
    p.add_argument("--pred-masks", help="a folder of predicted binary masks (the lab's per-image IoU list)")
    p.add_argument("--gt-masks", help="the folder of ground-truth masks with the same file stems")
    p.add_argument("--split", help="split to score (default: the one the maps came from)")
    p.add_argument("--threshold", type=float, help="report mIoU here (default: at the sweep's peak)")
    p.add_argument("--step", type=float, default=0.01, help="threshold sweep step")
    p.add_argument(
        "--bg-threshold", type=float,
        help="class maps: report the seeds at this background threshold too (default: the sweep's peak)",
    )  # fmt: skip
    p.add_argument(
        "--norm",
        default="relu-max",
        choices=("relu-max", "minmax", "sigmoid", "tanh-max"),
        help="class maps: map normalization before seeding (IRN, ReCAM and LPCAM use relu-max)",
    )
    p.add_argument("--out", help="write the results as JSON")
    p.add_argument("--plots", help="a folder for iou_curve.png and pr_curve.png")
    add_data_args(p)
    p.set_defaults(func=run)


def _table(rows: list[tuple[str, str]], width: int) -> None:
    name_w = max(len(r[0]) for r in rows)
    for name, val in rows:
        print(f"  {name:<{name_w}}  {val:>{width}}")


def _write(args: argparse.Namespace, res: Any, ms: Any) -> None:
    """The scores as JSON, with the maps' provenance (what they were made from) beside them."""
    from camkit.core.io import write_json
    from camkit.core.provenance import KEY

    if args.out:
        out = res.to_dict() if hasattr(res, "to_dict") else dict(res)
        write_json(args.out, {**out, KEY: ms.meta.get(KEY)})
        print(f"wrote {args.out}")


def _folders(args: argparse.Namespace) -> int:
    from camkit.core.io import write_json
    from camkit.pipeline.evaluate import folder_iou

    if not (args.pred_masks and args.gt_masks):
        raise CamkitError("--pred-masks and --gt-masks go together")
    ious = folder_iou(args.pred_masks, args.gt_masks)
    for stem, v in ious.items():
        print(f"{stem}\t{v:.4f}")
    mean = sum(ious.values()) / len(ious)
    print(f"mean IoU over {len(ious)} masks: {mean:.4f}")
    if args.out:
        write_json(args.out, {"per_image_iou": ious, "miou": mean})
        print(f"wrote {args.out}")
    return 0


def run(args: argparse.Namespace) -> int:
    from camkit.pipeline.evaluate import map_classification, score_maps

    check_outputs({"--out": args.out}, {"--plots": args.plots})
    if args.pred_masks or args.gt_masks:
        return _folders(args)
    if not args.maps:
        raise CamkitError("pass --maps FILE (or --pred-masks DIR --gt-masks DIR)")
    ms, ds = maps_and_split(args)
    if ms.per_class:
        return _class_maps(args, ms, ds)
    scores = score_maps(ms, ds, threshold=args.threshold, step=args.step, wsol=True)
    res: dict[str, Any] = {**scores.to_dict(), **map_classification(ms)}

    def f(v: object, nd: int = 4) -> str:
        return "n/a" if not isinstance(v, (int, float)) else f"{v:.{nd}f}"

    print(f"{ms.method}: {res['images']} images with masks")
    seg = " / ".join(f(res["segmentation"][x], 3) for x in ("miou", "fp", "fn"))
    _table([
        ("top-1 accuracy", f(res.get("accuracy"))),
        (f"mIoU at t={res['threshold']:.2f}", f(res["miou"])),
        (f"peak IoU (t={res['peak_threshold']:.2f})", f(res["peak_iou"])),
        ("seg. mIoU (bg+fg) / FP / FN", seg),
        ("PxAP (%)", f(res["pxap"], 2)),
        ("MaxBoxAcc / GT-known loc (%)", f(res["max_box_acc"], 2)),
        ("top-1 loc (%)", f(res["top1_loc"], 2)),
        ("MaxBoxAccV2 (%)", f(res["max_box_acc_v2"], 2)),
    ], 8)  # fmt: skip
    if args.plots:
        from camkit.viz.curves import plot_iou_curve, plot_pr_curve

        plots = Path(args.plots)
        plot_iou_curve(plots / "iou_curve.png", {ms.method: (res["thresholds"], res["miou_curve"])})
        pr = res["pr_curve"]
        plot_pr_curve(plots / "pr_curve.png", pr["precision"], pr["recall"], res["pxap"])
        print(f"plots in {plots}")
    _write(args, res, ms)
    return 0


def _class_maps(args: argparse.Namespace, ms: Any, ds: Any) -> int:
    """Class map sets (multi-label data): seeds and per-class peak IoU (max and PaS)."""
    from camkit.pipeline.evaluate import evaluate_class_maps

    res = evaluate_class_maps(ms, ds, bg_threshold=args.bg_threshold, step=args.step, norm=args.norm)
    seeds, peak, cls = res.seeds, res.peak_iou, res.classification
    print(f"{ms.method}: {seeds['images']} images, seeds from the ground-truth image labels ({args.norm})")
    at = "given" if args.bg_threshold is not None else "peak"
    _table([
        (f"seed mIoU at bg t={seeds['bg_threshold']:.2f} ({at})", f"{seeds['miou']:.4f}"),
        ("  FP / FN", f"{seeds['fp']:.3f} / {seeds['fn']:.3f}"),
        ("  precision / recall", f"{seeds['precision']:.3f} / {seeds['recall']:.3f}"),
        (f"seed peak mIoU (t={seeds['peak_bg_threshold']:.2f})", f"{seeds['peak_miou']:.4f}"),
        (f"per-class peak IoU, max (θ={peak['max']['peak_theta']:.2f})", f"{peak['max']['peak_iou']:.4f}"),
        (f"per-class peak IoU, PaS p98 (θ={peak['percentile']['peak_theta']:.2f})",
         f"{peak['percentile']['peak_iou']:.4f}"),
        ("multi-label F1 / exact match", f"{cls['f1']:.3f} / {cls['exact_match']:.3f}"),
    ], 13)  # fmt: skip
    if args.plots:
        from camkit.viz.curves import plot_iou_curve

        plots = Path(args.plots)
        plot_iou_curve(plots / "seed_miou_curve.png", {ms.method: (seeds["thresholds"], seeds["miou_curve"])})
        print(f"plots in {plots}")
    _write(args, res, ms)
    return 0
