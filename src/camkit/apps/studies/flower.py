"""The Flower-17 study (CAM vs ReCAM vs LayerCAM on a frozen pretrained backbone), as one
resumable run on any ImageFolder tree and on ``fashion-context`` (masks: localization scores).

Per dataset: the frozen ImageNet EfficientNet-Lite0 (cut at ``head``), offline augmentation
×``augment_copies`` (rotation ±20°, shift 20 %, flips), the grid lr × {CAM, ReCAM-minmax,
ReCAM-sigmoid, ReCAM-relu-max} of GAP + linear heads trained with Adam for ``epochs`` per seed
(:mod:`camkit.apps.studies.flower_heads`), the discard rule (training loss below half the
validation loss), Table 2 (best eligible epoch: val top-1/3/5 and loss) in the study's layout,
the maps figure (:mod:`camkit.apps.studies.flower_maps`) and, where masks exist, the scores of
every map method. Finished pieces stay on disk (features, one JSON + head per grid run,
scores), so an interrupted study resumes where it stopped.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import statistics
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from camkit.apps.studies import flower_heads as fh
from camkit.apps.studies import flower_maps as fm
from camkit.apps.studies.config import checked, load_typed, save_study
from camkit.core.dist import resolve_device
from camkit.core.errors import CamkitError, OptionError
from camkit.core.io import write_json
from camkit.core.progress import Progress
from camkit.core.runs import load_or_compute
from camkit.data import dataset_len
from camkit.data.datasets import DataConfig, build_split, class_names
from camkit.models.camnet import CAMNet, ModelConfig

log = logging.getLogger(__name__)

NORMS = ("minmax", "sigmoid", "relu-max")
ROW_NAMES = {"CAM": "CAM", "ReCAM-minmax": "ReCAM (minmax)", "ReCAM-sigmoid": "ReCAM (sigmoid)",
             "ReCAM-relu-max": "ReCAM (relu hybrid)"}  # fmt: skip
LOC_METRICS = ("peak_iou", "max_box_acc_v2", "pxap")
#: Table 2 of the study (Flower-17 val, VGG16): variant -> lr -> (epoch, top-1, top-3, top-5 %, loss)
PAPER: dict[str, dict[float, tuple[int, float, float, float, float]]] = {
    "CAM": {1e-5: (40, 81.47, 96.18, 99.12, 1.003636), 5e-5: (37, 92.65, 98.53, 99.71, 0.288743),
            1e-4: (22, 92.94, 99.12, 99.71, 0.271448), 2e-4: (11, 92.06, 98.82, 99.41, 0.282351)},
    "ReCAM-minmax": {1e-5: (40, 77.06, 91.18, 96.18, 1.367373), 5e-5: (39, 87.65, 96.76, 99.12, 0.457615),
                     1e-4: (25, 89.41, 97.35, 99.41, 0.349892), 2e-4: (12, 90.29, 98.53, 99.12, 0.370260)},
    "ReCAM-sigmoid": {1e-5: (40, 79.12, 92.94, 97.65, 1.052183), 5e-5: (40, 90.59, 99.12, 100.0, 0.289081),
                      1e-4: (18, 88.53, 97.94, 99.12, 0.373524), 2e-4: (9, 88.24, 97.35, 99.12, 0.366691)},
    "ReCAM-relu-max": {1e-5: (40, 75.88, 89.12, 94.41, 1.457482), 5e-5: (39, 88.82, 97.65, 99.12, 0.381621),
                       1e-4: (24, 90.00, 98.24, 98.82, 0.365495), 2e-4: (14, 89.71, 97.94, 98.82, 0.341185)},
}  # fmt: skip


def _default_datasets() -> dict[str, dict[str, Any]]:
    return {"cifar10": {"dataset": "folder", "root": "../shared/assets/cifar10-jpg.zip", "per_class": 40},
            "fashion-context": {"dataset": "fashion-context", "n_train": 400, "n_val": 100, "n_test": 200}}  # fmt: skip


@dataclass
class FlowerStudy:
    """The study's settings (recipes/study-flower.json spells them all out). ``datasets``: name
    -> DataConfig keys (an ImageFolder ``root`` may be a .zip: ``per_class`` images of each
    class of its train/ are unpacked into the study folder)."""

    datasets: dict[str, dict[str, Any]] = field(default_factory=_default_datasets)
    image_size: int = 96
    lrs: list[float] = field(default_factory=lambda: [1e-5, 5e-5, 1e-4, 2e-4])
    norms: list[str] = field(default_factory=lambda: list(NORMS))
    epochs: int = 40
    batch_size: int = 32
    augment_copies: int = 10
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    overfit_ratio: float | None = 2.0
    layercam_layers: list[str] = field(default_factory=lambda: ["block4", "block10", "head"])
    layercam_weights: list[float] = field(default_factory=lambda: [0.4, 0.4, 0.2])
    n_maps: int = 12
    display_cut: float = 0.3
    display_gain: float = 1.5
    device: str = "cpu"
    data_root: str | None = None  # Fashion-MNIST IDX folder of the fashion-* datasets (None: Debian's)
    description: str = ""

    def validate(self) -> None:
        """One-line :class:`OptionError` for settings the study cannot use."""
        for name, ok, problem in (
            ("datasets", bool(self.datasets), "give at least one dataset"),
            ("lrs", bool(self.lrs) and all(lr > 0 for lr in self.lrs), "give positive learning rates"),
            ("norms", set(self.norms) <= set(NORMS), f"choose among {', '.join(NORMS)}"),
            ("seeds", bool(self.seeds), "give at least one seed"),
            ("epochs", self.epochs >= 1, "must be at least 1"),
            ("augment_copies", self.augment_copies >= 1, "must be at least 1 (1: no augmentation)"),
            (
                "layercam_weights",
                len(self.layercam_weights) == len(self.layercam_layers),
                "one weight per layer",
            ),
        ):
            if not ok:
                raise OptionError(name, problem, getattr(self, name))

    def variants(self) -> list[tuple[str, str | None]]:
        return [("CAM", None)] + [(f"ReCAM-{n}", n) for n in self.norms]


def study_config(path: str | Path | None, quick: bool = False) -> FlowerStudy:
    """The defaults (``quick``: a smoke budget), with the JSON file at ``path`` laid over them;
    an unknown key or a wrong type is a one-line error naming the file and the key."""
    base = FlowerStudy()
    if quick:
        tiny = {
            "cifar10": {**base.datasets["cifar10"], "per_class": 10},
            "fashion-context": {
                **base.datasets["fashion-context"],
                "n_train": 100,
                "n_val": 40,
                "n_test": 40,
            },
        }
        base = dataclasses.replace(base, datasets=tiny, image_size=64, epochs=3, augment_copies=2, seeds=[0],
                                   lrs=[1e-4, 1e-3], n_maps=4)  # fmt: skip
    return checked(load_typed(FlowerStudy, path, dataclasses.asdict(base)) if path else base, path)


def unzip_subset(zip_path: Path, dest: Path, per_class: int | None) -> Path:
    """``per_class`` images (all: None) of each class of the archive's ``train/<class>/`` (or
    ``<class>/``), the first in name order, unpacked into ``dest/<class>/`` once."""
    done = dest / ".complete"
    if done.is_file():
        return dest
    if not zip_path.is_file():
        raise OptionError(
            "datasets", "archive not found (the CIFAR-10 JPEGs: ../shared/assets/cifar10-jpg.zip)", zip_path
        )
    with zipfile.ZipFile(zip_path) as z:
        names = sorted(n for n in z.namelist() if not n.endswith("/"))
        prefix = "train/" if any(n.startswith("train/") for n in names) else ""
        by_class: dict[str, list[str]] = {}
        for n in names:
            parts = n[len(prefix) :].split("/") if n.startswith(prefix) else []
            if len(parts) == 2:
                by_class.setdefault(parts[0], []).append(n)
        if not by_class:
            raise OptionError("datasets", "no <class>/<image> entries in the archive", zip_path)
        for cls, files in by_class.items():
            (dest / cls).mkdir(parents=True, exist_ok=True)
            for n in files[:per_class]:
                (dest / cls / Path(n).name).write_bytes(z.read(n))
    done.write_text("ok\n")
    return dest


def data_config(study: FlowerStudy, spec: dict[str, Any], where: Path) -> DataConfig:
    """One dataset's DataConfig; a .zip root is unpacked (a subset) under ``where``."""
    spec = dict(spec)
    per_class = spec.pop("per_class", None)
    spec.setdefault("image_size", study.image_size)
    if str(spec.get("dataset", "")).startswith("fashion") and study.data_root:
        spec.setdefault("root", study.data_root)
    root = spec.get("root")
    if spec.get("dataset") == "folder" and root and str(root).endswith(".zip"):
        spec["root"] = str(unzip_subset(Path(root), where / "images", per_class))
    try:
        return DataConfig.from_dict(spec, strict=True)
    except OptionError:
        raise
    except CamkitError as e:
        raise OptionError("datasets", str(e)) from None


