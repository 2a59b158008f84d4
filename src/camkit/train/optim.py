"""The optimizer, the learning-rate schedule and the mixed-precision type of a run."""

from __future__ import annotations

from typing import Any

import torch

from camkit.models.camnet import CAMNet
from camkit.train.config import TrainConfig


def make_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig, steps: int) -> Any:
    """The per-batch learning-rate schedule named by ``cfg.schedule`` (None for constant)."""
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1))
    if cfg.schedule == "step":
        per_epoch = max(1, steps // max(cfg.epochs, 1))
        return torch.optim.lr_scheduler.StepLR(
            opt, step_size=cfg.step_epochs * per_epoch, gamma=cfg.step_gamma
        )
    if cfg.schedule == "onecycle":
        # torch divides by the warm-up's length in steps, pct_start * steps - 1: zero at 4 steps
        # and negative below, so a run that short warms up over 1.5 steps instead of a quarter
        pct = 0.25 if steps > 4 else min(1.5 / max(steps, 1), 0.99)
        return torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=[g["lr"] for g in opt.param_groups], total_steps=max(steps, 1), pct_start=pct
        )
    return None


def amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """Mixed precision: ``auto`` is bf16 on GPUs that have it (else fp16 with loss scaling)
    and off on CPUs; ``bf16``/``fp16`` force it; ``off`` disables it."""
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return None
    if amp == "fp16":
        return torch.float16
    if amp == "bf16" or (device.type == "cuda" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return torch.float16


def build_optimizer(model: CAMNet, cfg: TrainConfig) -> torch.optim.Adam:
    """Adam over the trainable parameters: the backbone at ``cfg.lr x cfg.backbone_lr_mult``,
    the rest (head, classifiers) at ``cfg.lr``."""
    backbone = getattr(model, "backbone", None)
    ids = {id(p) for p in backbone.parameters()} if backbone is not None else set()
    groups = [
        {
            "params": [p for p in model.parameters() if p.requires_grad and id(p) in ids],
            "lr": cfg.lr * cfg.backbone_lr_mult,
        },
        {"params": [p for p in model.parameters() if p.requires_grad and id(p) not in ids], "lr": cfg.lr},
    ]
    return torch.optim.Adam([g for g in groups if g["params"]], lr=cfg.lr, weight_decay=cfg.weight_decay)
