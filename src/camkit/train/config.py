"""Config dataclasses for training runs; the CLI fills them, the library reads them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from camkit.core.errors import CamkitError
from camkit.data.datasets import DataConfig
from camkit.models.camnet import ModelConfig

SCHEDULES = ("constant", "cosine", "onecycle", "step")


@dataclass
class TrainConfig:
    epochs: int = 5
    lr: float = 1e-3
    batch_size: int = 64
    weight_decay: float = 0.0
    schedule: str = "constant"  # constant | cosine | onecycle | step (stepped every batch)
    step_epochs: int = 10  # step schedule: multiply the lr by step_gamma every step_epochs epochs
    step_gamma: float = 0.1
    label_smoothing: float = 0.0
    patience: int | None = None  # early stopping: epochs without a better val accuracy
    overfit_ratio: float | None = None  # stop (and never select) once val loss > ratio x train loss
    seg_transforms: list[str] = field(default_factory=lambda: ["scale:0.5"])  # SEG mode: A, in order
    seg_weight: float = 1.0  # SEG mode: lambda, the weight of the equivariance MSE
    backbone_lr_mult: float = 1.0  # the backbone's lr is lr x this (fine-tuning: e.g. 0.1, as ReCAM)
    init: str | None = None  # start from this checkpoint's weights (ReCAM: the converged CAM model)
    recam_weight: float = 1.0  # ReCAM: λ, the weight of L_sce
    recam_norm: str = "relu-max"  # ReCAM: how the CAM masks are normalized: relu-max | minmax | sigmoid
    # also log the epoch metrics to OUT/EXP_ID/tensorboard (needs the tensorboard package)
    tensorboard: bool = False
    save_every_epoch: bool = False  # keep every epoch's weights under epochs/ (for camkit evaluate-epochs)
    channels_last: bool = True  # NHWC convolutions: ~1.3x faster on CPU and tensor cores
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    workers: int = 0  # DataLoader worker processes
    pin_memory: bool | None = None  # page-locked batches for fast host-to-GPU copies; None: on with CUDA
    amp: str = "auto"  # mixed precision: auto (bf16/fp16 on GPUs, off on CPUs) | bf16 | fp16 | off
    out: str = "runs"
    exp_id: str = "cam"
    resume: bool = False
    test: bool = True  # evaluate the best checkpoint on the test split once, after training

    def validate(self) -> None:
        if self.epochs < 1:
            raise CamkitError(f"--epochs {self.epochs}: must be at least 1")
        if self.batch_size < 1:
            raise CamkitError(f"--batch-size {self.batch_size}: must be at least 1")
        if not self.lr > 0:
            raise CamkitError(f"--lr {self.lr}: must be positive")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise CamkitError(f"--label-smoothing {self.label_smoothing}: must be in [0, 1)")
        if self.patience is not None and self.patience < 1:
            raise CamkitError(f"--patience {self.patience}: must be at least 1")
        if self.overfit_ratio is not None and self.overfit_ratio <= 0:
            raise CamkitError(f"--overfit-ratio {self.overfit_ratio}: must be positive")
        if self.amp not in ("auto", "bf16", "fp16", "off"):
            raise CamkitError(f"--amp {self.amp}: choose auto, bf16, fp16 or off")
        if self.recam_norm not in ("relu-max", "minmax", "sigmoid"):
            raise CamkitError(f"--recam-norm {self.recam_norm}: choose relu-max, minmax or sigmoid")
        if not self.backbone_lr_mult >= 0:
            raise CamkitError(f"--backbone-lr-mult {self.backbone_lr_mult}: must be >= 0")
        if self.recam_weight < 0:
            raise CamkitError(f"--recam-weight {self.recam_weight}: must be >= 0")
        if self.schedule not in SCHEDULES:
            raise CamkitError(f"--schedule {self.schedule}: unknown; choose one of {', '.join(SCHEDULES)}")


@dataclass
class RunConfig:
    """One experiment: data, model and training settings."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    mode: str = "cam"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], strict: bool = False) -> RunConfig:
        """Rebuild from ``to_dict()`` output; ``strict`` rejects unknown keys (for hand-written configs)."""

        def build(tp: type, sub: dict[str, Any]) -> Any:
            names = {f.name for f in dataclasses.fields(tp)}
            unknown = sorted(set(sub) - names)
            if strict and unknown:
                raise CamkitError(
                    f"unknown config key {unknown[0]!r}; valid keys: {', '.join(sorted(names))}"
                )
            return tp(**{k: v for k, v in sub.items() if k in names})

        if strict and set(d) - {"data", "model", "train", "mode", "description"}:
            raise CamkitError(
                f"unknown config section {sorted(set(d) - {'data', 'model', 'train', 'mode', 'description'})[0]!r}"
            )

        return cls(
            data=build(DataConfig, d.get("data", {})),
            model=build(ModelConfig, d.get("model", {})),
            train=build(TrainConfig, d.get("train", {})),
            mode=d.get("mode", "cam"),
        )
