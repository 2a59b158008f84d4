"""FEM, the Feature Explanation Method (Fuad et al., IPTA 2020): each channel is weighted by the
share of its positions that are k standard deviations above its mean,

    t_k = mean_ij A_k + k · std_ij A_k   (population std);   w_k = mean_ij [A_k(i, j) > t_k];
    M   = ReLU( sum_k w_k A_k )

Class-agnostic (the target only selects the sample). Works on 2-D (C, h, w) and 3-D
(C, d, h, w) activations alike.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from camkit.methods.base import CAMMethod, LayerSpec
from camkit.methods.registry import register


def fem_map(a: torch.Tensor, k: float = 2.0) -> torch.Tensor:
    """(N, C, *grid) activations -> (N, *grid) FEM map before the ReLU."""
    flat = a.flatten(2)
    th = flat.mean(2) + k * flat.std(2, correction=0)
    w = (flat > th[..., None]).to(a.dtype).mean(2)
    return (w.view(*w.shape, *([1] * (a.ndim - 2))) * a).sum(1)


@register("fem")
class FEM(CAMMethod):
    reference = "Fuad et al., Features Understanding in 3D CNNs for Actions Recognition in Video, IPTA 2020"
    extra_options = ("k",)

    def __init__(self, model: nn.Module, target_layers: LayerSpec = None, k: float = 2.0, **kw: Any) -> None:
        super().__init__(model, target_layers, **kw)
        self.k = k

    def compute(
        self,
        x: torch.Tensor,
        acts: list[torch.Tensor],
        logits: torch.Tensor,
        sample: torch.Tensor,
        target: torch.Tensor,
        create_graph: bool,
    ) -> list[torch.Tensor]:
        """ReLU(sum_c w_c A_c), w_c the share of A_c above mean + k·std: one (N, h_l, w_l) map
        per target layer."""
        return [torch.relu(fem_map(a[sample], self.k)) for a in acts]
