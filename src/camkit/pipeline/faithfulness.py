"""Faithfulness and sanity of map methods over a dataset.

Each method's maps are computed batch by batch (min-max normalized to [0, 1] at image size)
and handed to the metrics asked for, by name, from the registry in
:mod:`camkit.pipeline.faith_metrics`: deletion and insertion AUC, Average Drop / Increase in
Confidence, ROAD, the pointing games, relevance mass and rank, MPRT and random logit. Mask
metrics skip (and count) the images without an object mask.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from camkit.core.errors import CamkitError
from camkit.core.ops import minmax
from camkit.core.progress import Progress
from camkit.methods import get_method, method_options
from camkit.pipeline.extract import resolve_targets
from camkit.pipeline.faith_metrics import FaithBatch, build_metric, get_metric

DEFAULT_METRICS = ("deletion", "insertion", "average-drop")


@dataclass
class FaithfulnessResult:
    """Per-method scores over ``images`` images: ``methods[name]`` maps each score's key
    (``deletion_auc``, ``road_combined``, ``pointing_accuracy``, ...) to its mean."""

    images: int
    steps: int
    metrics: list[str] = field(default_factory=list)
    methods: dict[str, dict[str, Any]] = field(default_factory=dict)


def _explainer(
    method: str, layers: Sequence[str] | None, options: dict[str, Any]
) -> Callable[..., torch.Tensor]:
    """explain(model, images, targets) -> (B, H, W) min-max maps of ``method`` on any model."""
    cache: dict[int, Any] = {}

    def explain(model: nn.Module, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if id(model) not in cache:  # one method object per model (hooks live only during a call)
            cache.clear()
            cache[id(model)] = get_method(method)(model, layers, **method_options(method, options))
        return minmax(cache[id(model)](x, targets).maps)

    return explain


def method_faithfulness(
    model: nn.Module,
    ds: Dataset,
    method: str,
    metrics: Sequence[str] = DEFAULT_METRICS,
    layers: Sequence[str] | None = None,
    target: str = "pred",
    batch_size: int = 16,
    device: torch.device | str = "cpu",
    progress: Progress | None = None,
    metric_options: dict[str, Any] | None = None,
    **options: Any,
) -> tuple[dict[str, Any], int]:
    """Score one method over ``ds`` (samples with ``image`` (3, H, W), ``label`` and, for the
    mask metrics, ``mask`` (H, W)); returns the metrics' scores and the number of images.
    ``options`` go to the method's constructor (only those it takes), ``metric_options`` to
    the metrics' (``steps``, ``percentiles``, ``tolerance``, ``mprt_steps``, ``seed``)."""
    scorers = [build_metric(name, metric_options or {}) for name in metrics]
    explain = _explainer(method, layers, options)
    m = get_method(method)(model, layers, **method_options(method, options))
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False)
    n = 0
    if progress is not None:
        progress.start(len(loader), f"faithfulness {method}")
    for batch in loader:
        labels = batch["label"]
        if labels.ndim != 1:
            raise CamkitError("faithfulness scores single-label data; this split is multi-label")
        x = batch["image"].to(device)  # (B, 3, H, W)
        labels = labels.to(device)
        tgt = resolve_targets(target, labels)
        r = m(x, "pred" if tgt is None else tgt)
        masks = (
            batch["mask"].to(device).bool() if "mask" in batch else torch.zeros_like(r.maps, dtype=torch.bool)
        )
        if "has_mask" in batch:
            masks &= batch["has_mask"].to(device).bool()[:, None, None]
        fb = FaithBatch(model, x, minmax(r.maps), r.target, labels, masks, explain, int(r.logits.shape[1]))
        for s in scorers:
            s.update(fb)
        n += len(x)
        if progress is not None:
            progress.advance(1)
    if progress is not None:
        progress.close()
    out: dict[str, Any] = {}
    for s in scorers:
        out.update(s.compute())
    return out, n


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
    *,
    metrics: Sequence[str] = DEFAULT_METRICS,
    metric_options: dict[str, Any] | None = None,
    **options: Any,
) -> FaithfulnessResult:
    """Score each of ``methods`` with each of ``metrics`` over ``ds``, the model in eval mode.
    ``steps``: deletion/insertion steps; ``progress``: a callable returning a fresh
    :class:`Progress` per method (or None)."""
    for name in metrics:
        get_metric(name)  # unknown names fail before any work
    model.eval()
    res = FaithfulnessResult(images=0, steps=steps, metrics=list(metrics))
    mopts = {"steps": steps, **(metric_options or {})}
    for name in methods:
        bar = progress() if progress is not None else None
        res.methods[name], res.images = method_faithfulness(
            model, ds, name, metrics, layers, target, batch_size, device, bar, mopts, **options
        )
    return res
