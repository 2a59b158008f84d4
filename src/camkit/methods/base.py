"""The base of every map method: hooks as a context manager, targets, and the shared math.

A method is built on any ``torch.nn.Module`` and one or more target layers named as in
``model.named_modules()`` (or by a unique suffix, ``"layer4"`` for ``"backbone.layer4"``), or
``"auto"`` (the default for models other than camkit's CAMNet; the rule is in
:mod:`camkit.methods.autolayer`). Layers yielding (B, h, w, C) or tokens (B, N, C) are read as
(B, C, h, w) grids (:mod:`camkit.methods.layouts`), and targets may be class ids or callables
that score any output (:mod:`camkit.methods.targets`). Calling it runs the model once with forward hooks on those
layers, resolves the targets, and asks the subclass for one raw map per (sample, target)
pair at each layer's resolution. The base then upsamples (and, for several layers, fuses)
the maps to the input size.

The base never changes the model's train/eval mode or any ``requires_grad`` flag, and its
hooks are removed on exit, also when the body raises. Use it as
``with GradCAM(model, "layer4") as m: result = m(x)``; a bare call ``GradCAM(model, "layer4")(x)``
installs and removes the hooks around that single call.
"""

from __future__ import annotations

import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from camkit.core.errors import CamkitError, OptionError, close_matches
from camkit.core.ops import minmax, spatial_size, tensor_sum, upsample
from camkit.methods.autolayer import choose_layer, is_auto
from camkit.methods.layouts import (
    Layout,
    LayoutSpec,
    layout_of,
    output_tensor,
    prefix_tokens_of,
    repack,
    resolve_layout,
)
from camkit.methods.targets import Target, Targets, expand_targets, find_logits, scorers_of, target_scores

log = logging.getLogger(__name__)
LayerSpec = str | nn.Module | Sequence[str | nn.Module] | None


@dataclass
class CAMResult:
    """Maps for N (sample, target) pairs of a batch of B inputs.

    ``maps``: (N, H, W) at input resolution, on the input's device (one layer: the raw map
    upsampled bilinearly; several layers: the weighted sum of per-layer min-max normalized,
    upsampled maps). ``low``: per target layer, the raw (N, h, w) maps at feature resolution.
    ``sample`` (N,) indexes the input batch, ``target`` (N,) is the class, ``score`` (N,) its
    softmax probability; ``logits`` is (B, K).
    """

    maps: torch.Tensor
    low: list[torch.Tensor]
    sample: torch.Tensor
    target: torch.Tensor
    score: torch.Tensor
    logits: torch.Tensor


def resolve_layers(model: nn.Module, layers: LayerSpec) -> list[tuple[str, nn.Module]]:
    """(name, module) for each target layer; a one-line error listing close names otherwise."""
    named = dict(model.named_modules())
    if is_auto(layers):
        if "backbone" in named and hasattr(model, "forward_features"):
            return [("backbone", named["backbone"])]
        convs = [n for n, m in named.items() if isinstance(m, nn.Conv2d)]
        raise OptionError(
            "layers",
            f"required for this model (or auto); e.g. one of its last blocks: {', '.join(convs[-3:]) or 'none found'}",
        )
    items = [layers] if isinstance(layers, (str, nn.Module)) else list(layers or [])
    if not items:
        raise OptionError("layers", "no target layer given")
    out = []
    by_module = {id(m): n for n, m in named.items()}
    for it in items:
        if isinstance(it, nn.Module):
            if id(it) not in by_module:
                raise OptionError("layers", "the module passed is not part of the model")
            out.append((by_module[id(it)], it))
        elif it in named and it != "":
            out.append((it, named[it]))
        elif f"backbone.{it}" in named and hasattr(model, "forward_features"):  # a CAMNet: layer2
            out.append((f"backbone.{it}", named[f"backbone.{it}"]))  # as train's --layer names it
        elif len(ends := [n for n in named if n.endswith("." + it)]) == 1:
            out.append((ends[0], named[ends[0]]))
        elif ends:
            raise OptionError("layers", f"ambiguous; give one of {', '.join(ends[:5])}", it)
        else:
            raise OptionError(
                "layers",
                f"not a layer of the model; close matches: {close_matches(it, [n for n in named if n])}",
                it,
            )
    return out


