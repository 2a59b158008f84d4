"""Config dataclasses for training runs; the CLI fills them, the library reads them."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from camkit.core.errors import CamkitError, OptionError
from camkit.core.options import from_dict, option
from camkit.data.datasets import DataConfig
from camkit.models.camnet import ModelConfig

SCHEDULES = ("constant", "cosine", "onecycle", "step")
AMP = ("auto", "bf16", "fp16", "off")
RECAM_NORMS = ("relu-max", "minmax", "sigmoid")


def _objective_names() -> list[str]:
    """The training modes: the registered objectives (camkit.train.objectives), read lazily
    since they import this module."""
    from camkit.train.objectives import objective_names

    return objective_names()


@dataclass
class TrainConfig:
    """How to train: optimizer, schedule, stopping, the mode's loss settings, where runs go."""

    epochs: int = option(5, help="passes over the training split")
    lr: float = option(1e-3, help="learning rate (Adam)")
    batch_size: int = option(64, help="images per training batch")
    weight_decay: float = option(0.0, help="Adam weight decay")
    schedule: str = option("constant", choices=SCHEDULES, help="learning-rate schedule, stepped every batch")
    step_epochs: int = option(10, help="step schedule: epochs between lr drops")
    step_gamma: float = option(0.1, help="step schedule: lr factor at each drop")
    label_smoothing: float = option(0.0, help="cross-entropy label smoothing")
    patience: int | None = option(None, help="early stopping: epochs without a better val accuracy")
    overfit_ratio: float | None = option(
        None,
        metavar="RATIO",
        help="stop (and never select) once val loss > RATIO x train loss (the Flower-17 study: 2)",
    )
    seg_transforms: list[str] = option(
        flag="--transform", metavar="A", default_factory=lambda: ["scale:0.5"],
        help="seg mode: a transform A (repeat to compose): scale:0.5, hflip, vflip, rot:DEG, shift:DX,DY",
    )  # fmt: skip
    seg_weight: float = option(1.0, help="seg mode: λ, the weight of the equivariance loss")
    backbone_lr_mult: float = option(
        1.0, help="the backbone's lr is lr times this (fine-tuning, as ReCAM: 0.1)"
    )
    init: str | None = option(
        None, help="start from this checkpoint's weights (recam: the converged CAM model, as in the paper)"
    )
    recam_weight: float = option(1.0, help="recam mode: λ, the weight of L_sce")
    recam_norm: str = option(
        "relu-max", choices=RECAM_NORMS, help="recam mode: how the CAM masks M_k are normalized"
    )
    tensorboard: bool = option(
        False, help="also log the epoch metrics to OUT/EXP_ID/tensorboard (pip install tensorboard)"
    )
    save_every_epoch: bool = option(False, help="keep every epoch's weights (for camkit evaluate-epochs)")
    channels_last: bool = option(
        True, negatable=True, help="NHWC memory format (~1.3x faster on CPU and tensor cores)"
    )
    seed: int = option(0, help="training seed (initialization, shuffling, augmentation)")
    device: str = option("auto", help="auto, cpu or cuda[:N]")
    workers: int = option(0, help="DataLoader worker processes")
    pin_memory: bool | None = option(
        None, cli=False, default_text="on with CUDA", help="page-locked batches for fast host-to-GPU copies"
    )
    amp: str = option("auto", choices=AMP, default_text="auto: on GPUs only", help="mixed precision")
    out: str = option("runs", help="parent folder of run folders")
    exp_id: str = option("cam", help="run folder name")
    resume: bool = option(False, help="continue the run in OUT/EXP_ID")
    test: bool = option(
        True, flag="--no-test", help="evaluate the best checkpoint on the test split once, after training"
    )

    def validate(self) -> None:
        """One-line :class:`OptionError` for the first setting out of range."""
        for name, ok, problem in (
            ("epochs", self.epochs >= 1, "must be at least 1"),
            ("batch_size", self.batch_size >= 1, "must be at least 1"),
            ("lr", self.lr > 0, "must be positive"),
            ("label_smoothing", 0.0 <= self.label_smoothing < 1.0, "must be in [0, 1)"),
            ("patience", self.patience is None or self.patience >= 1, "must be at least 1"),
            ("overfit_ratio", self.overfit_ratio is None or self.overfit_ratio > 0, "must be positive"),
            ("amp", self.amp in AMP, "choose auto, bf16, fp16 or off"),
            ("recam_norm", self.recam_norm in RECAM_NORMS, "choose relu-max, minmax or sigmoid"),
            ("backbone_lr_mult", self.backbone_lr_mult >= 0, "must be >= 0"),
            ("recam_weight", self.recam_weight >= 0, "must be >= 0"),
            ("schedule", self.schedule in SCHEDULES, f"unknown; choose one of {', '.join(SCHEDULES)}"),
            ("exp_id", self.exp_id.strip(" ./") != "", "name the run folder (it goes under out)"),
        ):
            if not ok:
                raise OptionError(f"train.{name}", problem, getattr(self, name))


@dataclass
class RunConfig:
    """One experiment: data, model and training settings."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    mode: str = option(
        "cam", choices=_objective_names,
        help="cam (cross-entropy, BCE for multi-label), seg (two-branch equivariance loss) "
        "or recam (BCE + ReCAM's softmax CE on FC2)",
    )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RunConfig:
        """The config.json of a run folder; a one-line error when it is damaged."""
        path = Path(path)
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (UnicodeDecodeError, json.JSONDecodeError, TypeError, ValueError, AttributeError) as e:
            raise CamkitError(
                f"{path}: not a readable run config ({e.__class__.__name__}); the run folder is damaged, train it again"
            ) from None
        except CamkitError as e:
            raise CamkitError(f"{path}: {e}") from None

    @classmethod
    def from_dict(cls, d: dict[str, Any], strict: bool = False) -> RunConfig:
        """Rebuild from ``to_dict()`` output; ``strict`` rejects unknown keys and wrong types (for
        hand-written configs). Older configs with flat ``aug_*`` data keys load too."""
        sections = {"data", "model", "train", "mode", "description"}
        if strict and set(d) - sections:
            key = sorted(set(d) - sections)[0]
            home = [n for n, c in (("data", DataConfig), ("model", ModelConfig), ("train", TrainConfig))
                    if key in {f.name for f in dataclasses.fields(c)}]  # fmt: skip
            hint = (
                f'; write it as {{"{home[0]}": {{"{key}": ...}}}}'
                if home
                else "; sections: data, model, train, mode"
            )
            raise CamkitError(f"unknown config section {key!r}{hint}")
        mode = d.get("mode", "cam")
        if strict and not isinstance(mode, str):
            raise CamkitError(f"config key 'mode': expected str, got {mode!r}")
        return cls(
            data=DataConfig.from_dict(d.get("data", {}), strict, where=""),
            model=from_dict(ModelConfig, d.get("model", {}), strict),
            train=from_dict(TrainConfig, d.get("train", {}), strict),
            mode=mode,
        )
