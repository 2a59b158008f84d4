"""KPCA-CAM (Karmani et al., arXiv 2410.00267): Eigen-CAM with kernel PCA. The activations
(hw × C, centred over positions) give a kernel matrix K over positions, which is centred in
feature space; the map is the first kernel principal component,

    K_c = H K H  (H = I - 1/hw);   K_c v = λ v  (largest λ);   M = ReLU( reshape(√λ · v, h × w) )

Kernels as in scikit-learn: ``sigmoid`` tanh(γ xᵀy + c0) (the default), ``rbf``
exp(-γ |x - y|²), ``poly`` (γ xᵀy + c0)^d, ``linear`` xᵀy (= Eigen-CAM up to the sign),
``cosine``; γ defaults to 1/C. The sign of v is fixed as scikit-learn's KernelPCA does (its
largest-magnitude entry positive), so the maps equal pytorch-grad-cam's. Class-agnostic.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from camkit.core.errors import OptionError
from camkit.methods.base import CAMMethod, LayerSpec
from camkit.methods.registry import register

KERNELS = ("sigmoid", "rbf", "poly", "linear", "cosine")


def kernel_matrix(
    x: torch.Tensor, kernel: str, gamma: float, degree: int = 3, coef0: float = 1.0
) -> torch.Tensor:
    """(N, P, C) points -> (N, P, P) kernel matrices."""
    if kernel == "cosine":
        x = F.normalize(x, dim=2)
    dot = x @ x.transpose(1, 2)
    if kernel == "sigmoid":
        return torch.tanh(gamma * dot + coef0)
    if kernel == "poly":
        return (gamma * dot + coef0) ** degree
    if kernel == "rbf":
        sq = (x * x).sum(2)
        return torch.exp(-gamma * (sq[:, :, None] + sq[:, None, :] - 2 * dot).clamp_min(0))
    return dot


def kernel_first_component(
    a: torch.Tensor, kernel: str = "sigmoid", gamma: float | None = None
) -> torch.Tensor:
    """(N, C, *grid) activations -> (N, *grid): the first kernel principal component's scores."""
    n, c = a.shape[:2]
    x = a.flatten(2).transpose(1, 2).double()  # (N, P, C)
    x = x - x.mean(1, keepdim=True)
    k = kernel_matrix(x, kernel, 1.0 / c if gamma is None else gamma)
    k = k - k.mean(1, keepdim=True) - k.mean(2, keepdim=True) + k.mean((1, 2), keepdim=True)
    evals, evecs = torch.linalg.eigh(k)
    v, lam = evecs[..., -1], evals[..., -1].clamp_min(0)
    sign = torch.sign(v.gather(1, v.abs().argmax(1, keepdim=True)))
    return (v * sign * lam.sqrt()[:, None]).view(n, *a.shape[2:]).to(a.dtype)


@register("kpca-cam")
class KPCACAM(CAMMethod):
    reference = "Karmani et al., KPCA-CAM, arXiv 2410.00267"
    extra_options = ("kernel", "gamma")

    def __init__(
        self,
        model: nn.Module,
        target_layers: LayerSpec = None,
        kernel: str = "sigmoid",
        gamma: float | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(model, target_layers, **kw)
        if kernel not in KERNELS:
            raise OptionError("kernel", f"use one of {', '.join(KERNELS)}", kernel)
        self.kernel, self.gamma = kernel, gamma

    def compute(
        self,
        x: torch.Tensor,
        acts: list[torch.Tensor],
        logits: torch.Tensor,
        sample: torch.Tensor,
        target: torch.Tensor,
        create_graph: bool,
    ) -> list[torch.Tensor]:
        """ReLU of the first kernel principal component of A[sample]: one (N, h_l, w_l) map per
        target layer (class-agnostic)."""
        return [torch.relu(kernel_first_component(a[sample], self.kernel, self.gamma)) for a in acts]
