"""Eigen smoothing of the Grad-CAM family (pytorch-grad-cam's ``eigen_smooth``): the channel sum
of the weighted activations is replaced by their first principal component,

    M = ReLU( first_component( w_k · A_k ) )      instead of      ReLU( sum_k w_k A_k )

with w the method's channel weights (Grad-CAM, Grad-CAM++, XGrad-CAM, Finer-CAM, ... any
method with a ``channel_weights``). The component's sign follows Eigen-CAM's rule (positive
correlation with the channel sum, i.e. with the unsmoothed map); pytorch-grad-cam leaves it
to LAPACK.

>>> with eigen_smoothed(GradCAM)(model, "layer4") as m:
...     result = m(images)
"""

from __future__ import annotations

import torch

from camkit.methods.eigencam import first_component
from camkit.methods.gradcam import GradCAM


def eigen_smoothed(cls: type[GradCAM]) -> type[GradCAM]:
    """The eigen-smoothed variant of a Grad-CAM-family class (a subclass of it)."""

    class EigenSmoothed(cls):  # type: ignore[valid-type,misc]
        def compute(
            self,
            x: torch.Tensor,
            acts: list[torch.Tensor],
            logits: torch.Tensor,
            sample: torch.Tensor,
            target: torch.Tensor,
            create_graph: bool,
        ) -> list[torch.Tensor]:
            """ReLU of the first principal component of w ⊙ A: one (N, h_l, w_l) map per layer."""
            grads = self.gradients(acts, logits, sample, target, create_graph)
            out = []
            for a, g in zip(acts, grads, strict=True):
                w = self.channel_weights(a[sample], g).to(a.dtype)
                out.append(torch.relu(first_component(a[sample] * w[:, :, None, None])))
            return out

    EigenSmoothed.__name__ = EigenSmoothed.__qualname__ = f"{cls.__name__}EigenSmooth"
    return EigenSmoothed
