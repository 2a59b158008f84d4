"""Class activation mapping from a GAP-linear classifier.

CAM (Zhou et al., "Learning Deep Features for Discriminative Localization", CVPR 2016):

    M_c(x, y) = sum_k w_{c,k} f_k(x, y)

with ``f`` the last feature maps (C×h×w) and ``w_c`` the classifier row of class c; the
bias is left out, as in the paper. Because GAP is linear, ``mean_{x,y} M_c + b_c`` is
exactly the logit of class c.

The lab's variant (ENGN8536 Lab 4, after SSENet) first takes a softmax of the class
weights over the channels:

    M_c(x, y) = sum_k softmax(w_c)_k f_k(x, y)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from camkit.core.errors import OptionError
from camkit.methods.base import CAMMethod, LayerSpec, find_classifier, weighted_sum
from camkit.methods.registry import register


def class_activation_map(
    features: torch.Tensor, weight: torch.Tensor, classes: torch.Tensor, softmax_weights: bool = False
) -> torch.Tensor:
    """CAMs for one class per sample.

    features: (B, C, h, w); weight: (K, C) classifier weights; classes: (B,) int64.
    Returns (B, h, w), differentiable in both ``features`` and ``weight``.
    """
    w = weight[classes]  # (B, C)
    if softmax_weights:
        w = torch.softmax(w, dim=1)
    return torch.einsum("bchw,bc->bhw", features, w.to(features.dtype))


def all_class_maps(
    features: torch.Tensor, weight: torch.Tensor, softmax_weights: bool = False
) -> torch.Tensor:
    """CAMs of every class: (B, C, h, w), (K, C) -> (B, K, h, w)."""
    w = torch.softmax(weight, dim=1) if softmax_weights else weight
    return torch.einsum("bchw,kc->bkhw", features, w.to(features.dtype))


@register("cam")
class CAM(CAMMethod):
    """CAM (Zhou et al., CVPR 2016): M_c = sum_k w_{c,k} A_k, with w the linear classifier
    after global average pooling of the target layer (bias left out).

    Needs a GAP-linear head on the target layer: ``classifier`` names it; by default CAMNet's
    ``classifier``, else the last ``nn.Linear`` whose input size equals the layer's channels.
    """

    reference = "Zhou et al., Learning Deep Features for Discriminative Localization, CVPR 2016"

    def __init__(
        self,
        model: nn.Module,
        target_layers: LayerSpec = None,
        classifier: str | nn.Module | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(model, target_layers, **kw)
        if len(self.layers) > 1:  # none yet: chosen automatically on the first call
            raise OptionError("method", f"takes one target layer, got {len(self.layers)}", self.name)
        self.classifier = classifier
        self._fc: nn.Linear | None = None  # found on the first call, then reused

    def class_weights(self, weight: torch.Tensor) -> torch.Tensor:
        """(K, C) classifier weights -> the (K, C) weights used for the maps."""
        return weight

    def compute(
        self,
        x: torch.Tensor,
        acts: list[torch.Tensor],
        logits: torch.Tensor,
        sample: torch.Tensor,
        target: torch.Tensor,
        create_graph: bool,
    ) -> list[torch.Tensor]:
        """M = sum_c w[target, c] · A[sample, c] with w the classifier's (class_weights) rows:
        one (N, h, w) map for the single target layer."""
        if self._fc is None or self._fc.in_features != acts[0].shape[1]:
            self._fc = find_classifier(self.model, acts[0].shape[1], self.classifier)
        w = self.class_weights(self._fc.weight)[target]
        return [weighted_sum(acts[0][sample], w)]
