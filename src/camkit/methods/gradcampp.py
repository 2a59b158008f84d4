"""Grad-CAM++ (Chattopadhay et al., WACV 2018), in its closed form for an exponential output
(their Eq. 19), with g = d y_c / d A_k:

    a_k(i, j) = g^2 / (2 g^2 + sum_ab A_k(a, b) · g^3)        (0 where g = 0)
    w_k       = sum_ij a_k(i, j) · ReLU(g(i, j))
    M_c       = ReLU( sum_k w_k A_k )
"""

from __future__ import annotations

import torch

from camkit.methods.gradcam import GradCAM
from camkit.methods.registry import register

EPS = 1e-6


@register("grad-cam++")
class GradCAMPlusPlus(GradCAM):
    reference = "Chattopadhay et al., Grad-CAM++, WACV 2018"

    def channel_weights(self, a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        g2 = g * g
        g3 = g2 * g
        s = a.sum(dim=tuple(range(2, a.ndim)), keepdim=True)
        alpha = g2 / (2 * g2 + s * g3 + EPS)
        alpha = torch.where(g != 0, alpha, torch.zeros_like(alpha))
        return (alpha * torch.relu(g)).flatten(2).sum(2)