def _model(num_classes: int, memo: dict[str, Any] | None = None) -> CAMNet:
    """The frozen pretrained backbone with FC1 and FC2 (a copy of ``memo``'s, built once)."""
    if memo is not None and "model" in memo:
        return copy.deepcopy(memo["model"])
    cfg = ModelConfig(backbone="efficientnet_lite0", layer="head", num_classes=num_classes, pretrained=True,
                      freeze_backbone=True, fc2=True)  # fmt: skip
    model = CAMNet(cfg).eval()
    if memo is not None:
        memo["model"] = copy.deepcopy(model)
    return model


def _train_cell(d: Path, key: str, feats: Callable[[], tuple[Any, Any]], k: int, norm: str | None,
                lr: float, seed: int, s: FlowerStudy) -> dict[str, Any]:  # fmt: skip
    train, val = feats()
    res, state = fh.train_head(
        train, val, k, norm, lr, s.epochs, s.batch_size, seed, s.overfit_ratio, resolve_device(s.device)
    )
    if state is not None:
        fh.save_tensors(d / "runs" / f"{key}.safetensors", state)
    log.info("%s: best %s", key, res["best"] and {m: res["best"][m] for m in ("epoch", "top1")})
    return res


def _features(
    d: Path, model: CAMNet, cfg: DataConfig, s: FlowerStudy, memo: dict[str, Any]
) -> tuple[Any, Any]:
    """The cached (train ×copies, val) features, computed once."""
    if "f" not in memo:
        get = partial(load_or_compute, read=fh.load_tensors, write=fh.save_tensors)
        tr = get(d / "features-train.safetensors",
                 lambda: fh.cache_features(model, build_split(cfg, "train", augment=False), s.augment_copies,
                                           device=str(resolve_device(s.device))))  # fmt: skip
        va = get(d / "features-val.safetensors",
                 lambda: fh.cache_features(model, build_split(cfg, "val"), 1, device=str(resolve_device(s.device))))  # fmt: skip
        memo["f"] = (tr, va)
    return memo["f"]  # type: ignore[no-any-return,unused-ignore]


