"""LPCAM: class activation maps from local prototypes (Chen et al., "Extracting Class
Activation Maps from Non-Discriminative Features as well", CVPR 2023).

With the kept foreground prototypes F'_n and background prototypes B'_n of class n
(:mod:`camkit.wsss.prototypes`) and the feature map f(x) of the target layer:

    FG_n = 1/|F'_n| Σ_i cos(f(x), F'_i),   BG_n = 1/|B'_n| Σ_j cos(f(x), B'_j)
    A_n = FG_n - BG_n            (LPCAM)       A_n = FG_n          (LPCAM-F, the FG term only)

and the paper's map is ReLU(A_n) / max ReLU(A_n); camkit keeps the raw A_n and normalizes
when scoring (``relu-max`` is the paper's). Every prototype counts, not just the one the
classifier prefers, so non-discriminative parts light up too; the BG term removes context
that co-occurs with the class. A position whose feature vector is all zero has cosine 0.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from camkit.core.errors import CamkitError, OptionError
from camkit.methods.base import CAMMethod, LayerSpec
from camkit.methods.prototypes import Prototypes, load_prototypes
from camkit.methods.registry import register


def _mean_matrix(protos: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack per-class prototypes (n_k, C) -> unit rows (M, C) and the (M, K) averaging matrix."""
    rows = torch.cat(protos) if protos else torch.zeros(0)
    owner = torch.cat([torch.full((p.shape[0],), k) for k, p in enumerate(protos)])
    avg = torch.zeros(rows.shape[0], len(protos))
    counts = torch.tensor([max(p.shape[0], 1) for p in protos], dtype=torch.float32)
    avg[torch.arange(rows.shape[0]), owner] = 1.0 / counts[owner]
    return F.normalize(rows.float(), dim=1), avg


def prototype_similarity(features: torch.Tensor, rows: torch.Tensor, avg: torch.Tensor) -> torch.Tensor:
    """Mean cosine similarity to each class's prototypes.

    features (B, C, h, w); rows (M, C) unit prototypes; avg (M, K) averaging matrix -> (B, K, h, w).
    """
    fn = F.normalize(features, dim=1)
    sims = torch.einsum("bchw,mc->bmhw", fn, rows.to(fn))
    return torch.einsum("bmhw,mk->bkhw", sims, avg.to(fn))


@register("lpcam")
class LPCAM(CAMMethod):
    reference = (
        "Chen et al., Extracting Class Activation Maps from Non-Discriminative Features as well, CVPR 2023"
    )
    needs = "a prototype file (`camkit prototypes`)"
    extra_options = ("prototypes",)
    fg_only = False

    def __init__(
        self,
        model: nn.Module,
        target_layers: LayerSpec = None,
        prototypes: Prototypes | str | os.PathLike[str] | None = None,
        **kw: Any,
    ) -> None:
        if prototypes is None:
            raise OptionError(
                "prototypes", f"method {self.name} needs a prototype file; build it with camkit prototypes"
            )
        protos = prototypes if isinstance(prototypes, Prototypes) else load_prototypes(prototypes)
        super().__init__(model, target_layers if target_layers is not None else protos.layer, **kw)
        if len(self.layers) != 1:
            raise OptionError("method", f"takes one target layer, got {len(self.layers)}", self.name)
        if self.layers[0][0] != protos.layer:
            raise OptionError(
                "layers", f"the prototypes were built on {protos.layer}; use that layer", self.layers[0][0]
            )
        self.protos = protos
        self._fg = _mean_matrix(protos.fg)
        self._bg = _mean_matrix(protos.bg)

    def compute(
        self,
        x: torch.Tensor,
        acts: list[torch.Tensor],
        logits: torch.Tensor,
        sample: torch.Tensor,
        target: torch.Tensor,
        create_graph: bool,
    ) -> list[torch.Tensor]:
        """Cosine similarity to the target's foreground prototypes minus that to its
        background prototypes (foreground only for LPCAM-F): one (N, h, w) map, one layer."""
        f = acts[0]
        if logits.shape[1] != self.protos.num_classes:
            raise CamkitError(
                f"the prototypes cover {self.protos.num_classes} classes but the model has {logits.shape[1]}"
            )
        if self._fg[0].shape[1] != f.shape[1]:
            raise CamkitError(
                f"the prototypes have {self._fg[0].shape[1]} channels but layer {self.layers[0][0]} has {f.shape[1]}"
            )
        fs = f[sample]
        a = prototype_similarity(fs, *self._fg)[torch.arange(sample.numel()), target]
        if not self.fg_only:
            a = a - prototype_similarity(fs, *self._bg)[torch.arange(sample.numel()), target]
        return [a]


@register("lpcam-f")
class LPCAMF(LPCAM):
    """LPCAM-F: LPCAM with the foreground term only (the ablation of LPCAM's Table 1)."""

    fg_only = True
