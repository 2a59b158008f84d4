"""Classification accuracy."""

from __future__ import annotations

import torch


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, ks: tuple[int, ...] = (1,)) -> dict[int, int]:
    """Number of samples whose label is among the top-k logits. (B, K), (B,) -> {k: count}."""
    kmax = min(max(ks), logits.shape[1])
    top = logits.topk(kmax, dim=1).indices  # (B, kmax)
    hit = top == labels[:, None]
    return {k: int(hit[:, : min(k, kmax)].any(1).sum()) for k in ks}


class Accuracy:
    """Streaming top-k accuracy: ``update(logits, labels)``, then ``compute()`` -> {"top1": …}."""

    def __init__(self, ks: tuple[int, ...] = (1,)) -> None:
        self.ks = ks
        self.correct = dict.fromkeys(ks, 0)
        self.n = 0

    def update(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        for k, c in topk_correct(logits, labels, self.ks).items():
            self.correct[k] += c
        self.n += labels.numel()

    def compute(self) -> dict[str, float]:
        return {f"top{k}": self.correct[k] / max(self.n, 1) for k in self.ks}


def confusion(logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(B, K) logits (or (B,) predictions) and (B,) labels -> (K, K) counts, rows = true class."""
    from camkit.errors import CamkitError

    pred = logits.argmax(1) if logits.ndim == 2 else logits
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise CamkitError(f"label {int(labels.max())} out of range 0..{num_classes - 1}")
    idx = labels.long() * num_classes + pred.long()
    return torch.bincount(idx.cpu(), minlength=num_classes * num_classes).view(num_classes, num_classes)
