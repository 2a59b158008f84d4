"""Softmax-weighted CAM, the ENGN8536 lab's variant (after SSENet, Wang et al. 2019):

    M_c = sum_k softmax(w_c)_k A_k

the class weights pass through a softmax over channels first, so they are positive and sum
to one. The SEG mode's equivariance loss compares these maps.
"""

from __future__ import annotations

import torch

from camkit.methods.cam import CAM
from camkit.methods.registry import register


@register("softmax-cam")
class SoftmaxCAM(CAM):
    reference = "ENGN8536 Lab 4 (after Wang et al., SSENet, arXiv 1909.03714)"

    def class_weights(self, weight: torch.Tensor) -> torch.Tensor:
        return torch.softmax(weight, dim=1)
