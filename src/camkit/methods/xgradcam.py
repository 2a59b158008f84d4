"""XGrad-CAM (Fu et al., BMVC 2020): gradients weighted by each channel's normalized activation,

w_k = sum_ij ( A_k(i, j) / sum_ab A_k(a, b) ) · d y_c / d A_k(i, j)
M_c = ReLU( sum_k w_k A_k )
"""

from __future__ import annotations

import torch

from camkit.methods.gradcam import GradCAM
from camkit.methods.registry import register

EPS = 1e-7


@register("xgrad-cam")
class XGradCAM(GradCAM):
    reference = "Fu et al., Axiom-based Grad-CAM, BMVC 2020"

    def channel_weights(self, a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        s = a.sum(dim=tuple(range(2, a.ndim)), keepdim=True)
        return (g * a / (s + EPS)).flatten(2).sum(2)
