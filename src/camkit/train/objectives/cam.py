"""``mode="cam"``: cross-entropy for (B,) class ids, BCE with logits (averaged over the K
classes) for (B, K) multi-hot labels — the plain CAM classifier."""

from __future__ import annotations

import torch

from camkit.train.evaluate import classification_loss
from camkit.train.objectives import Batch, Objective, Step, register


@register("cam")
class ClassificationObjective(Objective):
    """``loss = CE(logits, y)`` (label smoothing ``cfg.label_smoothing``) or ``BCE(logits, y)``."""

    def __call__(self, net: torch.nn.Module, batch: Batch) -> Step:
        logits = net(batch["image"]).logits
        return classification_loss(logits.float(), batch["label"], self.cfg.label_smoothing), logits, {}
