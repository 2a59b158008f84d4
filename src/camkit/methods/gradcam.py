"""Grad-CAM (Selvaraju et al., ICCV 2017):

    alpha_k = (1 / hw) sum_ij  d y_c / d A_k(i, j)
    M_c     = ReLU( sum_k alpha_k A_k )

with y_c the class logit (pre-softmax score).
"""

from __future__ import annotations

import torch

from camkit.methods.base import CAMMethod, weighted_sum
from camkit.methods.registry import register


@register("grad-cam")
class GradCAM(CAMMethod):
    reference = "Selvaraju et al., Grad-CAM, ICCV 2017"
    uses_gradients = True

    def channel_weights(self, a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """(N, C, *grid) activations and gradients (2-D or 3-D grid) -> (N, C) weights."""
        return g.flatten(2).mean(2)

    def compute(
        self,
        x: torch.Tensor,
        acts: list[torch.Tensor],
        logits: torch.Tensor,
        sample: torch.Tensor,
        target: torch.Tensor,
        create_graph: bool,
    ) -> list[torch.Tensor]:
        """ReLU(sum_c alpha_c A_c) with alpha = channel_weights(A, dy/dA), (N, C): one
        (N, h_l, w_l) map per target layer."""
        grads = self.gradients(acts, logits, sample, target, create_graph)
        return [
            torch.relu(weighted_sum(a[sample], self.channel_weights(a[sample], g)))
            for a, g in zip(acts, grads, strict=True)
        ]
