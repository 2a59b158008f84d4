"""``camkit augment``: the study's offline augmentation, written as an ImageFolder tree."""

from __future__ import annotations

import argparse
from typing import Any

from camkit.cli.args import add_data_args
from camkit.cli.options import apply_args


def register(sub: Any) -> None:
    p = sub.add_parser(
        "augment", help="write N augmented copies of each training image (the study's offline variant)"
    )
    add_data_args(p)
    p.add_argument("--split", default="train", help="split to copy")
    p.add_argument("--copies", type=int, default=5, help="augmented copies per image")
    p.add_argument("--seed", type=int, default=0, help="augmentation seed")
    p.add_argument("--out", required=True, help="output ImageFolder tree (masks go to OUT_masks)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from camkit.data.augment import STUDY, write_augmented_copies
    from camkit.data.datasets import DataConfig, build_split, class_names

    data = apply_args(DataConfig(), args)
    aug = data.augment if data.augment.active else STUDY
    ds = build_split(data, args.split, augment=False)
    n = write_augmented_copies(ds, class_names(data), args.out, aug, args.copies, data.image_size, args.seed)
    print(f"wrote {n} images under {args.out} ({args.copies} augmented copies per image; {aug})")
    return 0
