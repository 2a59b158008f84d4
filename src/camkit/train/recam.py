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

from camkit.core.errors import OptionError
from camkit.methods.recam import class_masks, masked_features, positive_pairs
from camkit.models.camnet import CAMNet, CAMNetOutput


def recam_loss(model: CAMNet, out: CAMNetOutput, y: torch.Tensor, norm: str = "relu-max") -> torch.Tensor:
    """L_sce of the module docstring for a batch (``out`` = ``model(x)``; y multi-hot or ids)."""
    if model.classifier2 is None:
        raise OptionError("mode", "needs a model with FC2; build it with fc2=True", "recam")
    sample, cls = positive_pairs(y)
    if sample.numel() == 0:
        return out.logits.sum() * 0.0
    m = class_masks(out.features, model.classifier.weight, sample, cls, norm)
    z2 = model.classifier2(model.head(masked_features(out.features, m, sample)))  # (P, K)
    per_pair = F.cross_entropy(z2, cls, reduction="none")
    per_image = torch.bincount(sample, minlength=y.shape[0]).clamp_min(1).to(per_pair.dtype)
    return (per_pair / per_image[sample]).sum() / y.shape[0]
