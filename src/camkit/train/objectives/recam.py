"""``mode="recam"``: ReCAM's L = L_bce + λ L_sce, L_sce on FC2 (:mod:`camkit.train.recam`)."""

from __future__ import annotations

import logging

import torch

from camkit.core.dist import World
from camkit.core.errors import OptionError
from camkit.models.camnet import CAMNet, ModelConfig
from camkit.train.config import TrainConfig
from camkit.train.evaluate import classification_loss
from camkit.train.objectives import Batch, Objective, Step, register
from camkit.train.recam import recam_loss

log = logging.getLogger(__name__)


@register("recam")
class ReCAMObjective(Objective):
    """L_bce (CE for class ids) + ``cfg.recam_weight`` · L_sce, masks normalized by
    ``cfg.recam_norm``. Logs ``bce`` and ``sce``."""

    def __init__(self, cfg: TrainConfig, model: CAMNet, world: World) -> None:
        super().__init__(cfg, model, world)
        if getattr(model, "classifier2", None) is None:
            raise OptionError("mode", "the model has no FC2; build it with ModelConfig(fc2=True)", "recam")

    @classmethod
    def configure(cls, model_cfg: ModelConfig) -> None:
        if not model_cfg.fc2:
            log.info("mode recam: adding FC2 to the model")
            model_cfg.fc2 = True

    def __call__(self, net: torch.nn.Module, batch: Batch) -> Step:
        y = batch["label"]
        out = net(batch["image"])
        bce = classification_loss(out.logits.float(), y, self.cfg.label_smoothing)
        sce = recam_loss(self.model, out, y, self.cfg.recam_norm)
        return bce + self.cfg.recam_weight * sce, out.logits, {"bce": bce.item(), "sce": sce.item()}