def run_dataset(out: Path, name: str, s: FlowerStudy, progress: Progress | None = None) -> dict[str, Any]:
    """The grid, table, figures and (masks) scores of one dataset under ``out/name``."""
    d = out / name
    (d / "runs").mkdir(parents=True, exist_ok=True)
    cfg = data_config(s, s.datasets[name], d)
    names = class_names(cfg)
    memo: dict[str, Any] = {}
    model = _model(len(names), memo)
    runs: dict[str, dict[float, list[dict[str, Any] | None]]] = {}
    for seed in s.seeds:
        for lr in s.lrs:
            for v, norm in s.variants():
                key = f"{v.lower()}-lr{lr:g}-seed{seed}"
                res = load_or_compute(
                    d / "runs" / f"{key}.json",
                    partial(_train_cell, d, key, partial(_features, d, model, cfg, s, memo), len(names), norm, lr, seed, s),
                )  # fmt: skip
                runs.setdefault(v, {}).setdefault(lr, []).append(res["best"])
    table = {v: {lr: _cell(rows) for lr, rows in by_lr.items()} for v, by_lr in runs.items()}
    main = {v: _main_lr(by_lr) for v, by_lr in table.items()}
    result: dict[str, Any] = {"dataset": s.datasets[name], "classes": names, "table": table, "main_lr": main}
    if all(lr is not None for lr in main.values()):
        models = _study_models(d, s, main, s.seeds[0], len(names), memo)
        done = d / "maps" / "figures.json"
        if done.is_file():
            result["figures"] = json.loads(done.read_text())
        elif models:
            val = build_split(cfg, "val")
            idx = fm.pick_images(dataset_len(val), s.n_maps, s.seeds[0])
            result["figures"] = fm.figures(d / "maps", models, val, idx, names, s.layercam_layers,
                                           s.layercam_weights, s.display_cut, s.display_gain, resolve_device(s.device))  # fmt: skip
            write_json(done, result["figures"])
        if _has_masks(cfg):
            result["localization"] = load_or_compute(
                d / "localization.json", partial(_localize, d, s, main, cfg, len(names), memo)
            )
            result["claim"] = fm.claim(result["localization"]["mean"], LOC_METRICS)
    return result


