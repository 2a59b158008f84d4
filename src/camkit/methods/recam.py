"""ReCAM: class re-activation maps (Chen et al., "Class Re-Activation Maps for
Weakly-Supervised Semantic Segmentation", CVPR 2022).

A model trained with ``--mode recam`` has two classifiers on the same features: FC1 (weights
w, trained with BCE) and FC2 (weights w', trained with softmax cross-entropy on the
CAM-masked features, see :mod:`camkit.train.recam`). The map of class k is a CAM with the
weights w'' chosen by ``weights``:

    A_k = w''_k^T f,   w'' = w  |  w'  |  w + w'  |  w ⊙ w'   ("w", "w2", "sum", "prod")

(the paper normalizes ReLU(A_k) / max; camkit keeps the raw A_k and normalizes when scoring).
The authors found w ⊙ w' best on VOC and w best on COCO.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from camkit.core.errors import CamkitError, OptionError
from camkit.core.ops import normalize
from camkit.methods.base import LayerSpec
from camkit.methods.cam import CAM
from camkit.methods.registry import register

RECAM_WEIGHTS = ("w", "w2", "sum", "prod")


@register("recam")
class ReCAM(CAM):
    needs = "GAP-linear head + FC2 (`--mode recam`)"
    extra_options = ("recam_weights",)
    reference = "Chen et al., Class Re-Activation Maps for Weakly-Supervised Semantic Segmentation, CVPR 2022"

    def __init__(
        self,
        model: nn.Module,
        target_layers: LayerSpec = None,
        recam_weights: str = "prod",
        classifier2: str | nn.Module = "classifier2",
        **kw: Any,
    ) -> None:
        super().__init__(model, target_layers, **kw)
        if recam_weights not in RECAM_WEIGHTS:
            raise OptionError("recam_weights", f"choose one of {', '.join(RECAM_WEIGHTS)}", recam_weights)
        fc2 = (
            classifier2
            if isinstance(classifier2, nn.Module)
            else dict(model.named_modules()).get(classifier2)
        )
        if not isinstance(fc2, nn.Linear):
            raise OptionError(
                "method",
                "the model has no FC2 (classifier2); train it with {mode}",
                "recam",
                refs={"mode": "recam"},
            )
        self.fc2 = fc2
        self.recam_weights = recam_weights

    def class_weights(self, weight: torch.Tensor) -> torch.Tensor:
        w2 = self.fc2.weight
        if w2.shape != weight.shape:
            raise CamkitError(f"FC1 is {tuple(weight.shape)} but FC2 is {tuple(w2.shape)}; they must match")
        if self.recam_weights == "w":
            return weight
        if self.recam_weights == "w2":
            return w2
        return weight + w2 if self.recam_weights == "sum" else weight * w2


MASK_NORMS = ("relu-max", "minmax", "sigmoid")


def positive_pairs(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(sample, class) of every positive label: y (B, K) multi-hot or (B,) class ids (-1,
    unknown, is skipped) -> two (P,)."""
    if y.ndim == 2:
        s, c = torch.nonzero(y > 0.5, as_tuple=True)
        return s, c
    keep = torch.nonzero(y >= 0, as_tuple=True)[0]
    return keep, y[keep].long()


def class_masks(
    features: torch.Tensor,
    weight: torch.Tensor,
    sample: torch.Tensor,
    cls: torch.Tensor,
    norm: str = "relu-max",
) -> torch.Tensor:
    """M_k: the normalized CAM of class ``cls[p]`` on image ``sample[p]``.
    features (B, C, h, w), weight (K, C), sample/cls (P,) -> (P, h, w)."""
    if norm not in MASK_NORMS:
        raise OptionError("recam_norm", f"unknown; choose one of {', '.join(MASK_NORMS)}", norm)
    cams = torch.einsum("pchw,pc->phw", features[sample], weight[cls].to(features.dtype))
    return normalize(cams, norm)


def masked_features(features: torch.Tensor, masks: torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
    """f_k = M_k ⊗ f for each pair: features (B, C, h, w), masks (P, h, w), sample (P,) -> (P, C, h, w)."""
    return features[sample] * masks[:, None].to(features.dtype)