class CAMMethod(ABC):
    """Base class of the map methods. Subclasses implement :meth:`compute` (the maps of the
    target pairs at each target layer); the base runs the model, hooks the layers, resolves the
    targets, and upsamples and fuses what ``compute`` returns."""

    name: ClassVar[str] = ""
    #: the paper, for the docs' method table
    reference: ClassVar[str] = ""
    #: needs d(score)/d(activations)
    uses_gradients: ClassVar[bool] = False
    #: what the method needs beyond the model, for the docs' method table (derived when empty)
    needs: ClassVar[str] = ""
    #: constructor options particular to this method (the CLI checks that an option given
    #: belongs to one of the methods asked for; see camkit.methods.registry.option_methods)
    extra_options: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        model: nn.Module,
        target_layers: LayerSpec = None,
        layer_weights: Sequence[float] | None = None,
        batch_size: int = 64,
        layout: LayoutSpec = "auto",
    ) -> None:
        """``target_layers``: names, modules, or None / "auto" (CAMNet: its backbone; other
        models: chosen on the first call, see :mod:`camkit.methods.autolayer`). ``layout``:
        how the layers' outputs map onto a grid (:func:`camkit.methods.layouts.resolve_layout`)."""
        self.model = model
        self.layout = layout
        if not callable(layout):
            resolve_layout(layout, (1, 1, 1), strict=False)  # a malformed spec fails here
        named = dict(model.named_modules())
        self._auto = is_auto(target_layers) and not (
            "backbone" in named and hasattr(model, "forward_features")
        )
        self.layers = [] if self._auto else resolve_layers(model, target_layers)
        if layer_weights is not None and len(layer_weights) != max(1, len(self.layers)):
            raise OptionError("layer_weights", f"{len(layer_weights)} weights for {len(self.layers)} layers")
        self.layer_weights = (
            list(layer_weights)
            if layer_weights is not None
            else [1.0 / max(1, len(self.layers))] * max(1, len(self.layers))
        )
        self.batch_size = batch_size
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._acts: dict[int, torch.Tensor] = {}
        self._edit: Callable[[int, torch.Tensor], torch.Tensor] | None = None
        self._capture = True
        self._scorers: list[Target] | None = None
        self._with = False
        self._size: tuple[int, int] | None = None
        self._layouts: dict[int, Layout] = {}
        self._raw: dict[int, torch.Tensor] = {}  # raw outputs of callable layouts

    # -- hooks -------------------------------------------------------------------------------
    def _hook(self, i: int) -> Callable[..., Any]:
        def fn(_m: nn.Module, _inp: Any, out: Any) -> Any:
            if not self._capture and self._edit is None:
                return None
            t = output_tensor(out, self.layers[i][0])
            lay = self._layouts[i] = layout_of(self.layout, t.shape, self._size, prefix_tokens_of(self.model))
            a = lay.to_nchw(t)
            if lay.kind == "callable" and self._edit is None:
                if self._capture:
                    self._acts[i], self._raw[i] = a, t
                return None
            if self._edit is not None:
                a = self._edit(i, a)
            if self._capture:
                self._acts[i] = a
            if lay.identity and self._edit is None:
                return None
            # the model continues from the grid view: true gradients w.r.t. it
            return repack(out, lay.back(a, t))

        return fn

    def _install(self) -> None:
        if not self._handles:
            self._handles = [m.register_forward_hook(self._hook(i)) for i, (_, m) in enumerate(self.layers)]

    def __enter__(self) -> CAMMethod:
        self._with = True
        self._install()
        return self

    def __exit__(self, *exc: object) -> None:
        self._with = False
        self.remove_hooks()

    def remove_hooks(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
        self._acts = {}

    @contextlib.contextmanager
    def _active(self) -> Iterator[None]:
        owned = not self._handles
        if owned:
            self.__enter__()  # subclasses may extend it (attention rollout unfuses attention)
            self._with = False  # the hooks go again after this call
        try:
            yield
        finally:
            self._acts, self._raw = {}, {}
            self._edit = None
            self._capture = True
            self._scorers = None
            if owned:
                self.remove_hooks()

    # -- the shared math ----------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of ``x`` (B, K) with the target activations captured (no capture of perturbed
        runs); with target callables, their scores (B, T) instead."""
        self._size = spatial_size(x)
        out = self.model(x)
        if self._scorers is not None:
            return target_scores(self._scorers, out, x.shape[0])
        return find_logits(out)

    def gradients(
        self,
        acts: list[torch.Tensor],
        logits: torch.Tensor,
        sample: torch.Tensor,
        target: torch.Tensor,
        create_graph: bool,
    ) -> list[torch.Tensor]:
        """d logit[sample, target] / d activations, per pair: one (N, C, h, w) per layer.

        Samples with several targets need several backward passes (one per rank of target);
        rows of an eval-mode batch are independent, so each pass serves every sample at once.
        """
        n = sample.numel()
        # position of each pair among its sample's targets (pairs of a sample are contiguous)
        pos = torch.arange(n, device=sample.device)
        starts = torch.ones_like(sample, dtype=torch.bool)
        starts[1:] = sample[1:] != sample[:-1]
        rank = pos - torch.cummax(torch.where(starts, pos, torch.zeros_like(pos)), 0).values
        out = [a.new_zeros((n, *a.shape[1:])) for a in acts]
        rounds = int(rank.max()) + 1 if n else 0
        for r in range(rounds):
            sel = torch.nonzero(rank == r, as_tuple=True)[0]
            score = logits[sample[sel], target[sel]].sum()
            # a callable layout's view is off the model's path: differentiate its raw output
            # and read the gradient through the same callable (pytorch-grad-cam's way)
            raw = [
                self._raw[li] if li in self._raw and self._acts.get(li) is a else a
                for li, a in enumerate(acts)
            ]
            grads = torch.autograd.grad(
                score, raw, retain_graph=True, create_graph=create_graph, allow_unused=True
            )
            for li, g in enumerate(grads):
                lay = self._layouts.get(li)
                if g is not None and raw[li] is not acts[li]:
                    g = lay.to_nchw(g)  # type: ignore[union-attr]
                if g is None or (lay is not None and lay.kind == "tokens" and not bool(g.ne(0).any())):
                    raise OptionError(
                        "layers",
                        "the output does not depend on this layer's grid; pick one on the path to the "
                        "logits (for a class-token ViT head: the last block's norm1, or auto)",
                        self.layers[li][0],
                    )
                out[li] = out[li].index_copy(0, sel, g[sample[sel]])
        return out

    @abstractmethod
    def compute(
        self,
        x: torch.Tensor,
        acts: list[torch.Tensor],
        logits: torch.Tensor,
        sample: torch.Tensor,
        target: torch.Tensor,
        create_graph: bool,
    ) -> list[torch.Tensor]:
        """The method itself: one raw map per target layer, at that layer's resolution.

        ``x``: the (B, 3, H, W) input batch (for methods that perturb it and run the model
        again through :meth:`forward`). ``acts``: per target layer l, the (B, C_l, h_l, w_l)
        activations of the forward pass (in the autograd graph when gradients are used; see
        :meth:`gradients`). ``logits``: (B, K). ``sample``, ``target``: (N,) int64, map n is
        for class ``target[n]`` of input ``sample[n]`` (pairs of a sample are contiguous).
        ``create_graph``: the maps must stay differentiable (``differentiable=True``).

        Returns ``[(N, h_l, w_l)]`` in the activations' dtype on their device, one per target
        layer, not normalized; the base upsamples and fuses them (:meth:`fuse`).
        """

    def choose_layers(self, x: torch.Tensor, targets: Targets = None) -> None:
        """Pick the automatic target layer for inputs like ``x`` (B, 3, H, W) now (the first
        call does it otherwise); a no-op when the layers are set."""
        if self.layers:
            return
        scorers = scorers_of(targets, x.shape[0])

        def score(out: Any) -> torch.Tensor:
            if scorers is not None:
                return target_scores(scorers[:1], out, 1)[0, 0]
            return find_logits(out)[0].max()

        self.layers = [choose_layer(self.model, x[:1], score, self.layout)]
        if self._with:
            self._install()

    def __call__(self, x: torch.Tensor, targets: Targets = None, differentiable: bool = False) -> CAMResult:
        """Maps for ``x`` (B, 3, H, W) and ``targets``: class ids (see :func:`expand_targets`),
        or a target callable, or a list of B of them (:mod:`camkit.methods.targets`); for
        callables map n is input n's, ``target`` the callable's index, ``score`` its value."""
        scorers = scorers_of(targets, x.shape[0])
        self.choose_layers(x, targets)
        need_grad = self.uses_gradients or differentiable
        with self._active(), torch.set_grad_enabled(need_grad or torch.is_grad_enabled()):
            self._scorers = scorers
            # an input that requires grad makes every activation require it, also under a frozen
            # backbone, without touching any parameter's requires_grad flag
            x_in = x.detach().requires_grad_(True) if (self.uses_gradients and not x.requires_grad) else x
            logits = self.forward(x_in)
            missing = [self.layers[i][0] for i in range(len(self.layers)) if i not in self._acts]
            if missing:
                raise OptionError(
                    "layers",
                    "this layer did not run in the forward pass; pick one on the path to the logits",
                    missing[0],
                )
            acts = [self._acts[i] for i in range(len(self.layers))]
            if not logits.ndim == 2:
                raise CamkitError(
                    f"the model output has shape {tuple(logits.shape)}, not (B, K) logits; "
                    "pass a target callable (camkit.methods.targets) that scores it"
                )
            if scorers is None:
                sample, target = expand_targets(self._targets_in(targets), logits)
            else:
                sample = torch.arange(x.shape[0], device=logits.device)
                target = sample if len(scorers) > 1 else torch.zeros_like(sample)
            self._capture = False
            low = self.compute(x, acts, logits, sample, target, differentiable)
            maps = self.fuse(low, spatial_size(x) if x.ndim == 4 else tuple(x.shape[2:]))  # 3-D: (D, H, W)
            probs = logits.detach() if scorers is not None else logits.detach().softmax(1)
            score = probs[sample, target]
        if not differentiable:
            low = [m.detach() for m in low]
            maps = maps.detach()
        return CAMResult(maps, low, sample, target, score, logits.detach())

    @staticmethod
    def _targets_in(targets: Targets) -> Targets:
        return targets

    def fuse(self, low: list[torch.Tensor], size: tuple[int, ...]) -> torch.Tensor:
        """One layer: upsample. Several: weighted sum of min-max normalized, upsampled maps.
        ``size``: the input's (H, W), or (D, H, W) for 3-D inputs."""
        if len(low) == 1:
            return upsample(low[0], size)
        return tensor_sum(w * upsample(minmax(m), size) for w, m in zip(self.layer_weights, low, strict=True))


