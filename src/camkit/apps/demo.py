"""The demo: the lab's CAM mode end to end on the embedded Fashion-MNIST canvas benchmark.

Train ResNet-18 (cut after layer2) + GAP + linear from scratch, keep the checkpoint with the
best validation accuracy, extract maps on val and test, and choose on val alone: the map
method (plain CAM or NWC-CAM, Bae et al.: the higher val peak IoU) and its threshold (the
peak of its val sweep). On test it reports top-1 accuracy, mean IoU at the chosen threshold,
and the peak IoU with its threshold (the oracle of Bae et al.), for plain CAM and for the
chosen method. Two trivial baselines put the numbers in context: the whole image, and a
centred box of the mean object size (measured on train).

The quick demo is the same code path on fewer canvases and epochs. Where the CPU computes
bf16 natively (AVX512-BF16, AMX) or on a GPU, training runs under bf16 autocast: about three
times the throughput of float32 on such CPUs (``benchmarks/bench_demo.py``, ``docs/demo.md``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from camkit.core.dist import resolve_device
from camkit.core.errors import OptionError
from camkit.core.io import write_json
from camkit.core.mapfile import MapSet, save_maps
from camkit.core.ops import spatial_size
from camkit.core.progress import Progress
from camkit.data import dataset_len
from camkit.data.datasets import DataConfig, build_split
from camkit.data.fashion import CLASS_NAMES
from camkit.metrics.iou import default_thresholds
from camkit.models.camnet import ModelConfig
from camkit.models.checkpoint import load_checkpoint
from camkit.pipeline.evaluate import MapScores, baseline_scores, mean_box_size, normalized_maps, score_maps
from camkit.pipeline.extract import extract
from camkit.train.config import RunConfig, TrainConfig
from camkit.train.loop import train_run
from camkit.viz.overlay import write_visuals

log = logging.getLogger(__name__)

#: the map methods the demo compares on val; plain CAM is always reported beside the winner
METHODS = ("cam", "nwc-cam")


def native_bf16(device: str = "auto") -> bool:
    """Whether bf16 autocast is fast here: a GPU, or a CPU with native bf16 (oneDNN's check)."""
    if resolve_device(device).type == "cuda":
        return True
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN
        return False


def demo_config(out: Path, quick: bool, data_root: str | None = None, seed: int = 0) -> RunConfig:
    """The demo's settings: full (<= 3 min on 2 CPU cores) or quick (<= 30 s), one code path."""
    amp = "bf16" if native_bf16() else "off"
    if quick:
        data = DataConfig(root=data_root, image_size=64, n_train=1536, n_val=256, n_test=256, seed=seed)
        train = TrainConfig(
            epochs=3, lr=3e-3, batch_size=32, schedule="onecycle", seed=seed, out=str(out), exp_id="run",
            amp=amp,
        )  # fmt: skip
    else:
        data = DataConfig(root=data_root, image_size=64, n_train=9000, n_val=1000, n_test=1000, seed=seed)
        train = TrainConfig(
            epochs=7, lr=2e-3, batch_size=64, schedule="onecycle", seed=seed, out=str(out), exp_id="run",
            amp=amp,
        )  # fmt: skip
    return RunConfig(
        data=data, model=ModelConfig(backbone="resnet18", layer="layer2"), train=train, mode="cam"
    )


class Clock:
    """Wall and CPU (user + sys, this process and its children) seconds per named phase."""

    def __init__(self) -> None:
        self.phases: dict[str, dict[str, float]] = {}

    @staticmethod
    def _cpu() -> float:
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        w0, c0 = time.perf_counter(), self._cpu()
        try:
            yield
        finally:
            p = self.phases.setdefault(name, {"wall": 0.0, "cpu": 0.0})
            p["wall"] = round(p["wall"] + time.perf_counter() - w0, 2)
            p["cpu"] = round(p["cpu"] + self._cpu() - c0, 2)


def _grid(t: float) -> float:
    """The sweep's own float64 value nearest ``t`` (scores round thresholds to 6 digits; the
    exact grid value keeps a threshold from entering the sweep twice)."""
    grid = default_thresholds()
    return float(grid[int(torch.argmin((grid - t).abs()))])


def _scores(s: MapScores, val: MapScores) -> dict[str, Any]:
    """One method's row: test mIoU at the val threshold, test peak, and the val peak it was chosen by."""
    return {
        "miou": s.miou,
        "threshold": s.threshold,
        "peak_iou": s.peak_iou,
        "peak_threshold": s.peak_threshold,
        "val_peak_iou": val.peak_iou,
    }


def _maps(
    cfg: RunConfig, out: Path, clock: Clock, mk: Callable[[], Progress | None]
) -> tuple[dict[str, Any], str, MapSet, MapScores, Any]:
    """Extract every candidate on val, choose the best by val peak IoU, then extract and score
    plain CAM and the best on test at their val thresholds. Returns (rows by method, best,
    best's test maps, best's test scores, the test split)."""
    device = resolve_device(cfg.train.device)
    model, _ = load_checkpoint(out / "run" / "best.safetensors", cfg.model, device)
    val_ds = build_split(cfg.data, "val")
    val: dict[str, MapScores] = {}
    for method in METHODS:
        with clock.phase("extract"):
            ms = extract(model, val_ds, method, "label", batch_size=256, device=device, progress=mk())
        with clock.phase("score"):
            val[method] = score_maps(ms, val_ds)
    best = max(METHODS, key=lambda m: (val[m].peak_iou, m == "cam"))
    with clock.phase("canvases"):
        test_ds = build_split(cfg.data, "test")
    rows: dict[str, Any] = {}
    for method in dict.fromkeys(("cam", best)):
        with clock.phase("extract"):
            ms = extract(model, test_ds, method, "label", batch_size=256, device=device, progress=mk())
        save_maps(out / ("maps_test.npz" if method == "cam" else f"maps_test_{method}.npz"), ms)
        with clock.phase("score"):
            test = score_maps(ms, test_ds, threshold=_grid(val[method].peak_threshold))
        rows[method] = _scores(test, val[method])
    rows.update({m: {"val_peak_iou": s.peak_iou} for m, s in val.items() if m not in rows})
    return rows, best, ms, test, test_ds


def run_demo(
    out: str | Path,
    quick: bool = False,
    data_root: str | None = None,
    force: bool = False,
    progress: Callable[[], Progress] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Run the demo into ``out``; returns (and writes) ``out/metrics.json``."""
    t0, clock = time.perf_counter(), Clock()
    cpu0 = Clock._cpu()
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
    with clock.phase("canvases"):  # generated (or read from the cache) before training
        train_ds = build_split(cfg.data, "train", augment=False)
        build_split(cfg.data, "val")
    with clock.phase("train"):
        summary = train_run(cfg, mk())
    rows, best, best_maps, best_test, test_ds = _maps(cfg, out, clock, mk)
    with clock.phase("score"):
        baselines = baseline_scores(test_ds, mean_box_size(train_ds))
    with clock.phase("visuals"):
        _visuals(out, test_ds, best_maps, best_test, best)
    cam = rows["cam"]
    metrics = {
        "accuracy": summary["test"]["accuracy"],
        "miou": cam["miou"],
        "threshold": cam["threshold"],
        "threshold_source": "peak of the val split",
        "peak_iou": cam["peak_iou"],
        "peak_threshold": cam["peak_threshold"],
        "best_method": best,
        "method_source": "highest peak IoU on the val split",
        "methods": rows,
        "baselines": baselines.to_dict(),
        "val_accuracy": summary["val"]["accuracy"],
        "best_epoch": summary["best_epoch"],
        "test_top3": summary["test"]["top3"],
        "test_top5": summary["test"]["top5"],
        "images": {"train": cfg.data.n_train, "val": cfg.data.n_val, "test": cfg.data.n_test},
        "quick": quick,
        "config": dataclasses.asdict(cfg),
        "timings_s": clock.phases,
        "wall_time_s": round(time.perf_counter() - t0, 1),
        "cpu_time_s": round(Clock._cpu() - cpu0, 1),
    }
    write_json(out / "metrics.json", metrics)
    return metrics


def _visuals(out: Path, test_ds: Any, maps: MapSet, scores: MapScores, method: str) -> None:
    """Overlays of the first 8 test images with ``method``'s maps at its val threshold."""
    n = min(8, dataset_len(test_ds))
    batch = [test_ds[i] for i in range(n)]
    images = torch.stack([b["image"] for b in batch])
    masks = torch.stack([b["mask"] for b in batch]).bool()
    norm = normalized_maps(maps.maps[:n], spatial_size(images))
    titles = [
        f"{CLASS_NAMES[int(maps.labels[i])]} ({method} IoU {scores.per_image_iou[i]:.2f})" for i in range(n)
    ]
    write_visuals(out / "visuals", images, norm, masks, maps.ids[:n], titles, scores.threshold)
