"""ReCAM training (Chen et al., "Class Re-Activation Maps for Weakly-Supervised Semantic
Segmentation", CVPR 2022).

On top of the multi-label classifier FC1 (BCE), each class k present in an image gets its
own feature map, the features masked by that class's normalized CAM:

    f_k = M_k ⊗ f,    M_k = norm(ReLU(w_k^T f))    (norm: relu-max, minmax or sigmoid)

and a second classifier FC2 is trained on GAP(f_k) with softmax cross-entropy against the
single label k:

    L_sce = -1/|y| Σ_{k: y_k = 1} log softmax(FC2(GAP(f_k)))[k],   L = L_bce + λ L_sce

Gradients of both terms flow through the whole network, the masks M_k included.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from camkit.errors import CamkitError
from camkit.models.camnet import CAMNet, CAMNetOutput
from camkit.ops import normalize

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
        raise CamkitError(f"--recam-norm {norm}: unknown; choose one of {', '.join(MASK_NORMS)}")
    cams = torch.einsum("pchw,pc->phw", features[sample], weight[cls].to(features.dtype))
    return normalize(cams, norm)


def masked_features(features: torch.Tensor, masks: torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
    """f_k = M_k ⊗ f for each pair: features (B, C, h, w), masks (P, h, w), sample (P,) -> (P, C, h, w)."""
    return features[sample] * masks[:, None].to(features.dtype)


def recam_loss(model: CAMNet, out: CAMNetOutput, y: torch.Tensor, norm: str = "relu-max") -> torch.Tensor:
    """L_sce of the module docstring for a batch (``out`` = ``model(x)``; y multi-hot or ids)."""
    if model.classifier2 is None:
        raise CamkitError("--mode recam needs a model with FC2; build it with fc2=True")
    sample, cls = positive_pairs(y)
    if sample.numel() == 0:
        return out.logits.sum() * 0.0
    m = class_masks(out.features, model.classifier.weight, sample, cls, norm)
    z2 = model.classifier2(model.head(masked_features(out.features, m, sample)))  # (P, K)
    per_pair = F.cross_entropy(z2, cls, reduction="none")
    per_image = torch.bincount(sample, minlength=y.shape[0]).clamp_min(1).to(per_pair.dtype)
    return (per_pair / per_image[sample]).sum() / y.shape[0]
