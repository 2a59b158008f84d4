"""Deletion and insertion AUC (Petsiuk et al., RISE) and Average Drop / Increase in Confidence
(Chattopadhay et al., Grad-CAM++); see ``metrics/faithfulness.py``."""

from __future__ import annotations

from typing import Any

from camkit.metrics.faithfulness import average_drop_increase, deletion_insertion
from camkit.pipeline.faith_metrics import register
from camkit.pipeline.faith_metrics.base import FaithBatch, FaithMetric, Mean


class _Curve(FaithMetric):
    mode = "deletion"

    def __init__(self, steps: int = 50) -> None:
        self.steps = steps
        self.auc = Mean()

    def update(self, batch: FaithBatch) -> None:
        r = deletion_insertion(
            batch.model, batch.images, batch.maps, batch.targets, self.mode, steps=self.steps
        )
        self.auc.add(r.auc)

    def compute(self) -> dict[str, Any]:
        return {f"{self.mode}_auc": self.auc.value}


@register("deletion")
class Deletion(_Curve):
    summary = "area under the target probability as the most salient pixels are zeroed (lower is better)"
    mode = "deletion"


@register("insertion")
class Insertion(_Curve):
    summary = "area under the target probability as the most salient pixels are revealed on a blur (higher is better)"
    mode = "insertion"


@register("average-drop")
class AverageDrop(FaithMetric):
    summary = "Average Drop % (lower is better) and Increase in Confidence % on image x map"

    def __init__(self) -> None:
        self.drop, self.increase = Mean(), Mean()

    def update(self, batch: FaithBatch) -> None:
        r = average_drop_increase(batch.model, batch.images, batch.maps, batch.targets)
        n = batch.images.shape[0]  # the function returns batch means; weight them by the batch size
        self.drop.total += r.average_drop * n
        self.increase.total += r.increase_in_confidence * n
        self.drop.n += n
        self.increase.n += n

    def compute(self) -> dict[str, Any]:
        return {"average_drop": self.drop.value, "increase_in_confidence": self.increase.value}
