"""SmoothGrad-CAM++ (Omeiza et al., arXiv 1908.01224): Grad-CAM++ with the derivatives averaged
over S noisy copies of the input, x + δ_i, δ_i ~ N(0, σ²) (g = d y_c / d A):

    D_p  = (1/S) sum_i g(x + δ_i)^p   (p = 1, 2, 3);
    a_k  = D_2 / (2 D_2 + sum_ab A_k(a, b) · D_3(a, b) + 1e-8);
    w_k  = sum_ij a_k(i, j) · ReLU(D_1(i, j));   M_c = ReLU( sum_k w_k A_k )

with A the activations of the clean input. The denominator and eps are torchcam's
(SmoothGradCAMpp); torchcam takes ReLU of the *last* noisy gradient instead of D_1 and sums
the *last* noisy activations, ``grad="last"`` reproduces its weights. The noise is drawn for
the whole (B, 3, H, W) batch at each step, as torchcam does; ``seed`` fixes a private
generator (None: torch's global one). S forwards and S backward passes per batch.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from camkit.core.errors import OptionError
from camkit.methods.base import CAMMethod, LayerSpec, weighted_sum
from camkit.methods.registry import register


@register("smoothgrad-cam++")
class SmoothGradCAMPlusPlus(CAMMethod):
    reference = "Omeiza et al., Smooth Grad-CAM++, arXiv 1908.01224"
    uses_gradients = True
    needs = "num_samples forwards and backwards"
    extra_options = ("num_samples", "std", "seed", "grad")

    def __init__(
        self,
        model: nn.Module,
        target_layers: LayerSpec = None,
        num_samples: int = 4,
        std: float = 0.3,
        seed: int | None = None,
        grad: str = "mean",
        **kw: Any,
    ) -> None:
        super().__init__(model, target_layers, **kw)
        if grad not in ("mean", "last"):
            raise OptionError("grad", "use mean (the paper) or last (torchcam)", grad)
        self.num_samples, self.std, self.seed, self.grad = num_samples, std, seed, grad

    def noisy_gradients(
        self, x: torch.Tensor, noise: torch.Tensor, sample: torch.Tensor, target: torch.Tensor
    ) -> list[torch.Tensor]:
        """d y / d A at x + noise: one (N, C, h, w) per target layer."""
        self._capture = True
        try:
            with torch.enable_grad():
                logits = self.forward((x.detach() + noise).requires_grad_(True))
                acts = [self._acts[i] for i in range(len(self.layers))]
                return self.gradients(acts, logits, sample, target, create_graph=False)
        finally:
            self._capture, self._acts = False, {}

    def compute(
        self,
        x: torch.Tensor,
        acts: list[torch.Tensor],
        logits: torch.Tensor,
        sample: torch.Tensor,
        target: torch.Tensor,
        create_graph: bool,
    ) -> list[torch.Tensor]:
        """ReLU(sum_c w_c A_c) with the smoothed Grad-CAM++ weights: one (N, h_l, w_l) map per layer."""
        gen = None if self.seed is None else torch.Generator(x.device).manual_seed(self.seed)
        d = [[a.new_zeros(sample.numel(), *a.shape[1:]) for a in acts] for _ in range(3)]
        g: list[torch.Tensor] = []
        for _ in range(self.num_samples):
            noise = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype) * self.std
            g = self.noisy_gradients(x, noise, sample, target)
            for p in range(3):
                d[p] = [dp + gl ** (p + 1) for dp, gl in zip(d[p], g, strict=True)]
        d1, d2, d3 = ([t / self.num_samples for t in dp] for dp in d)
        out = []
        for li, a in enumerate(acts):
            a_s = a[sample].detach()
            den = 2 * d2[li] + (a_s * d3[li]).flatten(2).sum(2).view(*a_s.shape[:2], *([1] * (a.ndim - 2)))
            alpha = d2[li] / (den + 1e-8)
            relu_g = torch.relu(d1[li] if self.grad == "mean" else g[li])
            out.append(torch.relu(weighted_sum(a[sample], (alpha * relu_g).flatten(2).sum(2))))
        return out
