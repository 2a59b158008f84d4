"""Metrics: pure tensor functions plus thin streaming accumulators."""

from camkit.metrics.classification import Accuracy, topk_correct
from camkit.metrics.iou import IoUSweep, default_thresholds, iou, iou_curve, iou_from_counts, sweep_counts

__all__ = [
    "Accuracy",
    "IoUSweep",
    "default_thresholds",
    "iou",
    "iou_curve",
    "iou_from_counts",
    "sweep_counts",
    "topk_correct",
]
