"""``mode="seg"``: the two-branch equivariance loss of :mod:`camkit.train.seg`."""

from __future__ import annotations

import torch

from camkit.core.dist import World
from camkit.core.errors import OptionError
from camkit.models.camnet import CAMNet
from camkit.train.config import TrainConfig
from camkit.train.objectives import Batch, Objective, Step, register
from camkit.train.seg import parse_transform, seg_loss


@register("seg")
class SEGObjective(Objective):
    """(CE(original) + CE(transformed)) / 2 + ``cfg.seg_weight`` · the CAM equivariance MSE under
    ``cfg.seg_transforms``; single-label, one process, full precision. Logs ``cls_l``,
    ``cls_s`` and ``seg``."""

    autocast = False

    def __init__(self, cfg: TrainConfig, model: CAMNet, world: World) -> None:
        super().__init__(cfg, model, world)
        self.transforms = [parse_transform(t) for t in cfg.seg_transforms]
        if not self.transforms:
            raise OptionError("seg_transforms", "mode seg needs at least one transform (e.g. scale:0.5)")
        if world.distributed:
            raise OptionError("mode", "runs in one process for now; start it without torchrun", "seg")

    def __call__(self, net: torch.nn.Module, batch: Batch) -> Step:
        x, y = batch["image"], batch["label"]
        if y.ndim == 2:
            raise OptionError("mode", "multi-label data is not supported; use cam or recam", "seg")
        loss, parts, logits = seg_loss(
            self.model, x, y, self.transforms, self.cfg.seg_weight, self.cfg.label_smoothing
        )
        return loss, logits, parts
