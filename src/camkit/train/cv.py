"""k-fold cross-validation on the training split.

The training split is shuffled once (``seed``) and cut into k folds. Fold i trains on the
other k-1 folds and selects its best epoch on fold i; the report gives each fold's
validation accuracy and their mean ± standard deviation (population std, ddof=0). The test
split is then scored exactly once, with the checkpoint of the best fold.
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Subset

from camkit.core.dist import resolve_device
from camkit.core.errors import OptionError
from camkit.core.io import write_json
from camkit.core.progress import Progress
from camkit.data import dataset_len
from camkit.data.datasets import build_split, class_names
from camkit.models.camnet import CAMNet
from camkit.models.checkpoint import load_checkpoint
from camkit.train.config import RunConfig
from camkit.train.loop import evaluate_classifier, fit
from camkit.train.objectives import get_objective

log = logging.getLogger(__name__)


def kfold_indices(n: int, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train_idx, val_idx) for each of ``k`` folds over ``n`` samples; folds differ in size by <= 1."""
    if k < 2:
        raise OptionError("folds", "need at least 2 folds", k)
    if n < k:
        raise OptionError("folds", f"only {n} training samples", k)
    perm = np.random.default_rng(seed).permutation(n)
    parts = np.array_split(perm, k)
    return [(np.sort(np.concatenate(parts[:i] + parts[i + 1 :])), np.sort(parts[i])) for i in range(k)]


def cross_validate(cfg: RunConfig, folds: int = 5, progress: Progress | None = None) -> dict[str, Any]:
    """``folds``-fold cross-validation on the training split (one :func:`fit` per fold, in
    ``OUT/EXP_ID/foldN/``), then the best fold's checkpoint tested once; writes ``cv.json``."""
    objective = get_objective(cfg.mode)  # an unknown mode fails before any folder is made
    run_dir = Path(cfg.train.out) / cfg.train.exp_id
    if cfg.train.resume:
        if not run_dir.is_dir():
            raise OptionError("resume", f"{run_dir} not found; start the cross-validation without resuming")
    elif run_dir.exists() and any(run_dir.iterdir()):
        raise OptionError(
            "exp_id",
            f"{run_dir} already holds a run; pass {{resume}} or choose another {{exp_id}}",
            cfg.train.exp_id,
            refs={"resume": True, "exp_id": None},
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    names = class_names(cfg.data)
    cfg.model.num_classes = len(names)
    objective.configure(cfg.model)
    write_json(run_dir / "config.json", {**cfg.to_dict(), "folds": folds})
    full = build_split(cfg.data, "train")
    results = []
    for i, (tr, va) in enumerate(kfold_indices(dataset_len(full), folds, cfg.train.seed)):
        fold_dir = run_dir / f"fold{i + 1}"
        fold_dir.mkdir(exist_ok=True)
        torch.manual_seed(cfg.train.seed)
        model = CAMNet(cfg.model)
        log.info("fold %d/%d: %d train, %d val", i + 1, folds, len(tr), len(va))
        fold_cfg = dataclasses.replace(
            cfg.train, resume=cfg.train.resume and (fold_dir / "last.pt").is_file()
        )
        res = fit(
            model,
            Subset(full, tr.tolist()),
            Subset(full, va.tolist()),
            fold_cfg,
            fold_dir,
            names,
            progress,
            {"fold": i + 1},
            mode=cfg.mode,
        )
        results.append(
            {"fold": i + 1, "best_epoch": res.best_epoch, **{f"val_{k}": v for k, v in res.best_val.items()}}
        )
    accs = [r["val_accuracy"] for r in results]
    best = max(results, key=lambda r: r["val_accuracy"])
    device = resolve_device(cfg.train.device)
    model, _ = load_checkpoint(Path(run_dir) / f"fold{best['fold']}" / "best.safetensors", cfg.model, device)
    test = evaluate_classifier(model, build_split(cfg.data, "test"), cfg.train, device, ks=(1, 3, 5))
    summary = {
        "folds": results,
        "val_accuracy_mean": statistics.fmean(accs),
        "val_accuracy_std": statistics.pstdev(accs),
        "test_fold": best["fold"],
        "test": test,
    }
    write_json(run_dir / "cv.json", summary)
    return summary
