"""Relevance mass and rank accuracy (Arras et al.; Quantus' definitions) against object masks."""

from __future__ import annotations

from typing import Any

from camkit.metrics.relevance import relevance_mass_accuracy, relevance_rank_accuracy
from camkit.pipeline.faith_metrics import register
from camkit.pipeline.faith_metrics.base import FaithBatch, FaithMetric, Mean


@register("relevance-mass")
class RelevanceMass(FaithMetric):
    summary = "relevance mass accuracy: share of the map's total inside the object mask"
    needs_masks = True

    def __init__(self) -> None:
        self.mean = Mean()

    def update(self, batch: FaithBatch) -> None:
        r = relevance_mass_accuracy(batch.maps, batch.masks)
        self.mean.add(r.scores, r.valid)

    def compute(self) -> dict[str, Any]:
        return {"relevance_mass": self.mean.value, "relevance_mass_skipped": self.mean.skipped}


@register("relevance-rank")
class RelevanceRank(FaithMetric):
    summary = "relevance rank accuracy: share of the map's K highest pixels inside the K-pixel mask"
    needs_masks = True

    def __init__(self) -> None:
        self.mean = Mean()

    def update(self, batch: FaithBatch) -> None:
        r = relevance_rank_accuracy(batch.maps, batch.masks)
        self.mean.add(r.scores, r.valid)

    def compute(self) -> dict[str, Any]:
        return {"relevance_rank": self.mean.value, "relevance_rank_skipped": self.mean.skipped}
