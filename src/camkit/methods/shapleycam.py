"""Shapley-CAM (Cai, CAMs as Shapley Value-based Explainers, arXiv 2501.06261): Grad-CAM's
channel weights with a second-order correction from the Hessian-vector product,

    g = d s / d A;   h = (d² s / d A²) · A;   w_k = mean_ij ( g - ½ h )_k;   M = ReLU( sum_k w_k A_k )

per target layer (the Hessian of that layer alone, as pytorch-grad-cam). The score s is the
paper's ReST by default, the logit minus the cross-entropy of the class,
s = y_c - CE(y, c) = 2 y_c - logsumexp(y); ``score="logit"`` uses y_c (on a network that is
piecewise linear after the layer, h is then 0 and the map is Grad-CAM's).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from camkit.core.errors import OptionError
from camkit.methods.base import CAMMethod, LayerSpec, weighted_sum
from camkit.methods.registry import register


def pair_rounds(sample: torch.Tensor) -> list[torch.Tensor]:
    """Split (N,) pair indices into rounds in which each sample appears at most once."""
    pos = torch.arange(sample.numel(), device=sample.device)
    starts = torch.ones_like(sample, dtype=torch.bool)
    starts[1:] = sample[1:] != sample[:-1]
    rank = pos - torch.cummax(torch.where(starts, pos, torch.zeros_like(pos)), 0).values
    return [
        torch.nonzero(rank == r, as_tuple=True)[0] for r in range(int(rank.max()) + 1 if len(rank) else 0)
    ]


def round_weighted_maps(
    acts: list[torch.Tensor],
    sample: torch.Tensor,
    round_weights: Callable[[torch.Tensor], list[torch.Tensor]],
) -> list[torch.Tensor]:
    """ReLU(sum_c w_c A_c) per target layer, with the (N, C_l) channel weights gathered over the
    :func:`pair_rounds` of ``sample``: ``round_weights(sel)`` gives each layer's (len(sel), C_l)
    weights of pairs ``sel``. Returns one (N, h_l, w_l) map per layer."""
    weights = [a.new_zeros(sample.numel(), a.shape[1]) for a in acts]
    for sel in pair_rounds(sample):
        for li, w in enumerate(round_weights(sel)):
            weights[li] = weights[li].index_copy(0, sel, w)
    return [torch.relu(weighted_sum(a[sample], w)) for a, w in zip(acts, weights, strict=True)]


@register("shapley-cam")
class ShapleyCAM(CAMMethod):
    reference = "Cai, CAMs as Shapley Value-based Explainers, arXiv 2501.06261"
    uses_gradients = True
    needs = "one backward + one Hessian-vector product"
    extra_options = ("score",)

    def __init__(
        self, model: nn.Module, target_layers: LayerSpec = None, score: str = "rest", **kw: Any
    ) -> None:
        super().__init__(model, target_layers, **kw)
        if score not in ("rest", "logit"):
            raise OptionError("score", "use rest (logit minus cross-entropy) or logit", score)
        self.score = score

    def compute(
        self,
        x: torch.Tensor,
        acts: list[torch.Tensor],
        logits: torch.Tensor,
        sample: torch.Tensor,
        target: torch.Tensor,
        create_graph: bool,
    ) -> list[torch.Tensor]:
        """ReLU(sum_c mean(g - h/2)_c A_c): one (N, h_l, w_l) map per target layer."""

        def round_weights(sel: torch.Tensor) -> list[torch.Tensor]:
            s, t = sample[sel], target[sel]
            y = logits[s, t]
            score = (2 * y - torch.logsumexp(logits[s], dim=1)) if self.score == "rest" else y
            grads = torch.autograd.grad(score.sum(), acts, retain_graph=True, create_graph=True)
            out = []
            for a, g in zip(acts, grads, strict=True):
                (hv,) = torch.autograd.grad(
                    (g * a.detach()).sum(), a, retain_graph=True, create_graph=create_graph
                )
                w = (g - 0.5 * hv)[s].flatten(2).mean(2)
                out.append(w if create_graph else w.detach())
            return out

        return round_weighted_maps(acts, sample, round_weights)
