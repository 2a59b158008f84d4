"""Eigen-CAM (Muhammad & Yeasin, IJCNN 2020): the activations' first principal component,

    A' = reshape(A, hw × C) − mean over positions;   A' = U S Vᵀ;   M = ReLU( reshape(A' v_1, h × w) )

Class-agnostic (the target only selects which samples to return). SVD leaves the sign of v_1
free; camkit fixes it so the projection correlates positively with the channel-sum map
sum_k A_k, which keeps strongly activated regions positive.
"""

from __future__ import annotations

import torch

from camkit.methods.base import CAMMethod
from camkit.methods.registry import register


def first_component(a: torch.Tensor) -> torch.Tensor:
    """(N, C, *grid) -> (N, *grid): projection on the first principal component, sign-fixed."""
    n = a.shape[0]
    x = a.flatten(2).transpose(1, 2).double()  # (N, hw, C)
    x = x - x.mean(dim=1, keepdim=True)
    _, _, vh = torch.linalg.svd(x, full_matrices=False)
    proj = x @ vh[:, 0, :, None]  # (N, hw, 1)
    ref = a.sum(1).flatten(1).double()
    ref = ref - ref.mean(1, keepdim=True)
    sign = torch.sign((proj[..., 0] * ref).sum(1))
    sign = torch.where(sign == 0, torch.ones_like(sign), sign)
    return (proj[..., 0] * sign[:, None]).view(n, *a.shape[2:]).to(a.dtype)


@register("eigen-cam")
class EigenCAM(CAMMethod):
    reference = "Muhammad & Yeasin, Eigen-CAM, IJCNN 2020"

    def compute(
        self,
        x: torch.Tensor,
        acts: list[torch.Tensor],
        logits: torch.Tensor,
        sample: torch.Tensor,
        target: torch.Tensor,
        create_graph: bool,
    ) -> list[torch.Tensor]:
        """ReLU of the first principal component of A[sample] (class-agnostic): one
        (N, h_l, w_l) map per target layer."""
        return [torch.relu(first_component(a[sample])) for a in acts]
