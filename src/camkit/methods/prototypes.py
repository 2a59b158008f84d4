"""LPCAM's prototype file: the kept foreground and background centres per class, the
settings that built them, and their safetensors format. Building them is
:func:`camkit.wsss.prototypes.build_prototypes`; using them is :mod:`camkit.methods.lpcam`."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from camkit.core.errors import OptionError
from camkit.core.io import atomic_path
from camkit.core.options import option


@dataclass
class PrototypeConfig:
    """LPCAM's hyper-parameters: τ splits FG/BG on the CAM, K clusters per set, μ_f and μ_b
    select the centers; the rest bound the clustering."""

    tau: float = option(0.1, help="τ: foreground where the normalized CAM > τ, else background")
    k: int = option(12, help="clusters per class for the foreground and for the background")
    mu_f: float = option(0.9, help="keep foreground centers with class softmax score > μ_f")
    mu_b: float = option(0.5, help="keep background centers with class softmax score < μ_b")
    max_points: int = option(200_000, help="subsample each set to this many feature vectors")
    max_iter: int = option(100, help="k-means iteration cap")
    tol: float = option(1e-5, cli=False, help="k-means convergence tolerance on the centers")
    n_init: int = option(3, cli=False, help="k-means seedings per set; the lowest inertia is kept")
    seed: int = option(0, help="k-means and subsampling seed")

    def validate(self) -> None:
        if not 0.0 <= self.tau < 1.0:
            raise OptionError("tau", "must be in [0, 1)", self.tau)
        if self.k < 1:
            raise OptionError("k", "must be at least 1", self.k)
        for name in ("mu_f", "mu_b"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise OptionError(name, "is a softmax score; give it in [0, 1]", getattr(self, name))
        if self.max_points < self.k:
            raise OptionError("max_points", f"must be >= k ({self.k})", self.max_points)
        if self.max_iter < 1:
            raise OptionError("max_iter", "must be at least 1", self.max_iter)


@dataclass
class Prototypes:
    """Kept prototypes per class: ``fg[n]`` (F'_n, C) and ``bg[n]`` (B'_n, C), raw scale."""

    fg: list[torch.Tensor]
    bg: list[torch.Tensor]
    layer: str
    config: PrototypeConfig = field(default_factory=PrototypeConfig)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.fg)


def save_prototypes(path: str | os.PathLike[str], protos: Prototypes) -> None:
    """One safetensors file (``fg.N``/``bg.N`` tensors) with the layer, config and build log."""
    tensors = {f"fg.{c}": t.contiguous() for c, t in enumerate(protos.fg)}
    tensors.update({f"bg.{c}": t.contiguous() for c, t in enumerate(protos.bg)})
    meta = {
        "format": "camkit-prototypes-1",
        "layer": protos.layer,
        "config": json.dumps(asdict(protos.config)),
        "meta": json.dumps(protos.meta),
        "num_classes": str(protos.num_classes),
    }
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def load_prototypes(path: str | os.PathLike[str]) -> Prototypes:
    path = Path(path)
    if not path.is_file():
        raise OptionError("prototypes", "file not found; build it with camkit prototypes", path)
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise OptionError(
            "prototypes", f"not a prototype file ({e}); build it with camkit prototypes", path
        ) from None
    if meta.get("format") != "camkit-prototypes-1":
        raise OptionError("prototypes", "not a camkit prototype file; build it with camkit prototypes", path)
    n = int(meta["num_classes"])
    return Prototypes(
        fg=[tensors[f"fg.{c}"] for c in range(n)],
        bg=[tensors[f"bg.{c}"] for c in range(n)],
        layer=meta["layer"],
        config=PrototypeConfig(**json.loads(meta["config"])),
        meta=json.loads(meta["meta"]),
    )
