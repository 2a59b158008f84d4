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
    from camkit.core.errors import CamkitError

    pred = logits.argmax(1) if logits.ndim == 2 else logits
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise CamkitError(f"label {int(labels.max())} out of range 0..{num_classes - 1}")
    idx = labels.long() * num_classes + pred.long()
    return torch.bincount(idx.cpu(), minlength=num_classes * num_classes).view(num_classes, num_classes)


def average_precision(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-class average precision (the area under the stepwise PR curve, as in VOC since
    2010 and scikit-learn's ``average_precision_score``): the mean, over the positives, of
    the precision at each positive's rank. Tied scores share the precision at the end of
    their tie. (N, K) scores and {0, 1} targets -> (K,) float64; NaN where a class has no
    positive."""
    n, k = scores.shape
    out = torch.full((k,), float("nan"), dtype=torch.float64)
    for c in range(k):
        s, t = scores[:, c].double().cpu(), (targets[:, c] > 0.5).cpu()
        pos = int(t.sum())
        if pos == 0:
            continue
        order = torch.argsort(s, descending=True, stable=True)
        s, t = s[order], t[order].double()
        tp = torch.cumsum(t, 0)
        # at ties, every member takes the counts at the last member of its tie
        last = torch.ones(n, dtype=torch.bool)
        last[:-1] = s[1:] != s[:-1]
        idx = torch.nonzero(last, as_tuple=True)[0]
        tp_at, rank_at = tp[idx], (idx + 1).double()
        prec = tp_at / rank_at
        gained = torch.diff(tp_at, prepend=torch.zeros(1, dtype=torch.float64))
        out[c] = float((prec * gained).sum() / pos)
    return out


class MultiLabelMetrics:
    """Streaming multi-label scores from logits (positive where logit > 0, i.e. sigmoid > 0.5):
    ``exact_match`` (every class right), micro ``f1``, and ``map`` (mean AP over the classes
    with a positive). ``update(logits (B, K), targets (B, K))``, then ``compute()``."""

    def __init__(self) -> None:
        self.logits: list[torch.Tensor] = []
        self.targets: list[torch.Tensor] = []

    def update(self, logits: torch.Tensor, targets: torch.Tensor) -> None:
        self.logits.append(logits.detach().float().cpu())
        self.targets.append(targets.detach().float().cpu())

    def compute(self) -> dict[str, float]:
        z, t = torch.cat(self.logits), torch.cat(self.targets) > 0.5
        p = z > 0
        tp = float((p & t).sum())
        denom = float(p.sum() + t.sum())
        ap = average_precision(z, t)
        return {
            "exact_match": float((p == t).all(1).float().mean()),
            "f1": 2 * tp / denom if denom else 0.0,
            "map": float(ap[~ap.isnan()].mean()) if bool((~ap.isnan()).any()) else 0.0,
        }
