"""``camkit extract``: maps from a checkpoint or a pretrained model, to .npz or shards."""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import Any

from camkit.cli.args import (
    add_device_arg,
    add_method_args,
    add_model_source_args,
    add_source_args,
    method_args,
)
from camkit.cli.progress import rate_text
from camkit.cli.sources import model_images, progress
from camkit.core.errors import CamkitError


def register(sub: Any) -> None:
    p = sub.add_parser("extract", help="extract maps from a checkpoint or a pretrained model (npz)")
    add_source_args(p)
    add_model_source_args(p)
    add_method_args(p, default="cam", target="label")
    p.add_argument("--batch-size", type=int, default=32, help="images per batch")
    add_device_arg(p)
    p.add_argument("--out", help="output .npz file (several methods: one per method, NAME_METHOD.npz)")
    p.add_argument(
        "--shard-dir",
        help="one file per image under DIR, resumable, and split across ranks under torchrun "
        "(with --out: also gathered)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from camkit.core.dist import cleanup, device_for, resolve_device, setup
    from camkit.core.mapfile import save_maps
    from camkit.methods import method_options
    from camkit.pipeline.extract import extract

    world = setup(args.device)
    if world.distributed and not args.shard_dir:
        raise CamkitError("under torchrun, extract writes one file per image: pass --shard-dir DIR")
    if not (args.out or args.shard_dir):
        raise CamkitError("pass --out FILE.npz, or --shard-dir DIR for one file per image")
    device = resolve_device(device_for(world, args.device))
    methods, layers, kw = method_args(args)
    model, names, data, ds, split, source = model_images(args, device)
    out = Path(args.out) if args.out else None
    for m in methods:
        t0 = time.perf_counter()
        mkw = method_options(m, kw)
        meta: dict[str, object] = {"source": source, "split": split, "class_names": names, "layers": layers}
        if data is not None:
            meta["data"] = dataclasses.asdict(data)
        if args.shard_dir:
            from camkit.pipeline.shards import extract_shards, gather

            folder = Path(args.shard_dir) if len(methods) == 1 else Path(args.shard_dir) / m
            c = extract_shards(model, ds, m, folder, args.target, args.batch_size, device, progress(),
                               world=world, meta=meta, layers=layers, **mkw)  # fmt: skip
            speed = rate_text(c["written"], time.perf_counter() - t0)
            print(
                f"{m}: {c['written']} maps written, {c['skipped']} already there, {c['total']} in all -> {folder} "
                f"({speed} over {world.size} rank(s))"
            )
            if out is None or not world.main:
                continue
            ms = gather(folder)
        else:
            ms = extract(model, ds, m, args.target, args.batch_size, device, progress(), layers=layers, **mkw)
            ms.meta = meta
        assert out is not None
        path = out if len(methods) == 1 else out.with_name(f"{out.stem}_{m}{out.suffix}")
        save_maps(path, ms)
        speed = rate_text(len(ms), time.perf_counter() - t0)
        print(f"{m}: {len(ms)} maps of {tuple(ms.maps.shape[1:])} -> {path} ({speed})")
    cleanup(world)
    return 0
