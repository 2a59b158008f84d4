"""The ``camkit`` command line: parses arguments into config dataclasses, calls the library.

User mistakes surface as one line on stderr (``camkit: error: …``) and exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import sys
from pathlib import Path
from typing import Any

from camkit import __version__
from camkit.cli.errors import cli_message
from camkit.core.errors import CamkitError

log = logging.getLogger("camkit")

DATA_FIELDS = {
    "dataset": "dataset", "data_root": "root", "mask_root": "mask_root", "image_size": "image_size",
    "n_train": "n_train", "n_val": "n_val", "n_test": "n_test", "data_seed": "seed",
    "val_fraction": "val_fraction", "cache_dir": "cache_dir", "aug_hflip": "aug_hflip", "aug_rotate": "aug_rotate",
    "aug_shift": "aug_shift", "aug_jitter": "aug_jitter", "aug_crop": "aug_crop", "max_objects": "max_objects",
}  # fmt: skip
MODEL_FIELDS = {
    "backbone": "backbone", "layer": "layer", "head": "head", "pretrained": "pretrained",
    "weights": "weights", "freeze_backbone": "freeze_backbone", "num_classes": "num_classes",
    "tap_theta": "tap_theta", "output_stride": "output_stride",
}  # fmt: skip
TRAIN_FIELDS = {
    "epochs": "epochs", "lr": "lr", "batch_size": "batch_size", "weight_decay": "weight_decay", "seed": "seed",
    "schedule": "schedule", "step_epochs": "step_epochs", "step_gamma": "step_gamma",
    "label_smoothing": "label_smoothing", "patience": "patience", "overfit_ratio": "overfit_ratio",
    "save_every_epoch": "save_every_epoch", "tensorboard": "tensorboard", "transform": "seg_transforms",
    "seg_weight": "seg_weight", "channels_last": "channels_last", "device": "device", "workers": "workers", "amp": "amp", "out": "out", "exp_id": "exp_id", "resume": "resume", "test": "test",
    "recam_weight": "recam_weight", "recam_norm": "recam_norm", "init": "init",
    "backbone_lr_mult": "backbone_lr_mult",
}  # fmt: skip


def _apply(obj: Any, args: argparse.Namespace, mapping: dict[str, str]) -> Any:
    """A copy of dataclass ``obj`` with every argument the user gave (not None) applied."""
    changes = {
        field: getattr(args, arg) for arg, field in mapping.items() if getattr(args, arg, None) is not None
    }
    return dataclasses.replace(obj, **changes)


def add_data_args(p: argparse.ArgumentParser) -> None:
    from camkit.data.datasets import DATASETS

    g = p.add_argument_group("data")
    g.add_argument(
        "--dataset",
        choices=DATASETS,
        help="fashion (embedded benchmark, default), fashion-multi (its multi-object, multi-label variant), "
        "folder (ImageFolder tree) or lab (CIFAR-10 lab layout)",
    )
    g.add_argument(
        "--max-objects", type=int, help="fashion-multi: up to this many items per canvas (default 3)"
    )
    g.add_argument(
        "--data-root", help="fashion: folder of the IDX .gz files (default: Debian's); folder/lab: the tree"
    )
    g.add_argument("--mask-root", help="folder: a tree of masks parallel to the images")
    g.add_argument("--image-size", type=int, help="model input side in pixels (default 64)")
    g.add_argument("--n-train", type=int, help="fashion: training canvases")
    g.add_argument("--n-val", type=int, help="fashion: validation canvases")
    g.add_argument("--n-test", type=int, help="fashion: test canvases")
    g.add_argument("--data-seed", type=int, help="fashion: generator seed")
    g.add_argument("--val-fraction", type=float, help="folder/lab: share of train held out for validation")
    g.add_argument("--aug-hflip", action="store_true", default=None, help="augment: random horizontal flips")
    g.add_argument("--aug-rotate", type=float, help="augment: random rotation in ±DEG (the study: 20)")
    g.add_argument(
        "--aug-shift", type=float, help="augment: random shift up to this fraction (the study: 0.2)"
    )
    g.add_argument("--aug-jitter", type=float, help="augment: colour jitter strength (e.g. 0.2)")
    g.add_argument(
        "--aug-crop", type=float, help="augment: random resized crop, minimum area fraction (e.g. 0.6)"
    )
    g.add_argument(
        "--cache-dir",
        help="where generated benchmark splits are cached (default $CAMKIT_CACHE or ~/.cache/camkit)",
    )


def add_model_args(p: argparse.ArgumentParser) -> None:
    from camkit.models.backbones import backbone_names

    g = p.add_argument_group("model")
    g.add_argument("--backbone", help=f"one of {', '.join(backbone_names())} (default resnet18)")
    g.add_argument("--layer", help="cut the backbone after this layer (default: layer2 for ResNets)")
    g.add_argument("--head", choices=("gap", "tap"), help="pooling head: gap (default) or tap (Bae et al.)")
    g.add_argument(
        "--tap-theta",
        type=float,
        help="tap: θ_tap, the threshold as a share of each channel's max (default 0.05)",
    )
    g.add_argument(
        "--pretrained",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="start from ImageNet weights",
    )
    g.add_argument(
        "--output-stride", type=int, help="ResNets: stop downsampling at this stride (8 or 16; IRN uses 16)"
    )
    g.add_argument("--weights", help="a local backbone state-dict file (.pth or .safetensors)")
    g.add_argument("--freeze-backbone", action="store_true", default=None, help="train only the classifier")
    g.add_argument("--num-classes", type=int, help="classes (default: from the dataset)")


def add_train_args(p: argparse.ArgumentParser) -> None:
    from camkit.train.config import SCHEDULES
    from camkit.train.objectives import objective_names

    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=int)
    g.add_argument("--lr", type=float)
    g.add_argument("--batch-size", type=int)
    g.add_argument("--weight-decay", type=float)
    g.add_argument("--schedule", choices=SCHEDULES, help="learning-rate schedule (default constant)")
    g.add_argument("--step-epochs", type=int, help="step schedule: epochs between lr drops (default 10)")
    g.add_argument("--step-gamma", type=float, help="step schedule: lr factor at each drop (default 0.1)")
    g.add_argument("--label-smoothing", type=float, help="cross-entropy label smoothing (default 0)")
    g.add_argument("--patience", type=int, help="early stopping: epochs without a better val accuracy")
    g.add_argument(
        "--overfit-ratio", type=float, help="stop once val loss > RATIO x train loss (the Flower-17 study: 2)"
    )
    g.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="NHWC memory format (default on)",
    )
    g.add_argument(
        "--save-every-epoch",
        action="store_true",
        default=None,
        help="keep every epoch's weights (for evaluate-epochs)",
    )
    g.add_argument(
        "--mode",
        choices=objective_names(),
        help="cam (cross-entropy, BCE for multi-label; default), seg (two-branch equivariance loss) "
        "or recam (BCE + ReCAM's softmax CE on FC2)",
    )
    g.add_argument(
        "--init",
        help="start from this checkpoint's weights (recam: the converged CAM model, as in the paper)",
    )
    g.add_argument(
        "--backbone-lr-mult",
        type=float,
        help="the backbone's lr is --lr times this (default 1; fine-tuning: 0.1)",
    )
    g.add_argument("--recam-weight", type=float, help="recam mode: λ, the weight of L_sce (default 1)")
    g.add_argument(
        "--recam-norm",
        choices=("relu-max", "minmax", "sigmoid"),
        help="recam mode: how the CAM masks M_k are normalized (default relu-max)",
    )
    g.add_argument(
        "--transform",
        action="append",
        help="seg mode: a transform A (repeat to compose): scale:0.5, hflip, vflip, rot:DEG, shift:DX,DY",
    )
    g.add_argument(
        "--seg-weight", type=float, help="seg mode: lambda, the weight of the equivariance loss (default 1)"
    )
    g.add_argument(
        "--tensorboard",
        action="store_true",
        default=None,
        help="also write a TensorBoard log (pip install tensorboard)",
    )
    g.add_argument("--config", help="a JSON run config (e.g. from recipes/); flags given here override it")
    g.add_argument("--seed", type=int)
    g.add_argument("--device", help="auto, cpu or cuda[:N] (default auto)")
    g.add_argument("--workers", type=int, help="DataLoader worker processes (default 0)")
    g.add_argument(
        "--amp", choices=("auto", "bf16", "fp16", "off"), help="mixed precision (default auto: on GPUs only)"
    )
    g.add_argument("--out", help="parent folder of run folders (default runs)")
    g.add_argument("--exp-id", help="run folder name (default cam)")
    g.add_argument("--resume", action="store_true", default=None, help="continue the run in OUT/EXP_ID")
    g.add_argument(
        "--no-test", dest="test", action="store_false", default=None, help="skip the final test evaluation"
    )


def run_config(args: argparse.Namespace) -> Any:
    from camkit.train.config import RunConfig

    cfg = RunConfig()
    if getattr(args, "config", None):
        path = Path(args.config)
        try:
            cfg = RunConfig.from_dict(json.loads(path.read_text()), strict=True)
        except FileNotFoundError:
            raise CamkitError(f"--config {path}: file not found") from None
        except (json.JSONDecodeError, TypeError) as e:
            raise CamkitError(f"--config {path}: not a camkit run config ({e})") from None
        except CamkitError as e:
            raise CamkitError(f"--config {path}: {e}") from None
    cfg.data = _apply(cfg.data, args, DATA_FIELDS)
    cfg.model = _apply(cfg.model, args, MODEL_FIELDS)
    cfg.train = _apply(cfg.train, args, TRAIN_FIELDS)
    if getattr(args, "mode", None):
        cfg.mode = args.mode
    return cfg


def _progress() -> Any:
    import os

    from camkit.cli.progress import TqdmProgress
    from camkit.core.progress import NoProgress

    return NoProgress() if os.environ.get("RANK", "0") != "0" else TqdmProgress()


def cmd_train(args: argparse.Namespace) -> int:
    from camkit.train.loop import train_run

    s = train_run(run_config(args), _progress())
    if "map" in s["val"]:  # multi-label
        line = f"best epoch {s['best_epoch']}: val mAP {s['val']['map']:.4f}"
        if "test" in s:
            t = s["test"]
            line += f" | test mAP {t['map']:.4f} F1 {t['f1']:.4f} exact match {t['accuracy']:.4f}"
    else:
        line = f"best epoch {s['best_epoch']}: val accuracy {s['val']['accuracy']:.4f}"
        if "test" in s:
            line += f" | test top-1 {s['test']['accuracy']:.4f} top-3 {s['test']['top3']:.4f} top-5 {s['test']['top5']:.4f}"
    print(line)
    print(f"run folder: {s['run_dir']}")
    return 0


def cmd_augment(args: argparse.Namespace) -> int:
    from camkit.data.augment import STUDY, write_augmented_copies
    from camkit.data.datasets import DataConfig, build_split, class_names

    data = _apply(DataConfig(), args, DATA_FIELDS)
    aug = data.augment() if data.augment().active else STUDY
    ds = build_split(data, args.split, augment=False)
    n = write_augmented_copies(ds, class_names(data), args.out, aug, args.copies, data.image_size, args.seed)
    print(f"wrote {n} images under {args.out} ({args.copies} augmented copies per image; {aug})")
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    if args.name == "wsss":
        from camkit.apps.studies.wsss import run_wsss_study, study_config

        study = study_config(args.config, args.quick)
        if args.seeds:
            study["seeds"] = [int(s) for s in args.seeds.split(",")]
        if args.data_root:
            study["data_root"] = args.data_root
        out = args.out or "studies/wsss"
        run_wsss_study(out, study, quick=args.quick, progress=_progress)
        print((Path(out) / "study.md").read_text(), end="")
        print(f"study folder: {out} (study.md, study.json, per-seed scores and runs)")
        return 0
    from camkit.apps.studies.equivariance import load_study_config, run_equivariance_study

    args.out = args.out or "studies/equivariance"

    study = load_study_config(args.config)
    if args.seeds:
        study["seeds"] = [int(s) for s in args.seeds.split(",")]
    if args.data_root:
        study["data_root"] = args.data_root
    run_equivariance_study(args.out, study, quick=args.quick, progress=_progress)
    print((Path(args.out) / "study.md").read_text(), end="")
    print(f"study folder: {args.out} (study.md, study.json, overlays.png)")
    return 0


def cmd_evaluate_epochs(args: argparse.Namespace) -> int:
    from camkit.train.epochs import evaluate_epochs

    res = evaluate_epochs(args.run, args.split, args.device, _progress())
    multi = bool(res["epochs"]) and "map" in res["epochs"][0]
    cols = ("top1", "map", "f1") if multi else ("top1", "top3", "top5")
    heads = ("exact", "mAP", "F1") if multi else ("top-1", "top-3", "top-5")
    print(f"{'epoch':>5} {'loss':>8} " + " ".join(f"{h:>7}" for h in heads))
    for r in res["epochs"]:
        print(f"{r['epoch']:>5} {r['loss']:>8.4f} " + " ".join(f"{r[c]:>7.4f}" for c in cols))
    print(f"wrote {Path(args.run) / 'epochs.json'}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from camkit.train.sweep import parse_grid, run_sweep, summary_table

    cfg = run_config(args)
    res = run_sweep(cfg, parse_grid(args.grid, cfg), _progress())
    print(summary_table(res["points"]), end="")
    print(f"sweep folder: {Path(cfg.train.out) / cfg.train.exp_id} (sweep.json, sweep.md)")
    return 0


def cmd_cv(args: argparse.Namespace) -> int:
    from camkit.train.cv import cross_validate

    s = cross_validate(run_config(args), args.folds, _progress())
    for r in s["folds"]:
        print(f"fold {r['fold']}: best epoch {r['best_epoch']}, val accuracy {r['val_accuracy']:.4f}")
    print(
        f"val accuracy {s['val_accuracy_mean']:.4f} ± {s['val_accuracy_std']:.4f} over {len(s['folds'])} folds"
    )
    print(f"test (fold {s['test_fold']} checkpoint): top-1 {s['test']['accuracy']:.4f}")
    return 0


def _model_and_data(args: argparse.Namespace) -> tuple[Any, Path]:
    """The checkpoint and data config named by --run / --checkpoint plus overrides."""
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
    return _apply(data, args, DATA_FIELDS), ckpt


def add_source_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", help="a run folder (its config and best checkpoint)")
    p.add_argument("--checkpoint", help="a checkpoint file (.safetensors)")
    p.add_argument("--split", default="test", help="split to use (default test)")
    add_data_args(p)


def _image_folder(folder: str, image_size: int) -> Any:
    from camkit.data.base import FileDataset
    from camkit.data.folders import IMAGE_EXTS, Record

    root = Path(folder)
    if not root.is_dir():
        raise CamkitError(f"--images {root}: folder not found")
    paths = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
    if not paths:
        raise CamkitError(f"--images {root}: no images found (extensions: {', '.join(IMAGE_EXTS)})")
    ds = FileDataset([Record(p, -1) for p in paths], image_size)
    ds.ids = [str(p.relative_to(root).with_suffix("")) for p in paths]
    return ds


def _model_images(args: argparse.Namespace, device: Any) -> tuple[Any, list[str], Any, Any, str, str]:
    """(model, class names, data config or None, dataset, split name, source) for extract-like
    commands: a checkpoint (--run/--checkpoint) or a pretrained --model, over --images or a split."""
    from camkit.data.datasets import build_split
    from camkit.models.checkpoint import load_checkpoint

    if args.model:
        from camkit.models.pretrained import imagenet_categories, imagenet_model

        model, names, data = imagenet_model(args.model).to(device), imagenet_categories(), None
        source = f"imagenet:{args.model}"
    else:
        data, ckpt = _model_and_data(args)
        model, meta = load_checkpoint(ckpt, device=device)
        names, source = meta["class_names"], str(ckpt)
    if args.images:
        size = args.image_size or (224 if args.model else (data.image_size if data else 224))
        return model, names, None, _image_folder(args.images, size), "images", source
    if data is None:
        raise CamkitError("--model needs --images DIR (a folder of images to explain)")
    return model, names, data, build_split(data, args.split), args.split, source


def _method_args(args: argparse.Namespace) -> tuple[list[str], Any, dict[str, Any]]:
    from camkit.methods import get_method

    methods = [m.strip() for m in args.method.split(",") if m.strip()]
    for m in methods:
        get_method(m)  # unknown names fail before any work
    layers = [s.strip() for s in args.layer.split(",")] if args.layer else None
    kw = _special_options(args, methods)
    if args.layer_weights:
        kw["layer_weights"] = [float(w) for w in args.layer_weights.split(",")]
    return methods, layers, kw


def _special_options(args: argparse.Namespace, methods: list[str]) -> dict[str, Any]:
    """The options of particular methods (--recam-weights, --prototypes), checked against the
    methods asked for; each method later takes only its own (camkit.methods.method_options)."""
    kw: dict[str, Any] = {}
    recam_weights = getattr(args, "recam_weights", None)
    protos = getattr(args, "prototypes", None)
    if recam_weights and "recam" not in methods:
        raise CamkitError("--recam-weights goes with --method recam")
    if protos and not {"lpcam", "lpcam-f"} & set(methods):
        raise CamkitError("--prototypes goes with --method lpcam or lpcam-f")
    if recam_weights:
        kw["recam_weights"] = recam_weights
    if protos:
        from camkit.methods.prototypes import load_prototypes

        kw["prototypes"] = load_prototypes(protos)
    return kw


def cmd_extract(args: argparse.Namespace) -> int:
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
    methods, layers, kw = _method_args(args)
    model, names, data, ds, split, source = _model_images(args, device)
    out = Path(args.out) if args.out else None
    import time

    for m in methods:
        t0 = time.perf_counter()
        mkw = method_options(m, kw)
        meta = {"source": source, "split": split, "class_names": names, "layers": layers}
        if data is not None:
            meta["data"] = dataclasses.asdict(data)
        if args.shard_dir:
            from camkit.pipeline.shards import extract_shards, gather

            folder = Path(args.shard_dir) if len(methods) == 1 else Path(args.shard_dir) / m
            c = extract_shards(model, ds, m, folder, args.target, args.batch_size, device, _progress(),
                               world=world, meta=meta, layers=layers, **mkw)  # fmt: skip
            print(
                f"{m}: {c['written']} maps written, {c['skipped']} already there, {c['total']} in all -> {folder} "
                f"({c['written'] / max(time.perf_counter() - t0, 1e-9):.0f} images/s over {world.size} rank(s))"
            )
            if out is None or not world.main:
                continue
            ms = gather(folder)
        else:
            ms = extract(
                model, ds, m, args.target, args.batch_size, device, _progress(), layers=layers, **mkw
            )
            ms.meta = meta
        assert out is not None
        path = out if len(methods) == 1 else out.with_name(f"{out.stem}_{m}{out.suffix}")
        save_maps(path, ms)
        speed = len(ms) / max(time.perf_counter() - t0, 1e-9)
        print(f"{m}: {len(ms)} maps of {tuple(ms.maps.shape[1:])} -> {path} ({speed:.0f} images/s)")
    cleanup(world)
    return 0


def cmd_faithfulness(args: argparse.Namespace) -> int:
    import torch
    from torch.utils.data import DataLoader

    from camkit.core.dist import resolve_device
    from camkit.core.io import write_json
    from camkit.core.ops import minmax
    from camkit.methods import get_method, method_options
    from camkit.metrics.faithfulness import average_drop_increase, deletion_insertion
    from camkit.pipeline.extract import resolve_targets

    device = resolve_device(args.device)
    methods, layers, kw = _method_args(args)
    model, _, _, ds, split, source = _model_images(args, device)
    model.eval()
    if args.num:
        ds = torch.utils.data.Subset(ds, range(min(args.num, len(ds))))
    results: dict[str, dict[str, float]] = {}
    for m in methods:
        sums = {"deletion_auc": 0.0, "insertion_auc": 0.0, "average_drop": 0.0, "increase_in_confidence": 0.0}
        n = 0
        bar = _progress()
        loader = DataLoader(ds, batch_size=args.batch_size, shuffle=False)
        bar.start(len(loader), f"faithfulness {m}")
        with get_method(m)(model, layers, **method_options(m, kw)) as method:
            for batch in loader:
                x = batch["image"].to(device)
                tgt = resolve_targets(args.target, batch["label"].to(device))
                r = method(x, "pred" if tgt is None else tgt)
                maps = minmax(r.maps)
                for mode in ("deletion", "insertion"):
                    auc = deletion_insertion(model, x, maps, r.target, mode, steps=args.steps)["auc"]
                    sums[f"{mode}_auc"] += float(auc.sum())
                adic = average_drop_increase(model, x, maps, r.target)
                sums["average_drop"] += adic["average_drop"] * len(x)
                sums["increase_in_confidence"] += adic["increase_in_confidence"] * len(x)
                n += len(x)
                bar.advance(1)
        bar.close()
        results[m] = {k: v / n for k, v in sums.items()}
    print(f"{source} on {split}, {n} images, {args.steps} steps")
    print(
        f"{'method':<14} {'deletion AUC':>12} {'insertion AUC':>13} {'Avg Drop %':>10} {'Incr. Conf. %':>13}"
    )
    for m, r in results.items():
        print(
            f"{m:<14} {r['deletion_auc']:>12.4f} {r['insertion_auc']:>13.4f} {r['average_drop']:>10.2f} {r['increase_in_confidence']:>13.2f}"
        )
    if args.out:
        write_json(
            args.out, {"source": source, "split": split, "images": n, "steps": args.steps, "methods": results}
        )
        print(f"wrote {args.out}")
    return 0


def _maps_and_split(args: argparse.Namespace) -> tuple[Any, Any]:
    from camkit.core.mapfile import load_maps
    from camkit.data.datasets import DataConfig, build_split

    ms = load_maps(args.maps)
    if "data" not in ms.meta and not (args.dataset or args.data_root):
        raise CamkitError(
            f"--maps {args.maps}: the maps carry no dataset (made from --images or a pretrained model); pass --dataset and --data-root"
        )
    base = DataConfig(
        **{
            k: v
            for k, v in ms.meta.get("data", {}).items()
            if k in {f.name for f in dataclasses.fields(DataConfig)}
        }
    )
    data = _apply(base, args, DATA_FIELDS)
    split = args.split or str(ms.meta.get("split", "test"))
    return ms, build_split(data, split)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from camkit.core.io import write_json
    from camkit.pipeline.evaluate import score_maps

    if args.pred_masks or args.gt_masks:
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
        return 0
    if not args.maps:
        raise CamkitError("pass --maps FILE (or --pred-masks DIR --gt-masks DIR)")
    ms, ds = _maps_and_split(args)
    if ms.per_class:
        return _evaluate_class_maps(args, ms, ds)
    res = score_maps(ms, ds, threshold=args.threshold, step=args.step, wsol=True)
    known = ms.labels >= 0
    if bool(known.any()):
        from camkit.metrics.classification import confusion

        res["accuracy"] = float((ms.preds[known] == ms.labels[known]).float().mean())
        k = max(len(ms.meta.get("class_names") or []), int(ms.preds.max()) + 1, int(ms.labels.max()) + 1)
        res["confusion_matrix"] = confusion(ms.preds[known], ms.labels[known], k).tolist()

    def f(v: object, nd: int = 4) -> str:
        return "n/a" if v is None else f"{v:.{nd}f}"  # type: ignore[str-format]

    print(f"{ms.method}: {res['images']} images with masks")
    rows = [
        ("top-1 accuracy", f(res.get("accuracy"))),
        (f"mIoU at t={res['threshold']:.2f}", f(res["miou"])),
        (f"peak IoU (t={res['peak_threshold']:.2f})", f(res["peak_iou"])),
        (
            "seg. mIoU (bg+fg) / FP / FN",
            " / ".join(f(res["segmentation"][x], 3) for x in ("miou", "fp", "fn")),
        ),
        ("PxAP (%)", f(res["pxap"], 2)),
        ("MaxBoxAcc / GT-known loc (%)", f(res["max_box_acc"], 2)),
        ("top-1 loc (%)", f(res["top1_loc"], 2)),
        ("MaxBoxAccV2 (%)", f(res["max_box_acc_v2"], 2)),
    ]
    width = max(len(r[0]) for r in rows)
    for name, val in rows:
        print(f"  {name:<{width}}  {val:>8}")
    if args.plots:
        from camkit.viz.curves import plot_iou_curve, plot_pr_curve

        plots = Path(args.plots)
        plot_iou_curve(plots / "iou_curve.png", {ms.method: (res["thresholds"], res["miou_curve"])})
        pr = res["pr_curve"]
        plot_pr_curve(plots / "pr_curve.png", pr["precision"], pr["recall"], res["pxap"])
        print(f"plots in {plots}")
    if args.out:
        write_json(args.out, res)
        print(f"wrote {args.out}")
    return 0


def _evaluate_class_maps(args: argparse.Namespace, ms: Any, ds: Any) -> int:
    """Class map sets (multi-label data): seeds and per-class peak IoU (max and PaS)."""
    from camkit.core.io import write_json
    from camkit.wsss.seeds import class_peak_iou, score_seeds

    seeds = score_seeds(ms, ds, bg_threshold=args.bg_threshold, step=args.step, norm=args.norm)
    peak = {ref: class_peak_iou(ms, ds, ref, step=args.step) for ref in ("max", "percentile")}
    labels, preds = ms.labels > 0.5, ms.preds.bool()
    tp = float((labels & preds).sum())
    res: dict[str, Any] = {
        "method": ms.method,
        "seeds": seeds,
        "peak_iou": {
            ref: {k: v for k, v in r.items() if k not in ("thresholds",)} for ref, r in peak.items()
        },
        "classification": {
            "exact_match": float((labels == preds).all(1).float().mean()),
            "f1": 2 * tp / max(float(labels.sum() + preds.sum()), 1.0),
        },
    }
    print(f"{ms.method}: {seeds['images']} images, seeds from the ground-truth image labels ({args.norm})")
    at = "given" if args.bg_threshold is not None else "peak"
    rows = [
        (f"seed mIoU at bg t={seeds['bg_threshold']:.2f} ({at})", f"{seeds['miou']:.4f}"),
        ("  FP / FN", f"{seeds['fp']:.3f} / {seeds['fn']:.3f}"),
        ("  precision / recall", f"{seeds['precision']:.3f} / {seeds['recall']:.3f}"),
        (f"seed peak mIoU (t={seeds['peak_bg_threshold']:.2f})", f"{seeds['peak_miou']:.4f}"),
        (f"per-class peak IoU, max (θ={peak['max']['peak_theta']:.2f})", f"{peak['max']['peak_iou']:.4f}"),
        (
            f"per-class peak IoU, PaS p98 (θ={peak['percentile']['peak_theta']:.2f})",
            f"{peak['percentile']['peak_iou']:.4f}",
        ),
        (
            "multi-label F1 / exact match",
            f"{res['classification']['f1']:.3f} / {res['classification']['exact_match']:.3f}",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    for name, val in rows:
        print(f"  {name:<{width}}  {val:>13}")
    if args.plots:
        from camkit.viz.curves import plot_iou_curve

        plots = Path(args.plots)
        plot_iou_curve(plots / "seed_miou_curve.png", {ms.method: (seeds["thresholds"], seeds["miou_curve"])})
        print(f"plots in {plots}")
    if args.out:
        write_json(args.out, res)
        print(f"wrote {args.out}")
    return 0


def cmd_prototypes(args: argparse.Namespace) -> int:
    from camkit.core.dist import resolve_device
    from camkit.data.datasets import build_split
    from camkit.methods.prototypes import PrototypeConfig, save_prototypes
    from camkit.models.checkpoint import load_checkpoint
    from camkit.wsss.prototypes import build_prototypes

    device = resolve_device(args.device)
    data, ckpt = _model_and_data(args)
    model, meta = load_checkpoint(ckpt, device=device)
    cfg = PrototypeConfig(
        **{
            k: getattr(args, k)
            for k in ("tau", "k", "mu_f", "mu_b", "max_points", "max_iter", "seed")
            if getattr(args, k) is not None
        }
    )
    ds = build_split(data, args.split, augment=False)
    protos = build_prototypes(model, ds, cfg, args.layer, args.batch_size, device, _progress())
    protos.meta.update({"checkpoint": str(ckpt), "split": args.split})
    save_prototypes(args.out, protos)
    print(f"{'class':<12} {'FG kept/K':>9} {'BG kept/K':>9} {'FG points':>10} {'BG points':>10}  notes")
    names = list(meta.get("class_names") or [])
    for row in protos.meta["classes"]:
        c = row["class"]
        notes = [
            f"{side} {why}"
            for side in ("fg", "bg")
            for why, bad in (
                ("fallback", row[side].get("fallback")),
                ("not converged", row[side].get("converged") is False),
            )
            if bad
        ]
        label = names[c] if c < len(names) else str(c)
        print(
            f"{label:<12} {row['fg']['kept']:>5}/{cfg.k:<3} {row['bg']['kept']:>5}/{cfg.k:<3} "
            f"{row['fg']['points']:>10} {row['bg']['points']:>10}  {', '.join(notes)}"
        )
    print(
        f"wrote {args.out} (layer {protos.layer}; reuse it with camkit extract --method lpcam --prototypes)"
    )
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from camkit.apps.explain import explain
    from camkit.core.dist import resolve_device

    device = resolve_device(args.device)
    methods, layers, kw = _method_args(args)
    if args.model:
        from camkit.models.pretrained import imagenet_categories, imagenet_model

        model, names, size = imagenet_model(args.model), imagenet_categories(), 224
    elif args.run or args.checkpoint:
        from camkit.models.checkpoint import load_checkpoint

        data, ckpt = _model_and_data(args)
        model, meta = load_checkpoint(ckpt, device=device)
        names, size = meta["class_names"], data.image_size
    else:
        raise CamkitError(
            "pass --model efficientnet_lite0 (offline ImageNet model), --run RUN_DIR or --checkpoint FILE"
        )
    res = explain(
        model, names, args.images, methods, args.out, args.image_size or size, args.topk, layers, device,
        args.alpha, args.cmap, args.tile, _progress(), **kw,
    )  # fmt: skip
    for path, top in zip(res["images"], res["top_k"], strict=True):
        print(f"{path}: " + ", ".join(f"{q['name']} {q['prob']:.3f}" for q in top))
    print(f"wrote {args.out}/index.html, comparison.png and per-method grids ({', '.join(methods)})")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from camkit.apps.report import report
    from camkit.core.dist import resolve_device

    methods = [m.strip() for m in args.method.split(",") if m.strip()]
    kw = _special_options(args, methods)
    path = report(
        args.run_dir, args.out, args.split, methods, args.num, resolve_device(args.device), args.alpha, args.cmap,
        _progress(), kw,
    )  # fmt: skip
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, self-contained; open it in any browser)")
    return 0


def cmd_visualize(args: argparse.Namespace) -> int:
    import torch

    from camkit.pipeline.evaluate import normalized_maps, score_maps
    from camkit.viz.overlay import write_visuals

    ms, ds = _maps_and_split(args)
    n = min(args.num, len(ds))
    batch = [ds[i] for i in range(n)]
    images = torch.stack([b["image"] for b in batch])
    names = ms.meta.get("class_names") or []
    if ms.per_class:  # one row per (image, class present), normalized as the seeds are
        from camkit.wsss.seeds import class_scores, score_seeds

        s, c = torch.nonzero(ms.targets[:n].bool(), as_tuple=True)
        scores = class_scores(ms.maps[:n], tuple(images.shape[-2:]))[s, c]
        gt = torch.stack([b["mask"] for b in batch]).long()[s] == (c + 1)[:, None, None]
        t = args.threshold if args.threshold is not None else float(score_seeds(ms, ds)["peak_bg_threshold"])  # type: ignore[arg-type]
        cls = [names[int(k)] if int(k) < len(names) else str(int(k)) for k in c]
        ids = [f"{ms.ids[int(i)]}_{name}" for i, name in zip(s, cls, strict=True)]
        files = write_visuals(args.out, images[s], scores, gt, ids, cls, t, args.alpha, args.cmap)
        print(f"wrote {len(files)} files under {args.out} (seed threshold {t:.2f})")
        return 0
    has = all(bool(b["has_mask"]) for b in batch)
    masks = torch.stack([b["mask"] for b in batch]).bool() if has else None
    t = args.threshold
    if t is None:
        t = float(score_maps(ms, ds)["peak_threshold"]) if has else 0.5  # type: ignore[arg-type]
    maps = normalized_maps(ms.maps[:n], tuple(images.shape[-2:]))
    titles = [
        names[int(ms.targets[i])] if int(ms.targets[i]) < len(names) else str(int(ms.targets[i]))
        for i in range(n)
    ]  # type: ignore[arg-type]
    files = write_visuals(args.out, images, maps, masks, ms.ids[:n], titles, t, args.alpha, args.cmap)
    print(f"wrote {len(files)} files under {args.out} (threshold {t:.2f})")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from camkit.apps.demo import run_demo

    m = run_demo(args.out, quick=args.quick, data_root=args.data_root, force=args.force, progress=_progress)
    print(
        f"camkit demo ({'quick' if args.quick else 'full'}): {m['images']['train']} train / {m['images']['test']} test canvases, best epoch {m['best_epoch']}"
    )
    print(f"{'':<14} {'accuracy':>8} {'mIoU@t':>8} {'t':>5} {'peak IoU':>9} {'peak t':>7}")
    print(
        f"{'CAM':<14} {m['accuracy']:>8.4f} {m['miou']:>8.4f} {m['threshold']:>5.2f} {m['peak_iou']:>9.4f} {m['peak_threshold']:>7.2f}"
    )
    for name, b in m["baselines"].items():
        print(f"{name:<14} {'':>8} {b['miou']:>8.4f} {'':>5} {b['peak_iou']:>9.4f} {'':>7}")
    print(
        f"wall time {m['wall_time_s']:.1f} s; metrics in {Path(args.out) / 'metrics.json'}, overlays in {Path(args.out) / 'visuals'}"
    )
    return 0


def cmd_methods(args: argparse.Namespace) -> int:
    from camkit.methods.registry import method_table

    print(method_table(), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="camkit", description="Class activation maps: train, extract, score, look."
    )
    p.add_argument("--version", action="version", version=f"camkit {__version__}")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train a CAMNet classifier")
    add_data_args(t), add_model_args(t), add_train_args(t)
    t.set_defaults(func=cmd_train)

    sw = sub.add_parser("sweep", help="train a grid of settings, one run folder each; resumable")
    add_data_args(sw), add_model_args(sw), add_train_args(sw)
    sw.add_argument(
        "--grid",
        action="append",
        required=True,
        help="FIELD=V1,V2,... (repeat for more fields), e.g. lr=1e-5,5e-5,1e-4,2e-4",
    )
    sw.set_defaults(func=cmd_sweep)

    au = sub.add_parser(
        "augment", help="write N augmented copies of each training image (the study's offline variant)"
    )
    add_data_args(au)
    au.add_argument("--split", default="train")
    au.add_argument("--copies", type=int, default=5)
    au.add_argument("--seed", type=int, default=0)
    au.add_argument("--out", required=True, help="output ImageFolder tree (masks go to OUT_masks)")
    au.set_defaults(func=cmd_augment)

    st = sub.add_parser(
        "study",
        help="reproducible studies: equivariance (CAM vs SEG transforms), wsss (TAP/NWC/PaS, LPCAM, ReCAM)",
    )
    st.add_argument("name", choices=("equivariance", "wsss"))
    st.add_argument(
        "--config",
        help="study config JSON (defaults: recipes/study-equivariance.json, recipes/study-wsss.json)",
    )
    st.add_argument("--seeds", help="comma-separated seeds (default 0,1,2)")
    st.add_argument("--quick", action="store_true", help="the demo's smoke-size budget")
    st.add_argument("--data-root", help="folder of the Fashion-MNIST IDX .gz files (default: Debian's)")
    st.add_argument("--out", help="study folder (default studies/NAME)")
    st.set_defaults(func=cmd_study)

    ee = sub.add_parser("evaluate-epochs", help="top-1/3/5 of every saved epoch of a run (epochs.json)")
    ee.add_argument("--run", required=True, help="a run folder trained with --save-every-epoch")
    ee.add_argument("--split", default="val")
    ee.add_argument("--device", default="auto")
    ee.set_defaults(func=cmd_evaluate_epochs)

    c = sub.add_parser("cv", help="k-fold cross-validation on the training split")
    add_data_args(c), add_model_args(c), add_train_args(c)
    c.add_argument("--folds", type=int, default=5)
    c.set_defaults(func=cmd_cv)

    from camkit.methods import method_names

    e = sub.add_parser("extract", help="extract maps from a checkpoint or a pretrained model (npz)")
    add_source_args(e)
    e.add_argument(
        "--model",
        help="a pretrained ImageNet classifier instead of a checkpoint (efficientnet_lite0 works offline)",
    )
    e.add_argument("--images", help="a folder of images to explain (instead of a dataset split)")
    e.add_argument(
        "--method", default="cam", help=f"one or more of: {', '.join(method_names())} (comma-separated)"
    )
    e.add_argument("--layer", help="target layer name(s), comma-separated (default: the backbone's output)")
    e.add_argument("--layer-weights", help="fusion weights for several layers, e.g. 0.4,0.4,0.2")
    e.add_argument("--target", default="label", help="label (ground truth), pred, or a class id")
    e.add_argument(
        "--recam-weights",
        choices=("w", "w2", "sum", "prod"),
        help="recam: CAM weights from FC1 (w), FC2 (w2), w+w2 (sum) or w*w2 (prod, default)",
    )
    e.add_argument("--prototypes", help="lpcam/lpcam-f: a prototype file from camkit prototypes")
    e.add_argument("--batch-size", type=int, default=32)
    e.add_argument("--device", default="auto")
    e.add_argument("--out", help="output .npz file (one per method: NAME_METHOD.npz)")
    e.add_argument(
        "--shard-dir",
        help="one file per image under DIR, resumable, and split across ranks under torchrun (with --out: also gathered)",
    )
    e.set_defaults(func=cmd_extract)

    fa = sub.add_parser(
        "faithfulness", help="deletion/insertion AUC, Average Drop and Increase in Confidence"
    )
    add_source_args(fa)
    fa.add_argument("--model", help="a pretrained ImageNet classifier (efficientnet_lite0 works offline)")
    fa.add_argument("--images", help="a folder of images")
    fa.add_argument("--method", default="grad-cam", help="one or more methods, comma-separated")
    fa.add_argument("--layer", help="target layer name(s), comma-separated")
    fa.add_argument("--layer-weights", help="fusion weights for several layers")
    fa.add_argument("--target", default="pred", help="pred (default), label, or a class id")
    fa.add_argument("--steps", type=int, default=50, help="deletion/insertion steps (default 50)")
    fa.add_argument("--num", type=int, help="score only the first N images")
    fa.add_argument("--batch-size", type=int, default=16)
    fa.add_argument("--device", default="auto")
    fa.add_argument("--out", help="write the results as JSON")
    fa.set_defaults(func=cmd_faithfulness)

    v = sub.add_parser("evaluate", help="score saved maps: IoU sweep, PxAP, MaxBoxAcc(V2), localization")
    v.add_argument("--maps", help="a .npz from camkit extract")
    v.add_argument("--pred-masks", help="a folder of predicted binary masks (the lab's per-image IoU list)")
    v.add_argument("--gt-masks", help="the folder of ground-truth masks with the same file stems")
    v.add_argument("--split", help="split (default: the one the maps came from)")
    v.add_argument("--threshold", type=float, help="report mIoU here (default: at the sweep's peak)")
    v.add_argument("--step", type=float, default=0.01, help="threshold sweep step")
    v.add_argument(
        "--bg-threshold", type=float, help="class maps: report the seeds at this background threshold too"
    )
    v.add_argument(
        "--norm",
        default="relu-max",
        choices=("relu-max", "minmax", "sigmoid", "tanh-max"),
        help="class maps: map normalization before seeding (default relu-max, as in IRN/ReCAM/LPCAM)",
    )
    v.add_argument("--out", help="write the results as JSON")
    v.add_argument("--plots", help="a folder for iou_curve.png and pr_curve.png")
    add_data_args(v)
    v.set_defaults(func=cmd_evaluate)

    z = sub.add_parser("visualize", help="write heatmap overlays and binary masks")
    z.add_argument("--maps", required=True)
    z.add_argument("--split")
    z.add_argument(
        "--threshold", type=float, help="mask threshold (default: the sweep's peak, or 0.5 without masks)"
    )
    z.add_argument("--num", type=int, default=10, help="images to draw")
    z.add_argument("--alpha", type=float, default=0.5)
    z.add_argument("--cmap", default="jet", help="a matplotlib colormap")
    z.add_argument("--out", required=True, help="output folder")
    add_data_args(z)
    z.set_defaults(func=cmd_visualize)

    pr = sub.add_parser("prototypes", help="build LPCAM's local prototypes from a trained model; save them")
    add_source_args(pr)
    pr.set_defaults(split="train")
    pr.add_argument("--layer", help="target layer (default: the backbone's output)")
    pr.add_argument("--tau", type=float, help="τ: FG where CAM > τ, else BG (default 0.1)")
    pr.add_argument("--k", type=int, help="clusters per class for FG and for BG (default 12)")
    pr.add_argument("--mu-f", type=float, help="keep FG centers with class softmax score > μ_f (default 0.9)")
    pr.add_argument("--mu-b", type=float, help="keep BG centers with class softmax score < μ_b (default 0.5)")
    pr.add_argument("--max-points", type=int, help="subsample each set to this many vectors (default 200000)")
    pr.add_argument("--max-iter", type=int, help="k-means iteration cap (default 100)")
    pr.add_argument("--seed", type=int, help="k-means and subsampling seed (default 0)")
    pr.add_argument("--batch-size", type=int, default=64)
    pr.add_argument("--device", default="auto")
    pr.add_argument("--out", required=True, help="output .safetensors file")
    pr.set_defaults(func=cmd_prototypes)

    ex = sub.add_parser(
        "explain", help="where does this model look? top-k classes and maps, PNGs and an HTML page"
    )
    ex.add_argument("images", nargs="+", help="image files or folders")
    ex.add_argument("--model", help="a pretrained ImageNet classifier (efficientnet_lite0 works offline)")
    ex.add_argument("--run", help="a run folder (its best checkpoint)")
    ex.add_argument("--checkpoint", help="a checkpoint file (.safetensors)")
    ex.add_argument("--method", default="cam,grad-cam,layercam", help="methods, comma-separated")
    ex.add_argument("--layer", help="target layer name(s), comma-separated (default: the backbone's output)")
    ex.add_argument("--layer-weights", help="fusion weights for several layers")
    ex.add_argument("--topk", type=int, default=5, help="classes to list per image (default 5)")
    ex.add_argument("--image-size", type=int, help="input side (default 224, or the run's)")
    ex.add_argument("--alpha", type=float, default=0.5, help="heatmap opacity (default 0.5)")
    ex.add_argument("--cmap", default="jet", help="a matplotlib colormap (default jet)")
    ex.add_argument("--tile", type=float, default=1.8, help="panel size in inches (default 1.8)")
    ex.add_argument("--device", default="auto")
    ex.add_argument("--out", default="explain", help="output folder (default explain)")
    ex.set_defaults(func=cmd_explain, dataset=None, data_root=None)

    rp = sub.add_parser("report", help="one self-contained HTML page for a run or a study folder")
    rp.add_argument("run_dir", help="a run folder (camkit train) or a study folder (camkit study)")
    rp.add_argument("--out", help="output .html (default RUN_DIR/report.html)")
    rp.add_argument("--split", default="test", help="split to score (default test)")
    rp.add_argument("--method", default="cam", help="map methods, comma-separated (default cam)")
    rp.add_argument("--num", type=int, default=12, help="gallery size per method, worst first (default 12)")
    rp.add_argument("--alpha", type=float, default=0.5)
    rp.add_argument("--cmap", default="jet")
    rp.add_argument("--prototypes", help="lpcam/lpcam-f: a prototype file from camkit prototypes")
    rp.add_argument("--recam-weights", choices=("w", "w2", "sum", "prod"), help="recam: the CAM weights")
    rp.add_argument("--device", default="auto")
    rp.set_defaults(func=cmd_report)

    mt = sub.add_parser("methods", help="list the map methods (markdown table)")
    mt.set_defaults(func=cmd_methods)

    d = sub.add_parser("demo", help="train, extract and score on the embedded benchmark")
    d.add_argument("--quick", action="store_true", help="smoke size (<= 90 s)")
    d.add_argument("--out", default="camkit-demo", help="output folder (default camkit-demo)")
    d.add_argument("--data-root", help="folder of the Fashion-MNIST IDX .gz files (default: Debian's)")
    d.add_argument("--force", action="store_true", help="replace a previous demo run in --out")
    d.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    import os

    worker = os.environ.get("RANK", "0") != "0"  # under torchrun, rank 0 alone talks
    level = logging.WARNING if args.quiet or worker else (logging.DEBUG if args.verbose > 1 else logging.INFO)
    if worker:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the life of this process
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    import signal

    def on_term(signum: int, _frame: object) -> None:  # a cluster's scheduler stops jobs with SIGTERM
        raise _Terminated(signum)

    with contextlib.suppress(ValueError):  # only the main thread may install handlers
        signal.signal(signal.SIGTERM, on_term)
    try:
        return int(args.func(args) or 0)
    except CamkitError as e:
        print(f"camkit: error: {cli_message(e)}", file=sys.stderr)
        return e.exit_code
    except (KeyboardInterrupt, _Terminated) as e:
        # every file is written to a temporary name and renamed, so nothing is half-written
        code = 143 if isinstance(e, _Terminated) else 130
        print(f"camkit: interrupted ({'SIGTERM' if code == 143 else 'Ctrl-C'}); finished files are kept, "
              "rerun the same command (train: with --resume) to continue", file=sys.stderr)  # fmt: skip
        return code


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so that every ``with`` block unwinds."""


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
