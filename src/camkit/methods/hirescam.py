"""HiResCAM (Draelos & Carin, 2020): the element-wise product of gradients and activations,

    M_c(i, j) = sum_k  d y_c / d A_k(i, j) · A_k(i, j)

kept signed (no ReLU), so that for a GAP-linear head it equals CAM up to the 1/hw factor and
shows exactly which positions raise or lower the score.
"""

from __future__ import annotations

import torch

from camkit.methods.base import CAMMethod
from camkit.methods.registry import register


@register("hirescam")
class HiResCAM(CAMMethod):
    reference = "Draelos & Carin, Use HiResCAM instead of Grad-CAM, arXiv 2011.08891"
    uses_gradients = True

    def compute(
        self,
        x: torch.Tensor,
        acts: list[torch.Tensor],
        logits: torch.Tensor,
        sample: torch.Tensor,
        target: torch.Tensor,
        create_graph: bool,
    ) -> list[torch.Tensor]:
        """sum_c dy/dA_c ⊙ A_c (no ReLU): one (N, h_l, w_l) map per target layer."""
        grads = self.gradients(acts, logits, sample, target, create_graph)
        return [(g * a[sample]).sum(1) for a, g in zip(acts, grads, strict=True)]
