"""EigenGrad-CAM (pytorch-grad-cam's variant of Eigen-CAM, Muhammad & Yeasin, IJCNN 2020): the
first principal component of the gradient-weighted activations,

    B = A ⊙ d y_c / d A;   M = ReLU( projection of B (hw × C, centred) on its first right singular vector )

Unlike Eigen-CAM it is class-specific. The component's sign is fixed as in Eigen-CAM: the
projection correlates positively with sum_k B_k (the HiResCAM map).
"""

from __future__ import annotations

import torch

from camkit.methods.base import CAMMethod
from camkit.methods.eigencam import first_component
from camkit.methods.registry import register


@register("eigengrad-cam")
class EigenGradCAM(CAMMethod):
    reference = "Muhammad & Yeasin, Eigen-CAM, IJCNN 2020 (gradient-weighted, after pytorch-grad-cam)"
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
        """ReLU of the first principal component of A ⊙ dy/dA: one (N, h_l, w_l) map per layer."""
        grads = self.gradients(acts, logits, sample, target, create_graph)
        return [torch.relu(first_component(a[sample] * g)) for a, g in zip(acts, grads, strict=True)]
