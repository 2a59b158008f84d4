"""The automatic target layer (``target_layers="auto"``, the default for models other than
camkit's CAMNet).

The rule: run one forward and one backward of the score on the first input, with every module
hooked, and pick the **last module to finish whose output has a spatial grid of at least
7 × 7 (in the layout, see :mod:`camkit.methods.layouts`) and a non-zero gradient of the score
on that grid**. Linear, identity, dropout and normalization-free pass-through modules are
skipped, as are attention blocks and output heads (modules named ``classifier``, ``head``,
``heads``, ``roi_heads``, ``rpn``, ``fc``) with everything inside them: their outputs are
scores or attention internals, not feature maps. When several modules return the same tensor (a block and its container), the outermost
is kept, so a ResNet gives ``layer4``, a ViT with a class-token head ``blocks.11.norm1`` (the
last block's output reaches the head only through the class token), a Swin ``norm``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from camkit.core.errors import OptionError
from camkit.methods.layouts import LayoutSpec, prefix_tokens_of, resolve_layout

log = logging.getLogger(__name__)

MIN_GRID = 7
SKIP_TYPES: tuple[type[nn.Module], ...] = (
    nn.Linear,
    nn.Identity,
    nn.Dropout,
    nn.Dropout2d,
    nn.Flatten,
    nn.MultiheadAttention,
)


#: output heads (scores, not features): skipped with everything inside them
HEAD_NAMES = ("classifier", "aux_classifier", "head", "heads", "roi_heads", "rpn", "fc")


def _is_attention(name: str, module: nn.Module) -> bool:
    last = name.rsplit(".", 1)[-1].lower()
    return "attention" in type(module).__name__.lower() or last in ("attn", "attention", "self_attn")


def _is_head(name: str) -> bool:
    return name.rsplit(".", 1)[-1] in HEAD_NAMES


def is_auto(layers: object) -> bool:
    """Whether a target-layer spec asks for the automatic layer: None, "auto" or ["auto"]."""
    return (
        layers is None
        or (isinstance(layers, str) and layers == "auto")
        or (isinstance(layers, (list, tuple)) and len(layers) == 1 and layers[0] == "auto")
    )


def candidate_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules the rule may choose: not the model itself, not skipped types, not attention
    blocks or their insides."""
    out: list[tuple[str, nn.Module]] = []
    inside: list[str] = []
    for name, m in model.named_modules():
        if not name:
            continue
        if any(name.startswith(p + ".") for p in inside):
            continue
        if _is_attention(name, m) or _is_head(name):
            inside.append(name)
            continue
        if isinstance(m, SKIP_TYPES) or "droppath" in type(m).__name__.lower():
            continue
        out.append((name, m))
    return out


def choose_layer(
    model: nn.Module,
    x: torch.Tensor,
    score: Callable[[Any], torch.Tensor],
    layout: LayoutSpec = "auto",
    min_grid: int = MIN_GRID,
) -> tuple[str, nn.Module]:
    """(name, module) of the automatic target layer for inputs like ``x`` (1, 3, H, W).

    ``score(output)`` turns the model output into the scalar whose gradient is checked.
    """
    cands = candidate_modules(model)
    outs: dict[int, tuple[int, torch.Tensor]] = {}  # candidate index -> (finish order, output)
    order = [0]

    def hook(i: int) -> Callable[..., None]:
        def fn(_m: nn.Module, _inp: Any, out: Any) -> None:
            t = out[0] if isinstance(out, (tuple, list)) and out else out
            if isinstance(t, torch.Tensor) and t.requires_grad and t.ndim in (3, 4):
                outs[i] = (order[0], t)
                order[0] += 1

        return fn

    handles = [m.register_forward_hook(hook(i)) for i, (_, m) in enumerate(cands)]
    try:
        with torch.enable_grad():
            s = score(model(x.detach().requires_grad_(True)))
    finally:
        for h in handles:
            h.remove()
    size = (int(x.shape[-2]), int(x.shape[-1]))
    hint = prefix_tokens_of(model)
    ranked = sorted(outs.items(), key=lambda kv: kv[1][0])
    grids = []
    for i, (_, t) in ranked:
        lay = resolve_layout(layout, t.shape, size, hint, strict=False)
        if lay is None:
            continue
        try:
            gh, gw = lay.to_nchw(t.detach()).shape[-2:]
        except (RuntimeError, ValueError, IndexError):  # a callable layout that fits other layers only
            continue
        if gh >= min_grid and gw >= min_grid:
            grids.append((i, t, lay))
    if grids:
        grads = torch.autograd.grad(s, [t for _, t, _ in grids], allow_unused=True)
        for (i, t, lay), g in reversed(list(zip(grids, grads, strict=True))):
            if g is None or not bool(lay.to_nchw(g).ne(0).any()):
                continue
            name, module = cands[i]  # the last to finish: of modules sharing t, the outermost
            log.info(
                "target layer (auto): %s, %s, grid %dx%d", name, lay.describe(), *lay.to_nchw(t).shape[-2:]
            )
            return name, module
    raise OptionError(
        "layers",
        f"no layer has a spatial grid of at least {min_grid}x{min_grid} that the output depends on "
        "(for this input size); name one",
        "auto",
    )
