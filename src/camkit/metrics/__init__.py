"""Metrics: pure tensor functions plus thin streaming accumulators."""

from camkit.metrics.classification import Accuracy, topk_correct
from camkit.metrics.iou import IoUSweep, default_thresholds, iou, iou_curve, iou_from_counts, sweep_counts
from camkit.metrics.pointing import (
    PointingGame,
    energy_pointing_game,
    energy_pointing_game_boxes,
    pointing_game,
    pointing_game_boxes,
)
from camkit.metrics.relevance import relevance_mass_accuracy, relevance_rank_accuracy
from camkit.metrics.road import noisy_linear_impute, road
from camkit.metrics.sanity import mprt, random_logit

__all__ = [
    "Accuracy",
    "IoUSweep",
    "PointingGame",
    "default_thresholds",
    "energy_pointing_game",
    "energy_pointing_game_boxes",
    "iou",
    "iou_curve",
    "iou_from_counts",
    "mprt",
    "noisy_linear_impute",
    "pointing_game",
    "pointing_game_boxes",
    "random_logit",
    "relevance_mass_accuracy",
    "relevance_rank_accuracy",
    "road",
    "sweep_counts",
    "topk_correct",
]
