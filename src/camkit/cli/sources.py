"""What the commands share beyond arguments: a progress bar, and the model, data and map
file that --run / --checkpoint / --model / --images / --maps name."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from camkit.cli.options import apply_args
from camkit.core.errors import CamkitError

log = logging.getLogger(__name__)


def progress() -> Any:
    """A tqdm bar on rank 0, nothing on the other ranks of a torchrun job."""
    import os

    from camkit.cli.progress import TqdmProgress
    from camkit.core.progress import NoProgress

    return NoProgress() if os.environ.get("RANK", "0") != "0" else TqdmProgress()


def model_and_data(args: argparse.Namespace) -> tuple[Any, Path]:
    """The data config and checkpoint named by --run / --checkpoint, with the data flags applied."""
    from camkit.data.datasets import DataConfig
    from camkit.models.checkpoint import read_metadata
    from camkit.train.config import RunConfig

    data = DataConfig()
    if args.run:
        run = Path(args.run)
        cfg_file = run / "config.json"
        if not cfg_file.is_file():
            raise CamkitError(f"--run {run}: no config.json there; pass a run folder made by camkit train")
        data = RunConfig.from_dict(json.loads(cfg_file.read_text())).data
        ckpt = Path(args.checkpoint) if args.checkpoint else run / "best.safetensors"
    elif args.checkpoint:
        ckpt = Path(args.checkpoint)
    else:
        raise CamkitError("pass --run RUN_DIR, --checkpoint FILE or --model NAME")
    read_metadata(ckpt)  # fail early, one line, on a bad file
    return apply_args(data, args), ckpt


def model_images(args: argparse.Namespace, device: Any) -> tuple[Any, list[str], Any, Any, str, str]:
    """(model, class names, data config or None, dataset, split name, source) for extract-like
    commands: a checkpoint (--run/--checkpoint) or a pretrained --model, over --images or a split."""
    from camkit.data.datasets import build_split, image_folder_dataset
    from camkit.models.checkpoint import load_checkpoint

    if args.model:
        from camkit.models.pretrained import imagenet_categories, imagenet_model

        model, names, data = imagenet_model(args.model).to(device), imagenet_categories(), None
        source = f"imagenet:{args.model}"
    else:
        data, ckpt = model_and_data(args)
        model, meta = load_checkpoint(ckpt, device=device)
        names, source = meta["class_names"], str(ckpt)
    if args.images:
        size = args.image_size or (224 if args.model else (data.image_size if data else 224))
        return model, names, None, image_folder_dataset(args.images, size), "images", source
    if data is None:
        raise CamkitError("--model needs --images DIR (a folder of images to explain)")
    return model, names, data, build_split(data, args.split), args.split, source


def maps_and_split(args: argparse.Namespace) -> tuple[Any, Any]:
    """The map file of --maps and the split it was made from: the data config, split and
    fingerprint recorded in the file (its provenance). Data options that change what the split
    holds, or another --split, are refused with what differs; so is data on disk that no longer
    matches the fingerprint. Files without provenance (older camkit) load with a warning."""
    from camkit.core.mapfile import load_maps
    from camkit.core.provenance import KEY
    from camkit.data.datasets import DataConfig, build_split

    ms = load_maps(args.maps)
    rec = ms.meta.get(KEY)
    data = rec.get("data") if isinstance(rec, dict) else None
    if not isinstance(data, dict) or not isinstance(data.get("config"), dict):
        if not isinstance(rec, dict):
            log.warning(
                "%s carries no provenance (made by an older camkit): its dataset is not checked", args.maps
            )
        if "data" not in ms.meta and not (args.dataset or args.data_root):
            raise CamkitError(
                f"--maps {args.maps}: the maps carry no dataset (made from --images or a pretrained model); "
                "pass --dataset and --data-root"
            )
        recorded = ms.meta.get("data")
        cfg = apply_args(DataConfig.from_dict(recorded if isinstance(recorded, dict) else {}), args)
        return ms, build_split(cfg, args.split or str(ms.meta.get("split") or "test"))
    recorded_cfg = DataConfig.from_dict(data["config"])
    cfg = apply_args(recorded_cfg, args)
    split = args.split or str(data.get("split") or "test")
    _refuse_other_data(args.maps, recorded_cfg, cfg, str(data.get("split")), split)
    ds = build_split(cfg, split)
    _check_fingerprint(args.maps, data.get("fingerprint"), ds, split)
    return ms, ds


def _refuse_other_data(maps: str, recorded: Any, given: Any, rec_split: str, split: str) -> None:
    """A one-line error when the data options or --split given differ from the maps' own."""
    import dataclasses

    from camkit.core.options import flag_of, option_info
    from camkit.core.provenance import data_differences

    flags = {f.name: flag_of(f) for f in dataclasses.fields(given) if option_info(f) is not None}
    diffs = [
        f"{flags.get(k, k)} {a} in the maps, {b} given"
        for k, a, b in data_differences(dataclasses.asdict(recorded), dataclasses.asdict(given))
    ]
    if split != rec_split:
        diffs.append(f"--split {rec_split} in the maps, {split} given")
    if diffs:
        raise CamkitError(
            f"--maps {maps}: made from other data ({'; '.join(diffs)}); drop those options to score "
            "against the maps' own data, or extract maps from the data you want"
        )


def _check_fingerprint(maps: str, recorded: Any, ds: Any, split: str) -> None:
    """A one-line error when the split built now is not the one the maps were made from."""
    from camkit.core.provenance import fingerprint, fingerprint_differences

    if not isinstance(recorded, dict):
        return
    diff = fingerprint_differences(recorded, fingerprint(ds))
    if diff:
        raise CamkitError(
            f"--maps {maps}: the {split} split found now is not the one the maps were made from "
            f"({', '.join(diff)} differ); point --data-root at that data, or extract the maps again"
        )


def check_outputs(files: dict[str, Any] | None = None, folders: dict[str, Any] | None = None) -> None:
    """Before any work: a one-line error for an output file (``{flag: path}``) that is an existing
    folder or sits under a regular file, or an output folder that is a file."""
    from camkit.core.io import output_problem

    for kind, paths in ((False, files or {}), (True, folders or {})):
        for flag, path in paths.items():
            problem = output_problem(path, folder=kind) if path else None
            if problem:
                raise CamkitError(f"{flag} {path}: {problem}")


def class_name(names: list[str], k: int) -> str:
    """Class ``k``'s name, or its id when the names do not cover it."""
    return names[k] if 0 <= k < len(names) else str(k)
