"""What the commands share beyond arguments: a progress bar, and the model, data and map
file that --run / --checkpoint / --model / --images / --maps name."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from camkit.cli.options import apply_args
from camkit.core.errors import CamkitError


def progress() -> Any:
    """A tqdm bar (log lines when stderr is not a terminal) on rank 0, nothing on the other
    ranks of a torchrun job."""
    import os

    from camkit.cli.progress import cli_progress
    from camkit.core.progress import NoProgress

    return NoProgress() if os.environ.get("RANK", "0") != "0" else cli_progress()


def model_and_data(args: argparse.Namespace) -> tuple[Any, Path]:
    """The data config and checkpoint named by --run / --checkpoint, with the data flags applied."""
    from camkit.data.datasets import DataConfig
    from camkit.models.checkpoint import check_run_weights, read_metadata
    from camkit.train.config import RunConfig

    data = DataConfig()
    if args.run:
        run = Path(args.run)
        cfg_file = run / "config.json"
        if not cfg_file.is_file():
            raise CamkitError(f"--run {run}: no config.json there; pass a run folder made by camkit train")
        run_cfg = RunConfig.load(cfg_file)
        data = run_cfg.data
        ckpt = Path(args.checkpoint) if args.checkpoint else run / "best.safetensors"
        if not args.checkpoint:  # a checkpoint given by hand may be another model on purpose
            check_run_weights(read_metadata(ckpt), run_cfg.model, ckpt)
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
    """The map file of --maps and the split it was made from (data flags applied)."""
    from camkit.core.mapfile import load_maps
    from camkit.data.datasets import DataConfig, build_split

    ms = load_maps(args.maps)
    if "data" not in ms.meta and not (args.dataset or args.data_root):
        raise CamkitError(
            f"--maps {args.maps}: the maps carry no dataset (made from --images or a pretrained model); pass --dataset and --data-root"
        )
    recorded = ms.meta.get("data")
    data = apply_args(DataConfig.from_dict(recorded if isinstance(recorded, dict) else {}), args)
    split = args.split or str(ms.meta.get("split", "test"))
    return ms, build_split(data, split)


def class_name(names: list[str], k: int) -> str:
    """Class ``k``'s name, or its id when the names do not cover it."""
    return names[k] if 0 <= k < len(names) else str(k)
