"""IS-CAM (Naidu et al., IS-CAM: Integrated Score-CAM for axiomatic-based explanations,
arXiv 2010.03023): Score-CAM whose channel scores integrate the mask from 0 to the input,

    H_k = Up(minmax(A_k));   s_k = (1/S) sum_{i=1..S} y_c(κ_i · x ⊙ H_k),   κ_i = sum_{j=1..i} j / S;
    M_c = ReLU( sum_k softmax(s)_k A_k )

as torchcam's ISCAM (its κ_i accumulates, so the later steps scale the input above 1).
C·S forwards per (sample, target) pair, in batches of ``batch_size``; deterministic.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from camkit.methods.base import LayerSpec
from camkit.methods.registry import register
from camkit.methods.sscam import SSCAM


@register("is-cam")
class ISCAM(SSCAM):
    reference = "Naidu et al., IS-CAM: Integrated Score-CAM, arXiv 2010.03023"
    extra_options = ("num_samples",)

    def __init__(
        self, model: nn.Module, target_layers: LayerSpec = None, num_samples: int = 10, **kw: Any
    ) -> None:
        super().__init__(model, target_layers, num_samples=num_samples, **kw)

    @torch.no_grad()
    def weights(
        self, x: torch.Tensor, a: torch.Tensor, sample: torch.Tensor, target: torch.Tensor
    ) -> torch.Tensor:
        """(B, C, h, w) activations -> (N, C) mean scores over the integration steps."""
        s = a.new_zeros(sample.numel(), a.shape[1])
        for n, (i, c) in enumerate(zip(sample.tolist(), target.tolist(), strict=True)):
            up, coeff = self.upsampled(x[i], a[i]), 0.0
            for step in range(self.num_samples):
                coeff += (step + 1) / self.num_samples
                s[n] += self.masked_scores(x[i], up, c, coeff)
        return s / self.num_samples
