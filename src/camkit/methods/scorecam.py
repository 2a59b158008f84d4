"""Score-CAM (Wang et al., CVPR-W 2020): each channel, upsampled and min-max normalized, masks
the input; the class scores of the masked inputs weight the channels,

    H_k = minmax(Up(A_k));   s_k = y_c(x ⊙ H_k);   alpha = softmax_k(s);   M_c = ReLU( sum_k alpha_k A_k )

(Algorithm 1 of the paper; a zero baseline only shifts every s_k, which the softmax ignores).
The masked inputs run in batches of ``batch_size``: C forwards per (sample, target) pair.
Two details vary between implementations and are options here: ``align_corners`` (the
upsampling grid; pytorch-grad-cam uses True) and ``normalize_first`` (min-max normalize the
channel at feature resolution before upsampling, as torchcam does, rather than after).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from camkit.methods.base import CAMMethod, LayerSpec, weighted_sum
from camkit.methods.registry import register

EPS = 1e-8


@register("score-cam")
class ScoreCAM(CAMMethod):
    reference = "Wang et al., Score-CAM, CVPR Workshops 2020"

    def __init__(
        self,
        model: nn.Module,
        target_layers: LayerSpec = None,
        align_corners: bool = False,
        normalize_first: bool = False,
        **kw: Any,
    ) -> None:
        super().__init__(model, target_layers, **kw)
        self.align_corners = align_corners
        self.normalize_first = normalize_first

    @staticmethod
    def _minmax(t: torch.Tensor) -> torch.Tensor:
        flat = t.flatten(1)
        lo, hi = flat.amin(1)[:, None, None], flat.amax(1)[:, None, None]
        return (t - lo) / (hi - lo + EPS)

    @torch.no_grad()
    def channel_scores(self, x: torch.Tensor, a: torch.Tensor, target: int) -> torch.Tensor:
        """(3, H, W) input, (C, h, w) activations -> (C,) target logits of the masked inputs.

        A constant channel (often a dead ReLU) gives an all-zero mask, hence the same masked
        input; those channels share one forward instead of one each.
        """
        if self.normalize_first:
            a = self._minmax(a)
        up = F.interpolate(a[None], size=x.shape[-2:], mode="bilinear", align_corners=self.align_corners)[0]
        masks = up if self.normalize_first else self._minmax(up)
        flat = masks.flatten(1)
        live = torch.nonzero(flat.amax(1) > 0, as_tuple=True)[0]
        scores = torch.empty(masks.shape[0], dtype=x.dtype, device=x.device)
        if live.numel() < masks.shape[0]:
            scores[:] = self.forward(torch.zeros_like(x)[None])[0, target]
        for i in range(0, live.numel(), self.batch_size):
            sel = live[i : i + self.batch_size]
            scores[sel] = self.forward(x[None] * masks[sel, None])[:, target]
        return scores

    def compute(
        self,
        x: torch.Tensor,
        acts: list[torch.Tensor],
        logits: torch.Tensor,
        sample: torch.Tensor,
        target: torch.Tensor,
        create_graph: bool,
    ) -> list[torch.Tensor]:
        """ReLU(sum_c softmax(s)_c A_c), s_c the target's score on the input masked by the
        normalized, upsampled A_c: one (N, h_l, w_l) map per target layer."""
        out = []
        for a in acts:
            s = torch.stack(
                [
                    self.channel_scores(x[i], a[i].detach(), int(c))
                    for i, c in zip(sample.tolist(), target.tolist(), strict=True)
                ]
            )
            out.append(torch.relu(weighted_sum(a[sample], torch.softmax(s, dim=1))))
        return out
