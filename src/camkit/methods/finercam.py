"""Finer-CAM (Zhang et al., Finer-CAM: Spotting the Difference Reveals Finer Details for Visual
Explanation, CVPR 2025): Grad-CAM of the target's score against its most similar classes,

    S = { the classes ranked ``comparison`` (default 1, 2, 3) by |y_j - y_c|, ascending };
    s = sum_{j in S} p_j (y_c - α y_j) / (sum_{j in S} p_j + 1e-9),   p = softmax(y);
    alpha_k = mean_ij d s / d A_k(i, j);   M = ReLU( sum_k alpha_k A_k )

as pytorch-grad-cam's FinerCAM with its FinerWeightedTarget (the p_j stay in the graph).
α = 0 gives Grad-CAM of y_c.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from camkit.methods.base import CAMMethod, LayerSpec
from camkit.methods.registry import register
from camkit.methods.shapleycam import round_weighted_maps


def finer_score(
    logits: torch.Tensor, target: torch.Tensor, ranks: Sequence[int], alpha: float
) -> torch.Tensor:
    """(n, K) logits, (n,) targets -> (n,) scores s, against the classes of the given similarity ranks."""
    y = logits.gather(1, target[:, None])  # (n, 1)
    order = (logits - y).abs().detach().argsort(dim=1)
    comp = order[:, [r for r in ranks if r < logits.shape[1]]]
    p = logits.softmax(1).gather(1, comp)
    return (p * (y - alpha * logits.gather(1, comp))).sum(1) / (p.sum(1) + 1e-9)


@register("finer-cam")
class FinerCAM(CAMMethod):
    reference = "Zhang et al., Finer-CAM, CVPR 2025"
    uses_gradients = True
    extra_options = ("alpha", "comparison")

    def __init__(
        self,
        model: nn.Module,
        target_layers: LayerSpec = None,
        alpha: float = 1.0,
        comparison: Sequence[int] = (1, 2, 3),
        **kw: Any,
    ) -> None:
        super().__init__(model, target_layers, **kw)
        self.alpha, self.comparison = alpha, tuple(comparison)

    def compute(
        self,
        x: torch.Tensor,
        acts: list[torch.Tensor],
        logits: torch.Tensor,
        sample: torch.Tensor,
        target: torch.Tensor,
        create_graph: bool,
    ) -> list[torch.Tensor]:
        """ReLU(sum_c mean(ds/dA)_c A_c): one (N, h_l, w_l) map per target layer."""

        def round_weights(sel: torch.Tensor) -> list[torch.Tensor]:
            s = sample[sel]
            score = finer_score(logits[s], target[sel], self.comparison, self.alpha).sum()
            grads = torch.autograd.grad(score, acts, retain_graph=True, create_graph=create_graph)
            return [g[s].flatten(2).mean(2) for g in grads]

        return round_weighted_maps(acts, sample, round_weights)
