"""Evaluate every saved epoch of a run (``save_every_epoch``), as the Flower-17 study's
evaluate.py does: top-1/3/5 accuracy and loss per epoch, written to ``epochs.json``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from camkit.core.dist import resolve_device
from camkit.core.errors import OptionError
from camkit.core.io import write_json
from camkit.core.progress import NoProgress, Progress
from camkit.data.datasets import build_split
from camkit.models.checkpoint import load_checkpoint
from camkit.train.config import RunConfig
from camkit.train.loop import evaluate_classifier

log = logging.getLogger(__name__)


def evaluate_epochs(
    run_dir: str | Path, split: str = "val", device: str = "auto", progress: Progress | None = None
) -> dict[str, Any]:
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise OptionError("run_dir", "no config.json; pass a run folder made by camkit train", run_dir)
    files = sorted((run_dir / "epochs").glob("epoch*.safetensors"))
    if not files:
        raise OptionError("run_dir", "no saved epochs; train it with save_every_epoch", run_dir)
    cfg = RunConfig.load(run_dir / "config.json")
    ds = build_split(cfg.data, split, augment=False)
    dev = resolve_device(device)
    progress = progress or NoProgress()
    progress.start(len(files), f"evaluate {len(files)} epochs")
    rows = []
    for f in files:
        model, meta = load_checkpoint(f, cfg.model, dev)
        r = evaluate_classifier(model, ds, cfg.train, dev, ks=(1, 3, 5))
        rows.append(
            {
                "epoch": meta["epoch"],
                "loss": r["loss"],
                "top1": r["accuracy"],
                "top3": r.get("top3"),  # multi-label runs: None, with mAP and F1 instead
                "top5": r.get("top5"),
                **({"map": r["map"], "f1": r["f1"]} if "map" in r else {}),
            }
        )
        progress.advance(1)
    progress.close()
    out = {"split": split, "epochs": rows}
    write_json(run_dir / "epochs.json", out)
    return out