def weighted_sum(acts: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """sum_k weights[n, k] · acts[n, k]: (N, C, *grid), (N, C) -> (N, *grid) (2-D or 3-D grid)."""
    return torch.einsum("nc...,nc->n...", acts, weights.to(acts.dtype))


def find_classifier(model: nn.Module, channels: int, classifier: str | nn.Module | None) -> nn.Linear:
    """The linear layer after global pooling: named, a module called ``classifier``, or the last
    ``nn.Linear`` whose input size equals the target layer's channel count."""
    named = dict(model.named_modules())
    if isinstance(classifier, nn.Linear):
        fc = classifier
    elif isinstance(classifier, str):
        found = named.get(classifier)
        if not isinstance(found, nn.Linear):
            raise OptionError(
                "classifier",
                f"not a linear layer of the model; close matches: {close_matches(classifier, list(named))}",
                classifier,
            )
        fc = found
    elif isinstance(head := named.get("classifier"), nn.Linear) and head.in_features == channels:
        fc = head
    else:
        cands = [m for m in named.values() if isinstance(m, nn.Linear) and m.in_features == channels]
        if not cands:
            raise CamkitError(
                f"no linear layer takes {channels} features; CAM needs a GAP-linear head on the target layer (or use grad-cam)"
            )
        fc = cands[-1]
    if fc.in_features != channels:
        raise CamkitError(
            f"the classifier takes {fc.in_features} features but the target layer has {channels} channels"
        )
    return fc
