"""Faithfulness of map methods over a dataset: deletion and insertion AUC (Petsiuk et al.),
Average Drop and Increase in Confidence (Chattopadhay et al.), averaged over the images."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from camkit.core.ops import minmax
from camkit.core.progress import Progress
from camkit.methods import get_method, method_options
from camkit.metrics.faithfulness import average_drop_increase, deletion_insertion
from camkit.pipeline.extract import resolve_targets


@dataclass
class MethodFaithfulness:
    """One method's means over the images (AUCs in [0, 1]; Average Drop and Increase in
    Confidence in percent)."""

    deletion_auc: float
    insertion_auc: float
    average_drop: float
    increase_in_confidence: float


@dataclass
class FaithfulnessResult:
    """Per-method scores over ``images`` images with ``steps`` deletion/insertion steps."""

    images: int
    steps: int
    methods: dict[str, MethodFaithfulness] = field(default_factory=dict)


def method_faithfulness(
    model: nn.Module,
    ds: Dataset,
    method: str,
    layers: Sequence[str] | None = None,
    target: str = "pred",
    steps: int = 50,
    batch_size: int = 16,
    device: torch.device | str = "cpu",
    progress: Progress | None = None,
    **options: Any,
) -> tuple[MethodFaithfulness, int]:
    """Score one method over ``ds`` (samples with ``image`` (3, H, W) and ``label``); returns
    the means and the number of images. ``options`` go to the method's constructor (only those
    it takes)."""
    sums = dict.fromkeys(("deletion_auc", "insertion_auc", "average_drop", "increase_in_confidence"), 0.0)
    n = 0
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False)
    if progress is not None:
        progress.start(len(loader), f"faithfulness {method}")
    with get_method(method)(model, layers, **method_options(method, options)) as m:
        for batch in loader:
            x = batch["image"].to(device)  # (B, 3, H, W)
            tgt = resolve_targets(target, batch["label"].to(device))
            r = m(x, "pred" if tgt is None else tgt)
            maps = minmax(r.maps)  # (B, h, w) in [0, 1]
            for mode in ("deletion", "insertion"):
                auc = deletion_insertion(model, x, maps, r.target, mode, steps=steps)["auc"]
                sums[f"{mode}_auc"] += float(auc.sum())
            adic = average_drop_increase(model, x, maps, r.target)
            sums["average_drop"] += adic["average_drop"] * len(x)
            sums["increase_in_confidence"] += adic["increase_in_confidence"] * len(x)
            n += len(x)
            if progress is not None:
                progress.advance(1)
    if progress is not None:
        progress.close()
    return MethodFaithfulness(**{k: v / max(n, 1) for k, v in sums.items()}), n


def faithfulness(
    model: nn.Module,
    ds: Dataset,
    methods: Sequence[str],
    layers: Sequence[str] | None = None,
    target: str = "pred",
    steps: int = 50,
    batch_size: int = 16,
    device: torch.device | str = "cpu",
    progress: Any = None,
    **options: Any,
) -> FaithfulnessResult:
    """Score each of ``methods`` over ``ds`` with the model in eval mode. ``progress`` is a
    callable returning a fresh :class:`Progress` per method (or None)."""
    model.eval()
    res = FaithfulnessResult(images=0, steps=steps)
    for name in methods:
        bar = progress() if progress is not None else None
        res.methods[name], res.images = method_faithfulness(
            model, ds, name, layers, target, steps, batch_size, device, bar, **options
        )
    return res
