"""What every faithfulness metric of the registry sees: a batch, and a running mean."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn


@dataclass
class FaithBatch:
    """One batch: ``images`` (B, 3, H, W); ``maps`` (B, H, W) the method's maps at image size,
    min-max normalized to [0, 1]; ``targets`` (B,) the explained classes; ``labels`` (B,);
    ``masks`` (B, H, W) bool object masks (all False where an image has none);
    ``explain(model, images, targets)`` recomputes normalized maps with the same method on
    another model (a randomized copy) or for other classes; ``num_classes`` K."""

    model: nn.Module
    images: torch.Tensor
    maps: torch.Tensor
    targets: torch.Tensor
    labels: torch.Tensor
    masks: torch.Tensor
    explain: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
    num_classes: int


class FaithMetric:
    """Base of the registered metrics: a streaming scorer over batches of one method's maps."""

    name: ClassVar[str] = ""
    #: one line for ``camkit faithfulness --help`` and the docs
    summary: ClassVar[str] = ""
    #: scored against object masks (images without one are skipped and counted)
    needs_masks: ClassVar[bool] = False

    def update(self, batch: FaithBatch) -> None:
        """Score one batch."""
        raise NotImplementedError

    def compute(self) -> dict[str, Any]:
        """The scores over every batch so far: a flat dict of floats (None: nothing scored)
        and counts (``*_skipped``)."""
        raise NotImplementedError


class Mean:
    """A running mean of per-image scores with a count of the images skipped."""

    def __init__(self) -> None:
        self.total, self.n, self.skipped = 0.0, 0, 0

    def add(self, scores: torch.Tensor, valid: torch.Tensor | None = None) -> None:
        """Add (B,) scores; ``valid`` (B,) bool marks those that count (the rest are skipped)."""
        if valid is None:
            valid = torch.ones_like(scores, dtype=torch.bool)
        self.total += float(scores[valid].double().sum())
        self.n += int(valid.sum())
        self.skipped += int((~valid).sum())

    @property
    def value(self) -> float | None:
        return self.total / self.n if self.n else None
