"""The demo: the lab's CAM mode end to end on the embedded Fashion-MNIST canvas benchmark.

Train ResNet-18 (cut after layer2) + GAP + linear from scratch, keep the checkpoint with the
best validation accuracy, extract CAMs on val and test, choose the threshold on val (its
peak), and report on test: top-1 accuracy, mean IoU at the chosen threshold, and the peak
IoU with its threshold (the oracle of Bae et al.). Two trivial baselines put the numbers in
context: the whole image, and a centred box of the mean object size (measured on train).
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from camkit.core.dist import resolve_device
from camkit.core.errors import OptionError
from camkit.core.io import write_json
from camkit.core.mapfile import save_maps
from camkit.core.ops import spatial_size
from camkit.core.progress import Progress
from camkit.data import dataset_len
from camkit.data.datasets import DataConfig, build_split
from camkit.data.fashion import CLASS_NAMES
from camkit.models.camnet import ModelConfig
from camkit.models.checkpoint import load_checkpoint
from camkit.pipeline.evaluate import baseline_scores, mean_box_size, normalized_maps, score_maps
from camkit.pipeline.extract import extract
from camkit.train.config import RunConfig, TrainConfig
from camkit.train.loop import train_run
from camkit.viz.overlay import write_visuals

log = logging.getLogger(__name__)


def demo_config(out: Path, quick: bool, data_root: str | None = None, seed: int = 0) -> RunConfig:
    """The demo's settings: full (<= 5 min on 2 CPU cores) or quick (smoke size, <= 90 s)."""
    if quick:
        data = DataConfig(root=data_root, image_size=64, n_train=768, n_val=256, n_test=256, seed=seed)
        train = TrainConfig(
            epochs=2, lr=3e-3, batch_size=128, schedule="onecycle", seed=seed, out=str(out), exp_id="run"
        )
    else:
        data = DataConfig(root=data_root, image_size=64, n_train=9000, n_val=1000, n_test=1000, seed=seed)
        train = TrainConfig(
            epochs=7, lr=2e-3, batch_size=128, schedule="onecycle", seed=seed, out=str(out), exp_id="run"
        )
    return RunConfig(
        data=data, model=ModelConfig(backbone="resnet18", layer="layer2"), train=train, mode="cam"
    )


def run_demo(
    out: str | Path,
    quick: bool = False,
    data_root: str | None = None,
    force: bool = False,
    progress: Callable[[], Progress] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Run the demo into ``out``; returns (and writes) ``out/metrics.json``."""
    t0 = time.perf_counter()
    out = Path(out)
    if (out / "run").exists():
        if not force:
            raise OptionError(
                "out",
                "already holds a demo run; pass another {out}, or {force} to replace it",
                out,
                refs={"out": None, "force": True},
            )
        shutil.rmtree(out / "run")
    cfg = demo_config(out, quick, data_root, seed)
    mk: Callable[[], Progress | None] = progress or (lambda: None)
    summary = train_run(cfg, mk())
    device = resolve_device(cfg.train.device)
    model, _ = load_checkpoint(out / "run" / "best.safetensors", cfg.model, device)
    val_ds, test_ds = build_split(cfg.data, "val"), build_split(cfg.data, "test")
    val_maps = extract(model, val_ds, "cam", "label", device=device, progress=mk())
    test_maps = extract(model, test_ds, "cam", "label", device=device, progress=mk())
    save_maps(out / "maps_test.npz", test_maps)
    chosen = score_maps(val_maps, val_ds).peak_threshold
    test = score_maps(test_maps, test_ds, threshold=chosen)
    box = mean_box_size(build_split(cfg.data, "train"))
    baselines = baseline_scores(test_ds, box)
    # overlays of the first 8 test images
    n = min(8, dataset_len(test_ds))
    batch = [test_ds[i] for i in range(n)]
    images = torch.stack([b["image"] for b in batch])
    masks = torch.stack([b["mask"] for b in batch]).bool()
    maps = normalized_maps(test_maps.maps[:n], spatial_size(images))
    titles = [f"{CLASS_NAMES[int(test_maps.labels[i])]} (IoU {test.per_image_iou[i]:.2f})" for i in range(n)]
    write_visuals(out / "visuals", images, maps, masks, test_maps.ids[:n], titles, chosen)
    metrics = {
        "accuracy": summary["test"]["accuracy"],
        "miou": test.miou,
        "threshold": test.threshold,
        "threshold_source": "peak of the val split",
        "peak_iou": test.peak_iou,
        "peak_threshold": test.peak_threshold,
        "baselines": baselines.to_dict(),
        "val_accuracy": summary["val"]["accuracy"],
        "best_epoch": summary["best_epoch"],
        "test_top3": summary["test"]["top3"],
        "test_top5": summary["test"]["top5"],
        "images": {"train": cfg.data.n_train, "val": cfg.data.n_val, "test": cfg.data.n_test},
        "quick": quick,
        "config": dataclasses.asdict(cfg),
        "wall_time_s": round(time.perf_counter() - t0, 1),
    }
    write_json(out / "metrics.json", metrics)
    return metrics
