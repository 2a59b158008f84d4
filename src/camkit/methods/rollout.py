"""Attention rollout (Abnar & Zuidema, Quantifying Attention Flow in Transformers, ACL 2020)
for vision transformers: the attention of every block, heads fused and mixed with the residual,

    Â_l = rownorm( ½ fuse_heads(A_l) + ½ I );   R = Â_L · … · Â_1;   M = R[cls, patches] on the grid

with ``head_fusion`` mean (the paper), max or min and, after jacobgil's vit-explain,
``discard_ratio``: that share of each fused map's entries, the lowest outside the class
token's column, is set to 0 before the residual. Class-agnostic (the target only selects the sample).

The target layers are by default the ``attn_drop`` of every timm ``Attention`` (the softmax
output passes through it). While the method is active, those modules' ``fused_attn`` flag is
set to False, so the softmax is computed explicitly and can be read; it is restored on exit.
The first ``prefix_tokens`` tokens (default: the model's ``num_prefix_tokens``, else 1) are the
class, distillation and register tokens; the rest must form a square grid.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import torch
from torch import nn

from camkit.core.errors import OptionError
from camkit.methods.base import CAMMethod, LayerSpec
from camkit.methods.registry import register


def attention_layers(model: nn.Module) -> list[str]:
    """Names of the ``attn_drop`` modules of the model's timm-style attention blocks."""
    return [
        f"{n}.attn_drop" if n else "attn_drop"
        for n, m in model.named_modules()
        if hasattr(m, "fused_attn") and isinstance(getattr(m, "attn_drop", None), nn.Module)
    ]


def rollout(attn: list[torch.Tensor], head_fusion: str = "mean", discard_ratio: float = 0.0) -> torch.Tensor:
    """Per-block (B, heads, T, T) attention -> the (B, T, T) rollout R = Â_L · … · Â_1."""
    out: torch.Tensor | None = None
    for a in attn:
        f = a.mean(1) if head_fusion == "mean" else a.amax(1) if head_fusion == "max" else a.amin(1)
        if discard_ratio > 0:
            b, t, _ = f.shape
            k = min(int(t * t * discard_ratio), t * t - t)
            cand = f.clone()
            cand[..., 0] = torch.inf  # the class token's column is never discarded
            low = cand.reshape(b, -1).topk(k, dim=1, largest=False).indices
            f = f.reshape(b, -1).scatter(1, low, 0.0).view(b, t, t)
        eye = torch.eye(f.shape[-1], dtype=f.dtype, device=f.device)
        m = (f + eye) / 2
        m = m / m.sum(-1, keepdim=True)
        out = m if out is None else m @ out
    if out is None:
        raise OptionError("layers", "attention rollout needs at least one attention layer")
    return out


@register("attention-rollout")
class AttentionRollout(CAMMethod):
    reference = "Abnar & Zuidema, Quantifying Attention Flow in Transformers, ACL 2020"
    needs = "a timm-style ViT (attention probabilities)"
    extra_options = ("head_fusion", "discard_ratio", "prefix_tokens")

    def __init__(
        self,
        model: nn.Module,
        target_layers: LayerSpec = None,
        head_fusion: str = "mean",
        discard_ratio: float = 0.0,
        prefix_tokens: int | None = None,
        **kw: Any,
    ) -> None:
        layers = attention_layers(model) if target_layers is None else target_layers
        if not layers:
            raise OptionError("layers", "no attention block found; attention rollout needs a timm-style ViT")
        if "layout" in inspect.signature(CAMMethod.__init__).parameters:
            kw.setdefault("layout", "nchw")  # read the outputs as they are (a base with layouts)
        super().__init__(model, layers, **kw)
        if head_fusion not in ("mean", "max", "min"):
            raise OptionError("head_fusion", "use mean, max or min", head_fusion)
        if not 0 <= discard_ratio < 1:
            raise OptionError("discard_ratio", "must be in [0, 1)", discard_ratio)
        self.head_fusion, self.discard_ratio = head_fusion, discard_ratio
        self.prefix = int(getattr(model, "num_prefix_tokens", 1)) if prefix_tokens is None else prefix_tokens
        named = dict(model.named_modules())
        parents = [named[n.rsplit(".", 1)[0]] if "." in n else model for n, _ in self.layers]
        self._attn = [m for m in parents if hasattr(m, "fused_attn")]
        self._fused: list[bool] = []

    def __enter__(self) -> AttentionRollout:
        if not self._handles:
            self._fused = [bool(m.fused_attn) for m in self._attn]
            for m in self._attn:
                m.fused_attn = False  # the softmax must run as a separate op to be read
        super().__enter__()
        return self

    def remove_hooks(self) -> None:
        for m, f in zip(self._attn, self._fused, strict=False):
            m.fused_attn = f
        self._fused = []
        super().remove_hooks()

    def compute(
        self,
        x: torch.Tensor,
        acts: list[torch.Tensor],
        logits: torch.Tensor,
        sample: torch.Tensor,
        target: torch.Tensor,
        create_graph: bool,
    ) -> list[torch.Tensor]:
        """The class token's row of the rollout over the patch tokens: [(N, gh, gw)]."""
        if any(a.ndim != 4 or a.shape[-1] != a.shape[-2] for a in acts):
            raise OptionError("layers", "expected attention probabilities (B, heads, T, T) from each layer")
        r = rollout([a[sample] for a in acts], self.head_fusion, self.discard_ratio)
        n_patch = r.shape[-1] - self.prefix
        side = math.isqrt(max(n_patch, 0))
        if side * side != n_patch:
            raise OptionError(
                "prefix_tokens",
                f"{r.shape[-1]} tokens minus {self.prefix} prefix tokens is not a square grid",
                self.prefix,
            )
        return [r[:, 0, self.prefix :].reshape(-1, side, side)]
