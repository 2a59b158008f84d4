"""Training: the loop, cross-validation and checkpoints."""

from camkit.core.dist import resolve_device
from camkit.models.checkpoint import load_checkpoint, read_metadata, save_checkpoint
from camkit.train.config import RunConfig, TrainConfig
from camkit.train.cv import cross_validate, kfold_indices
from camkit.train.loop import FitResult, evaluate_classifier, fit, train_run
from camkit.train.objectives import objective_names

__all__ = [
    "FitResult",
    "RunConfig",
    "TrainConfig",
    "cross_validate",
    "evaluate_classifier",
    "fit",
    "kfold_indices",
    "load_checkpoint",
    "objective_names",
    "read_metadata",
    "resolve_device",
    "save_checkpoint",
    "train_run",
]
