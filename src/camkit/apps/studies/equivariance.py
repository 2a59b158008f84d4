"""The lab's §3.5 transform study: CAM mode against SEG mode with several transforms.

Every run shares the seed, data and training budget (the demo's, by default); each variant
trains once per seed. The CAM of the ground-truth class is then scored on test at the
threshold chosen on val (top-1 accuracy, mIoU, peak IoU, MaxBoxAccV2), and the table gives
mean ± std over seeds. Runs that finished are skipped, so an interrupted study resumes.
"""

from __future__ import annotations

import json
import logging
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch

from camkit.apps.demo import demo_config
from camkit.apps.studies.config import check_sections, checked, load_typed, save_study, with_overrides
from camkit.core.dist import resolve_device
from camkit.core.errors import OptionError
from camkit.core.ops import spatial_size
from camkit.core.progress import Progress
from camkit.core.runs import load_or_compute
from camkit.data import dataset_len
from camkit.data.datasets import build_split
from camkit.data.registry import get_dataset
from camkit.methods.cam import class_activation_map
from camkit.models.checkpoint import load_checkpoint
from camkit.pipeline.evaluate import normalized_maps, score_maps
from camkit.pipeline.extract import extract
from camkit.train.loop import train_or_reuse

log = logging.getLogger(__name__)

DEFAULT_VARIANTS: dict[str, list[str]] = {
    "cam": [],
    "seg-scale": ["scale:0.5"],
    "seg-flip": ["hflip"],
    "seg-rot90": ["rot:90"],
    "seg-flip+rot90": ["hflip", "rot:90"],
}
METRICS = ("accuracy", "miou", "peak_iou", "max_box_acc_v2")


@dataclass
class EquivarianceStudy:
    """The study's settings: variants (name -> SEG transforms; none: CAM mode), seeds, and the
    overrides of the demo's budget (None: the demo's)."""

    variants: dict[str, list[str]] = field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_VARIANTS.items()}
    )
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    data_root: str | None = None  # Fashion-MNIST IDX folder (None: Debian's)
    epochs: int | None = None
    lr: float | None = None
    batch_size: int | None = None
    n_train: int | None = None
    n_val: int | None = None
    n_test: int | None = None
    image_size: int | None = None
    dataset: str | None = (
        None  # a single-label source (None: the demo's fashion; fashion-context: the context benchmark)
    )
    data: dict[str, Any] = field(
        default_factory=dict
    )  # more DataConfig settings (p_context, canvas_size, ...)
    model: dict[str, Any] = field(
        default_factory=dict
    )  # ModelConfig settings (backbone, layer, pretrained, ...)
    description: str = ""

    def validate(self) -> None:
        """One-line :class:`OptionError` for settings the study cannot use."""
        if self.dataset is not None and get_dataset(self.dataset).multilabel:
            raise OptionError(
                "dataset",
                "the equivariance study needs a single-label dataset, e.g. fashion-context",
                self.dataset,
            )
        check_sections(self.data, self.model)


def load_study_config(path: str | Path | None) -> EquivarianceStudy:
    """The defaults, with the settings of the JSON file at ``path`` (if any); an unknown key or
    a value of the wrong type is a one-line error naming the file and the key."""
    if not path:
        return EquivarianceStudy()
    return checked(load_typed(EquivarianceStudy, path), path)


def run_equivariance_study(
    out: str | Path,
    study: EquivarianceStudy,
    quick: bool = False,
    progress: Callable[[], Progress | None] | None = None,
) -> dict[str, Any]:
    out = Path(out)
    mk = progress or (lambda: None)
    rows: dict[str, list[dict[str, float]]] = {}
    for name, transforms in study.variants.items():
        for seed in study.seeds:
            cfg = _run_config(out, study, quick, seed)
            cfg.train.exp_id = f"{name}-seed{seed}"
            cfg.mode = "seg" if transforms else "cam"
            cfg.train.seg_transforms = list(transforms) or ["scale:0.5"]
            run_dir = out / cfg.train.exp_id
            scores = load_or_compute(
                run_dir / "study_scores.json", partial(_train_and_score, cfg, run_dir, mk)
            )
            rows.setdefault(name, []).append(scores)
    table = {name: {m: _mean_std([r[m] for r in rs]) for m in METRICS} for name, rs in rows.items()}
    result = {
        "variants": study.variants,
        "seeds": study.seeds,
        "quick": quick,
        "table": table,
        "runs": rows,
    }
    save_study(out, result, markdown_table, partial(_overlays, out, study, quick))
    return result


