"""Faithfulness of saliency maps for models without ground-truth masks.

* Deletion and insertion (Petsiuk et al., RISE, BMVC 2018): pixels are removed from the image
  (deletion: replaced by the substrate, zeros by default) or revealed on a blurred copy
  (insertion), most salient first, in ``steps`` equal chunks; the target's softmax probability
  after each step traces a curve over the removed/inserted fraction 0..1, and the score is the
  area under it (trapezoid rule). Lower is better for deletion, higher for insertion.
* Average Drop and Increase in Confidence (Chattopadhay et al., Grad-CAM++, WACV 2018), with
  Y the target's probability on the image and O on the image times its [0, 1] map:
  AD = 100 · mean(max(0, Y − O) / Y), IC = 100 · mean(1[O > Y]).

All run batched: the perturbed copies of a batch go through the model ``batch_size`` at a time.
The model should be in eval mode; it is not changed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from camkit.core.errors import CamkitError, OptionError
from camkit.core.ops import logits_of
from camkit.core.results import Result


def gaussian_blur(x: torch.Tensor, kernel: int = 11, sigma: float = 5.0) -> torch.Tensor:
    """RISE's insertion substrate: a Gaussian blur of (B, 3, H, W) images."""
    import torchvision.transforms.functional as TF

    return TF.gaussian_blur(x, [kernel, kernel], [sigma, sigma])


@torch.no_grad()
def _probs(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, batch_size: int) -> torch.Tensor:
    out = [logits_of(model(x[i : i + batch_size])).softmax(1) for i in range(0, x.shape[0], batch_size)]
    return torch.cat(out).gather(1, targets[:, None])[:, 0]


@dataclass(frozen=True)
class DeletionInsertion(Result):
    """Deletion or insertion curves: ``curve`` (B, steps+1) target probabilities after each
    step, ``auc`` (B,) their areas in [0, 1]."""

    curve: torch.Tensor
    auc: torch.Tensor


@dataclass(frozen=True)
class DropIncrease(Result):
    """Average Drop (%) and Increase in Confidence (%) over a batch."""

    average_drop: float
    increase_in_confidence: float


@torch.no_grad()
def deletion_insertion(
    model: nn.Module,
    images: torch.Tensor,
    maps: torch.Tensor,
    targets: torch.Tensor,
    mode: str = "deletion",
    steps: int = 50,
    substrate: torch.Tensor | None = None,
    batch_size: int = 64,
) -> DeletionInsertion:
    """Deletion or insertion curves and their AUCs.

    images (B, 3, H, W); maps (B, H, W) at image size (any scale: only the order matters);
    targets (B,). Returns ``curve`` (B, steps+1) probabilities and ``auc`` (B,) in [0, 1].
    """
    if mode not in ("deletion", "insertion"):
        raise OptionError("mode", "use deletion or insertion", mode)
    if maps.shape != (images.shape[0], *images.shape[2:]):
        raise CamkitError(
            f"maps {tuple(maps.shape)} do not match images {tuple(images.shape)}; upsample the maps first"
        )
    if torch.isnan(maps).any():
        raise CamkitError("the maps contain NaN")
    b, _, h, w = images.shape
    n = h * w
    if substrate is None:
        substrate = torch.zeros_like(images) if mode == "deletion" else gaussian_blur(images)
    start, end = (images, substrate) if mode == "deletion" else (substrate, images)
    order = maps.flatten(1).argsort(dim=1, descending=True, stable=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(n, device=maps.device).expand(b, n))
    counts = [round(k * n / steps) for k in range(steps + 1)]
    probs = []
    for c in counts:
        changed = (rank < c).view(b, 1, h, w)  # the c most salient pixels are switched
        x = torch.where(changed, end, start)
        probs.append(_probs(model, x, targets, batch_size))
    curve = torch.stack(probs, dim=1)  # (B, steps+1)
    auc = (curve[:, 1:] + curve[:, :-1]).sum(1) / (2 * steps)
    return DeletionInsertion(curve, auc)


@torch.no_grad()
def average_drop_increase(
    model: nn.Module, images: torch.Tensor, maps: torch.Tensor, targets: torch.Tensor, batch_size: int = 64
) -> DropIncrease:
    """Average Drop (%) and Increase in Confidence (%) for (B, H, W) maps in [0, 1]."""
    if maps.shape != (images.shape[0], *images.shape[2:]):
        raise CamkitError(
            f"maps {tuple(maps.shape)} do not match images {tuple(images.shape)}; upsample the maps first"
        )
    if float(maps.min()) < 0 or float(maps.max()) > 1:
        raise CamkitError("Average Drop needs maps in [0, 1]; normalize them first (e.g. min-max)")
    y = _probs(model, images, targets, batch_size)
    o = _probs(model, images * maps[:, None], targets, batch_size)
    drop = (y - o).clamp(min=0) / y.clamp(min=1e-12)
    return DropIncrease(float(drop.mean() * 100), float((o > y).float().mean() * 100))
