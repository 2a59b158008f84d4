"""LayerCAM (Jiang et al., IEEE TIP 2021): positive gradients weight each position,

    M_c^l(i, j) = ReLU( sum_k ReLU(d y_c / d A_k^l(i, j)) · A_k^l(i, j) )

on one layer or several. Several layers are fused as sum_l beta_l · N(M^l) upsampled to the
input, with user weights beta (e.g. 0.4/0.4/0.2 over VGG16's blocks 3-5, as in the Flower-17
study) and N either min-max (default) or the paper's tanh(2 M / max M).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from camkit.core.errors import OptionError
from camkit.core.ops import minmax, tanh_max, tensor_sum, upsample
from camkit.methods.base import CAMMethod, LayerSpec
from camkit.methods.registry import register


@register("layercam")
class LayerCAM(CAMMethod):
    reference = "Jiang et al., LayerCAM, IEEE TIP 2021"
    uses_gradients = True

    def __init__(
        self,
        model: nn.Module,
        target_layers: LayerSpec = None,
        layer_weights: Sequence[float] | None = None,
        layer_norm: str = "minmax",
        **kw: Any,
    ) -> None:
        super().__init__(model, target_layers, layer_weights, **kw)
        if layer_norm not in ("minmax", "tanh"):
            raise OptionError("layer_norm", "use minmax or tanh", layer_norm)
        self.layer_norm = layer_norm

    def compute(
        self,
        x: torch.Tensor,
        acts: list[torch.Tensor],
        logits: torch.Tensor,
        sample: torch.Tensor,
        target: torch.Tensor,
        create_graph: bool,
    ) -> list[torch.Tensor]:
        """ReLU(sum_c ReLU(dy/dA_c) ⊙ A_c): one (N, h_l, w_l) map per target layer."""
        grads = self.gradients(acts, logits, sample, target, create_graph)
        return [torch.relu((torch.relu(g) * a[sample]).sum(1)) for a, g in zip(acts, grads, strict=True)]

    def fuse(self, low: list[torch.Tensor], size: tuple[int, ...]) -> torch.Tensor:
        if len(low) == 1:
            return upsample(low[0], size)
        norm = minmax if self.layer_norm == "minmax" else tanh_max
        return tensor_sum(w * upsample(norm(m), size) for w, m in zip(self.layer_weights, low, strict=True))