def _has_masks(cfg: DataConfig) -> bool:
    return cfg.dataset.startswith("fashion") or bool(cfg.mask_root)


def _study_models(
    d: Path, s: FlowerStudy, main: dict[str, float | None], seed: int, k: int, memo: dict[str, Any]
) -> dict[str, CAMNet]:
    """The figure's columns: each variant's model at its main lr (LayerCAM: the CAM model's)."""
    models = {}
    for v, lr in main.items():
        p = d / "runs" / f"{v.lower()}-lr{lr:g}-seed{seed}.safetensors"
        if p.is_file():
            models[v] = fh.load_head(_model(k, memo), fh.load_tensors(p))
    if "CAM" in models:
        models[fm.LAYERCAM] = models["CAM"]
    return models


def _localize(
    d: Path, s: FlowerStudy, main: dict[str, float | None], cfg: DataConfig, k: int, memo: dict[str, Any]
) -> dict[str, Any]:
    test = build_split(cfg, "test")
    per_seed = {}
    for seed in s.seeds:
        models = _study_models(d, s, main, seed, k, memo)
        per_seed[seed] = fm.localization(
            models, test, s.layercam_layers, s.layercam_weights, resolve_device(s.device)
        )
    cols = sorted({c for r in per_seed.values() for c in r}, key=list(per_seed[s.seeds[0]]).index)
    mean = {
        c: {m: statistics.fmean(r[c][m] for r in per_seed.values() if c in r) for m in LOC_METRICS}
        for c in cols
    }
    std = {c: {m: _std([r[c][m] for r in per_seed.values() if c in r]) for m in LOC_METRICS} for c in cols}
    return {
        "per_seed": {str(k_): v for k_, v in per_seed.items()},
        "mean": mean,
        "std": std,
        "n_test": dataset_len(test),
    }


def _std(v: list[float]) -> float:
    return statistics.pstdev(v) if len(v) > 1 else 0.0


def _cell(rows: list[dict[str, Any] | None]) -> dict[str, Any]:
    """Mean ± std over seeds of the kept models' best rows; ``kept`` of ``n`` (0: discarded)."""
    kept = [r for r in rows if r is not None]
    cell: dict[str, Any] = {"kept": len(kept), "n": len(rows)}
    for m in ("epoch", "top1", "top3", "top5", "val_loss"):
        v = [float(r[m]) for r in kept]
        cell[m] = {"mean": statistics.fmean(v), "std": _std(v)} if v else None
    return cell


def _main_lr(by_lr: dict[float, dict[str, Any]]) -> float | None:
    """The study's pick of a variant's model: the lr with the best val top-1 (ties: lower loss)."""
    ok = [(c["top1"]["mean"], -c["val_loss"]["mean"], lr) for lr, c in by_lr.items() if c["kept"]]
    return max(ok)[2] if ok else None


def run_flower_study(
    out: str | Path,
    study: FlowerStudy,
    quick: bool = False,
    progress: Callable[[], Progress | None] | None = None,
) -> dict[str, Any]:
    """Run (or resume) the study into ``out``; writes study.json and study.md."""
    from camkit.apps.studies.flower_report import markdown

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    mk = progress or (lambda: None)
    per = {name: run_dataset(out, name, study, mk()) for name in study.datasets}
    result = {"config": dataclasses.asdict(study), "quick": quick, "datasets": per}
    save_study(out, result, markdown)
    return result