def _run_config(out: Path, study: EquivarianceStudy, quick: bool, seed: int) -> Any:
    """The demo's settings for ``seed`` (data and training), with the study's overrides."""
    cfg = demo_config(out, quick, study.data_root, seed)
    for key in ("epochs", "lr", "batch_size"):
        if getattr(study, key) is not None:
            setattr(cfg.train, key, getattr(study, key))
    for key in ("n_train", "n_val", "n_test", "image_size", "dataset"):
        if getattr(study, key) is not None:
            setattr(cfg.data, key, getattr(study, key))
    cfg.data = with_overrides(cfg.data, study.data, "data")
    cfg.model = with_overrides(cfg.model, study.model, "model")
    return cfg


def _train_and_score(cfg: Any, run_dir: Path, mk: Callable[[], Progress | None]) -> dict[str, float]:
    """Train the run (or resume it, or reuse it when finished), then score it."""
    train_or_reuse(cfg, mk())
    return _score(cfg, run_dir)


def _score(cfg: Any, run_dir: Path) -> dict[str, float]:
    device = resolve_device(cfg.train.device)
    model, _ = load_checkpoint(run_dir / "best.safetensors", cfg.model, device)
    val_ds, test_ds = build_split(cfg.data, "val"), build_split(cfg.data, "test")
    t = score_maps(extract(model, val_ds, "cam", "label", device=device), val_ds)["peak_threshold"]
    ms = extract(model, test_ds, "cam", "label", device=device)
    r = score_maps(ms, test_ds, threshold=float(t), wsol=True)
    summary = json.loads((run_dir / "summary.json").read_text())
    return {"accuracy": summary["test"]["accuracy"], "miou": r["miou"], "peak_iou": r["peak_iou"],
            "max_box_acc_v2": r["max_box_acc_v2"] or 0.0, "threshold": r["threshold"]}  # fmt: skip


def _mean_std(v: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(v), "std": statistics.pstdev(v) if len(v) > 1 else 0.0, "n": len(v)}


def markdown_table(result: dict[str, Any]) -> str:
    lines = [
        f"Seeds {result['seeds']}, mean ± std (population) over seeds; CAM of the label class, threshold from val.\n",
        "| variant | transforms | top-1 accuracy | mIoU | peak IoU | MaxBoxAccV2 (%) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, t in result["table"].items():
        tr = ", ".join(result["variants"][name]) or "— (CAM mode)"
        cells = [
            f"{t[m]['mean']:.4f} ± {t[m]['std']:.4f}"
            if m != "max_box_acc_v2"
            else f"{t[m]['mean']:.2f} ± {t[m]['std']:.2f}"
            for m in METRICS
        ]
        lines.append(f"| {name} | {tr} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n\n![overlays](overlays.png)\n"


def _overlays(out: Path, study: EquivarianceStudy, quick: bool, n: int = 6) -> None:
    """First ``n`` test images (rows) × variants (columns), seed of the first run, CAM overlays."""
    from camkit.viz.grid import figure_grid
    from camkit.viz.overlay import overlay

    names = list(study.variants)
    seed = study.seeds[0]
    cfg = _run_config(out, study, quick, seed)
    ds = build_split(cfg.data, "test")
    n = min(n, dataset_len(ds))
    images = torch.stack([ds[i]["image"] for i in range(n)])
    labels = torch.stack([ds[i]["label"] for i in range(n)])
    with figure_grid(out / "overlays.png", n, len(names), 1.6) as (_, axes):
        for j, name in enumerate(names):
            model, _ = load_checkpoint(out / f"{name}-seed{seed}" / "best.safetensors", cfg.model)
            with torch.no_grad():
                o = model.eval()(images)
            maps = normalized_maps(
                class_activation_map(o.features, model.classifier.weight, labels), spatial_size(images)
            )
            for i in range(n):
                ax = axes[i][j]
                ax.imshow(overlay(images[i], maps[i]))
                ax.set_xticks([])
                ax.set_yticks([])
                if i == 0:
                    ax.set_title(name, fontsize=7)
