"""The pointing game (TorchRay's 15 px protocol, per class and overall) and the energy-based
pointing game (Score-CAM), against the dataset's object masks."""

from __future__ import annotations

from typing import Any

from camkit.metrics.pointing import PointingGame, energy_pointing_game
from camkit.pipeline.faith_metrics import register
from camkit.pipeline.faith_metrics.base import FaithBatch, FaithMetric, Mean


@register("pointing")
class Pointing(FaithMetric):
    summary = "pointing game: the map's maximum within `tolerance` px (15) of the object; mean class accuracy and overall hit rate"
    needs_masks = True

    def __init__(self, tolerance: float = 15) -> None:
        self.game = PointingGame(tolerance)

    def update(self, batch: FaithBatch) -> None:
        self.game.update(batch.maps, batch.masks, batch.labels)

    def compute(self) -> dict[str, Any]:
        r = self.game.compute()
        return {"pointing_accuracy": r.accuracy, "pointing_overall": r.overall, "pointing_skipped": r.skipped,
                "pointing_per_class": {str(k): v for k, v in r.per_class.items()}}  # fmt: skip


@register("energy")
class Energy(FaithMetric):
    summary = "energy-based pointing game: share of the map's energy inside the object mask"
    needs_masks = True

    def __init__(self) -> None:
        self.share = Mean()

    def update(self, batch: FaithBatch) -> None:
        r = energy_pointing_game(batch.maps, batch.masks)
        self.share.add(r.scores, r.valid)

    def compute(self) -> dict[str, Any]:
        return {"energy_pointing": self.share.value, "energy_skipped": self.share.skipped}
