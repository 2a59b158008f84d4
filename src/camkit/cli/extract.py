"""``camkit extract``: maps from a checkpoint or a pretrained model, to .npz or shards."""

from __future__ import annotations

import argparse
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
    p.add_argument(
        "--out",
        help="the map file to write, exactly as named; with several methods put {method} in it "
        "(maps_{method}.npz writes maps_cam.npz, maps_grad-cam.npz, ...)",
    )
    p.add_argument(
        "--shard-dir",
        help="one file per image under DIR, resumable, and split across ranks under torchrun "
        "(with --out: also gathered)",
    )
    p.set_defaults(func=run)


def out_paths(out: str | None, methods: list[str]) -> dict[str, Path]:
    """The file each method's maps go to: ``out`` with ``{method}`` replaced (required with
    several methods), checked before any work."""
    from camkit.core.io import output_problem

    if out is None:
        return {}
    if len(methods) > 1 and "{method}" not in out:
        raise CamkitError(
            f"--out {out}: {len(methods)} methods need {{method}} in the file name, "
            f"e.g. --out {_templated(out)}, so each file is named as given"
        )
    paths = {m: Path(out.replace("{method}", m)) for m in methods}
    for path in paths.values():
        problem = output_problem(path)
        if problem:
            raise CamkitError(f"--out {path}: {problem}")
    return paths


def _templated(out: str) -> str:
    p = Path(out)
    return str(p.with_name(f"{p.stem}_{{method}}{p.suffix or '.npz'}"))


def run(args: argparse.Namespace) -> int:
    from camkit.core.dist import cleanup, device_for, resolve_device, setup
    from camkit.core.mapfile import save_maps
    from camkit.core.provenance import KEY
    from camkit.methods import method_options
    from camkit.pipeline.extract import extract, map_meta

    world = setup(args.device)
    if world.distributed and not args.shard_dir:
        raise CamkitError("under torchrun, extract writes one file per image: pass --shard-dir DIR")
    if not (args.out or args.shard_dir):
        raise CamkitError("pass --out FILE.npz, or --shard-dir DIR for one file per image")
    device = resolve_device(device_for(world, args.device))
    methods, layers, kw = method_args(args)
    if not methods:
        raise CamkitError("--method: name at least one method (see camkit methods)")
    paths = out_paths(args.out, methods)
    folders = _shard_folders(args.shard_dir, methods)
    model, names, _, ds, _, source = model_images(args, device)
    info = {"source": source, **checkpoint_info(source)}
    for m in methods:
        t0 = time.perf_counter()
        mkw = method_options(m, kw)
        if args.shard_dir:
            from camkit.pipeline.shards import extract_shards, gather

            meta = map_meta(model, ds, m, args.target, layers, model_info=info)
            meta.update({"source": source, "class_names": names, "layers": layers})
            folder = folders[m]
            c = extract_shards(model, ds, m, folder, args.target, args.batch_size, device, progress(),
                               world=world, meta=meta, layers=layers, **mkw)  # fmt: skip
            speed = rate_text(c["written"], time.perf_counter() - t0)
            print(
                f"{m}: {c['written']} maps written, {c['skipped']} already there, {c['total']} in all -> {folder} "
                f"({speed} over {world.size} rank(s))"
            )
            if not paths or not world.main:
                continue
            ms = gather(folder)
        else:
            ms = extract(model, ds, m, args.target, args.batch_size, device, progress(), layers=layers, **mkw)
            ms.meta[KEY]["model"].update(info)  # type: ignore[index]
            ms.meta.update({"source": source, "class_names": names, "layers": layers})
        save_maps(paths[m], ms)
        speed = rate_text(len(ms), time.perf_counter() - t0)
        print(f"{m}: {len(ms)} maps of {tuple(ms.maps.shape[1:])} -> {paths[m]} ({speed})")
    cleanup(world)
    return 0


def _shard_folders(shard_dir: str | None, methods: list[str]) -> dict[str, Path]:
    """Each method's shard folder: DIR itself for one method, DIR/METHOD for several."""
    from camkit.core.io import output_problem

    if not shard_dir:
        return {}
    folders = {m: Path(shard_dir) if len(methods) == 1 else Path(shard_dir) / m for m in methods}
    for f in folders.values():
        problem = output_problem(f, folder=True)
        if problem:
            raise CamkitError(f"--shard-dir {f}: {problem}")
    return folders


def checkpoint_info(source: str) -> dict[str, str]:
    """The checkpoint file's hash (16 hex digits) when the model came from one."""
    import hashlib

    path = Path(source)
    if not path.is_file():
        return {}
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return {"checkpoint_sha256": h.hexdigest()[:16]}
