"""SS-CAM (Wang et al., SS-CAM: Smoothed Score-CAM for Sharper Visual Feature Localization,
arXiv 2006.14255): Score-CAM whose channel scores are averaged over noisy masks,

    H_k = Up(minmax(A_k));   s_k = (1/S) sum_{i=1..S} y_c(x ⊙ (H_k + δ_i)),  δ_i ~ N(0, σ²);
    M_c = ReLU( sum_k softmax(s)_k A_k )

as torchcam's SSCAM (normalized at feature resolution, then upsampled bilinearly; the noise is
drawn at input resolution, step by step and pair by pair, so a seeded run reproduces
torchcam's noise). ``seed`` fixes a private generator; None draws from torch's global one.
C·S forwards per (sample, target) pair, in batches of ``batch_size``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from camkit.methods.base import LayerSpec, weighted_sum
from camkit.methods.registry import register
from camkit.methods.scorecam import ScoreCAM


@register("ss-cam")
class SSCAM(ScoreCAM):
    reference = "Wang et al., SS-CAM: Smoothed Score-CAM, arXiv 2006.14255"
    needs = "C × num_samples extra forwards"
    extra_options: ClassVar[tuple[str, ...]] = ("num_samples", "std", "seed")

    def __init__(
        self,
        model: nn.Module,
        target_layers: LayerSpec = None,
        num_samples: int = 35,
        std: float = 2.0,
        seed: int | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(model, target_layers, normalize_first=True, **kw)
        self.num_samples, self.std, self.seed = num_samples, std, seed

    def upsampled(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """(C, h, w) activations -> (C, H, W) masks: min-max per channel, then bilinear."""
        mode = "bilinear" if a.ndim == 3 else "trilinear"
        return F.interpolate(self._minmax(a)[None], size=x.shape[1:], mode=mode, align_corners=False)[0]

    def masked_scores(
        self, x: torch.Tensor, masks: torch.Tensor, target: int, coeff: float = 1.0
    ) -> torch.Tensor:
        """(3, H, W) input, (C, H, W) masks -> (C,) target logits of coeff · (masks ⊙ x)."""
        out = torch.empty(masks.shape[0], dtype=x.dtype, device=x.device)
        for i in range(0, masks.shape[0], self.batch_size):
            out[i : i + self.batch_size] = self.forward(
                coeff * (masks[i : i + self.batch_size, None] * x[None])
            )[:, target]
        return out

    @torch.no_grad()
    def weights(
        self, x: torch.Tensor, a: torch.Tensor, sample: torch.Tensor, target: torch.Tensor
    ) -> torch.Tensor:
        """(B, C, h, w) activations -> (N, C) mean scores over the noisy masks."""
        gen = None if self.seed is None else torch.Generator(x.device).manual_seed(self.seed)
        s = a.new_zeros(sample.numel(), a.shape[1])
        for _ in range(self.num_samples):
            for n, (i, c) in enumerate(zip(sample.tolist(), target.tolist(), strict=True)):
                up = self.upsampled(x[i], a[i])
                noise = torch.randn(up.shape, generator=gen, device=up.device, dtype=up.dtype) * self.std
                s[n] += self.masked_scores(x[i], up + noise, c)
        return s / self.num_samples

    def compute(
        self,
        x: torch.Tensor,
        acts: list[torch.Tensor],
        logits: torch.Tensor,
        sample: torch.Tensor,
        target: torch.Tensor,
        create_graph: bool,
    ) -> list[torch.Tensor]:
        """ReLU(sum_c softmax(s)_c A_c), s the mean scores of the noisy masks: one (N, h_l, w_l)
        map per target layer."""
        return [
            torch.relu(weighted_sum(a[sample], torch.softmax(self.weights(x, a.detach(), sample, target), 1)))
            for a in acts
        ]
