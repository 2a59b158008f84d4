"""ROAD (Rong et al., ICML 2022): MoRF, LeRF and combined, with the noisy linear imputer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from camkit.metrics.road import DEFAULT_PERCENTILES, check_percentiles, road
from camkit.pipeline.faith_metrics import register
from camkit.pipeline.faith_metrics.base import FaithBatch, FaithMetric, Mean


@register("road")
class ROAD(FaithMetric):
    summary = "ROAD: target probability change after imputing the most (MoRF) / least (LeRF) relevant pixels; combined = (LeRF - MoRF) / 2, higher is better"

    def __init__(self, percentiles: Sequence[float] = DEFAULT_PERCENTILES, seed: int = 0) -> None:
        check_percentiles(percentiles)
        self.percentiles, self.seed = list(percentiles), seed
        self.morf, self.lerf, self.combined = Mean(), Mean(), Mean()
        self.batches = 0

    def update(self, batch: FaithBatch) -> None:
        r = road(batch.model, batch.images, batch.maps, batch.targets, self.percentiles,
                 seed=self.seed + self.batches)  # fmt: skip
        self.batches += 1
        self.morf.add(r.morf_mean)
        self.lerf.add(r.lerf_mean)
        self.combined.add(r.combined)

    def compute(self) -> dict[str, Any]:
        return {
            "road_morf": self.morf.value,
            "road_lerf": self.lerf.value,
            "road_combined": self.combined.value,
        }
