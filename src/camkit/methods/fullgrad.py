"""FullGrad (Srinivas & Fleuret, NeurIPS 2019): input-gradient plus bias-gradient maps of every
layer that has a (per-channel) bias,

    M = sum_c ψ(|x ⊙ ∇_x y|_c) + sum_{layers l} sum_c ψ(|b_l,c · ∇_{z_l} y|_c)

with z_l the layer's output, b_l its bias (a BatchNorm's effective bias
β - μ·γ/√(σ² + ε), so the model must be in eval mode) and ψ a per-channel min-max scaling
(eps 1e-7, as pytorch-grad-cam and the authors' code) followed by bilinear upsampling to the
input. By default the target layers are every Conv2d/Conv3d/BatchNorm2d/BatchNorm3d with a
bias, as in pytorch-grad-cam; ``result.low`` holds the one fused map at input resolution.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from camkit.core.errors import OptionError
from camkit.methods.base import CAMMethod, LayerSpec
from camkit.methods.registry import register

BIAS_LAYERS = (nn.Conv2d, nn.Conv3d, nn.BatchNorm2d, nn.BatchNorm3d)


def bias_layers(model: nn.Module) -> list[str]:
    """Names of the conv and batch-norm layers of ``model`` that carry a bias."""
    return [n for n, m in model.named_modules() if type(m) in BIAS_LAYERS and m.bias is not None]


def effective_bias(m: nn.Module) -> torch.Tensor:
    """(C,) bias of a conv, or a BatchNorm's in eval mode."""
    if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
        assert m.running_var is not None
        return (m.bias - m.running_mean * m.weight / torch.sqrt(m.running_var + m.eps)).detach()
    if not isinstance(m.bias, torch.Tensor):
        raise OptionError("layers", "FullGrad needs layers with a bias (convolutions or batch norms)")
    return m.bias.detach()


def scale_channels(t: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """(N, C, *grid) -> (N, *size): per-channel min-max (eps 1e-7), summed, upsampled."""
    flat = t.flatten(2)
    flat = flat - flat.amin(2, keepdim=True)
    s = (flat / (flat.amax(2, keepdim=True) + 1e-7)).sum(1).view(t.shape[0], 1, *t.shape[2:])
    if tuple(s.shape[2:]) != tuple(size):
        mode = "bilinear" if s.ndim == 4 else "trilinear"
        s = F.interpolate(s, size=size, mode=mode, align_corners=False)
    return s[:, 0]


@register("fullgrad")
class FullGrad(CAMMethod):
    reference = (
        "Srinivas & Fleuret, Full-Gradient Representation for Neural Network Visualization, NeurIPS 2019"
    )
    uses_gradients = True
    needs = "one backward (every bias layer)"

    def __init__(self, model: nn.Module, target_layers: LayerSpec = None, **kw: Any) -> None:
        if "layout" in inspect.signature(CAMMethod.__init__).parameters:
            kw.setdefault("layout", "nchw")  # read the outputs as they are (a base with layouts)
        super().__init__(model, bias_layers(model) if target_layers is None else target_layers, **kw)
        self._x: torch.Tensor | None = None
        self._pre: dict[int, torch.Tensor] = {}

    def _keep(self, i: int, t: torch.Tensor) -> torch.Tensor:
        # a ReLU(inplace=True) after a batch norm would overwrite its output: keep the original
        # for the gradients and pass a copy on
        self._pre[i] = t
        return t.clone()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._x, self._pre, self._edit = x, {}, self._keep
        try:
            return super().forward(x)
        finally:
            self._edit = None

    def compute(
        self,
        x: torch.Tensor,
        acts: list[torch.Tensor],
        logits: torch.Tensor,
        sample: torch.Tensor,
        target: torch.Tensor,
        create_graph: bool,
    ) -> list[torch.Tensor]:
        """The fused FullGrad map, [(N, *input grid)]: one map at input resolution."""
        x_in, pre = self._x, [self._pre[i] for i in range(len(self.layers))]
        self._x, self._pre = None, {}
        assert x_in is not None
        *grads, gx = self.gradients([*pre, x_in], logits, sample, target, create_graph)
        size = tuple(x.shape[2:])
        total = scale_channels((x_in[sample] * gx).abs(), size)
        for (_, m), g in zip(self.layers, grads, strict=True):
            b = effective_bias(m).to(g.dtype)
            total = total + scale_channels((b.view(1, -1, *([1] * (g.ndim - 2))) * g).abs(), size)
        return [total]
