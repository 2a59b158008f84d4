"""``camkit visualize``: heatmap overlays and binary masks of saved maps."""

from __future__ import annotations

import argparse
from typing import Any

from camkit.cli.args import add_data_args
from camkit.cli.sources import check_outputs, class_name, maps_and_split


def register(sub: Any) -> None:
    p = sub.add_parser("visualize", help="write heatmap overlays and binary masks")
    p.add_argument("--maps", required=True, help="a .npz from camkit extract")
    p.add_argument("--split", help="split to draw (default: the one the maps came from)")
    p.add_argument(
        "--threshold", type=float, help="mask threshold (default: the sweep's peak, or 0.5 without masks)"
    )
    p.add_argument("--num", type=int, default=10, help="images to draw")
    p.add_argument("--alpha", type=float, default=0.5, help="heatmap opacity")
    p.add_argument("--cmap", default="jet", help="a matplotlib colormap")
    p.add_argument("--out", required=True, help="output folder")
    add_data_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from camkit.core.ops import spatial_size
    from camkit.pipeline.evaluate import normalized_maps, score_maps
    from camkit.viz.overlay import write_visuals

    check_outputs(folders={"--out": args.out})
    ms, ds = maps_and_split(args)
    n = min(args.num, len(ds))
    batch = [ds[i] for i in range(n)]
    images = torch.stack([b["image"] for b in batch])
    names = ms.meta.get("class_names") or []
    if ms.per_class:  # one row per (image, class present), normalized as the seeds are
        from camkit.wsss.seeds import class_pair_masks, score_seeds

        masks = torch.stack([b["mask"] for b in batch])
        s, c, scores, gt = class_pair_masks(ms.maps[:n], ms.targets[:n], masks)
        t = args.threshold
        if t is None:
            t = float(score_seeds(ms, ds).peak_bg_threshold)
        cls = [class_name(names, int(k)) for k in c]
        ids = [f"{ms.ids[int(i)]}_{name}" for i, name in zip(s, cls, strict=True)]
        files = write_visuals(args.out, images[s], scores, gt, ids, cls, t, args.alpha, args.cmap)
        print(f"wrote {len(files)} files under {args.out} (seed threshold {t:.2f})")
        return 0
    has = all(bool(b["has_mask"]) for b in batch)
    truth = torch.stack([b["mask"] for b in batch]).bool() if has else None
    t = args.threshold
    if t is None:
        t = score_maps(ms, ds).peak_threshold if has else 0.5
    maps = normalized_maps(ms.maps[:n], spatial_size(images))
    titles = [class_name(names, int(ms.targets[i])) for i in range(n)]
    files = write_visuals(args.out, images, maps, truth, ms.ids[:n], titles, t, args.alpha, args.cmap)
    print(f"wrote {len(files)} files under {args.out} (threshold {t:.2f})")
    return 0
