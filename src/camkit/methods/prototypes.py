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

from camkit.core.errors import CamkitError
from camkit.core.io import atomic_path


@dataclass
class PrototypeConfig:
    """LPCAM's hyper-parameters: τ splits FG/BG on the CAM, K clusters per set, μ_f and μ_b
    select the centers; the rest bound the clustering."""

    tau: float = 0.1
    k: int = 12
    mu_f: float = 0.9
    mu_b: float = 0.5
    max_points: int = 200_000
    max_iter: int = 100
    tol: float = 1e-5
    n_init: int = 3  # k-means seedings per set; the lowest inertia is kept
    seed: int = 0

    def validate(self) -> None:
        if not 0.0 <= self.tau < 1.0:
            raise CamkitError(f"--tau {self.tau}: must be in [0, 1)")
        if self.k < 1:
            raise CamkitError(f"--k {self.k}: must be at least 1")
        if not (0.0 <= self.mu_f <= 1.0 and 0.0 <= self.mu_b <= 1.0):
            raise CamkitError("--mu-f and --mu-b are softmax scores; give them in [0, 1]")
        if self.max_points < self.k or self.max_iter < 1:
            raise CamkitError("--max-points must be >= --k and --max-iter >= 1")


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
        raise CamkitError(f"--prototypes {path}: file not found; build it with camkit prototypes")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CamkitError(
            f"--prototypes {path}: not a prototype file ({e}); build it with camkit prototypes"
        ) from None
    if meta.get("format") != "camkit-prototypes-1":
        raise CamkitError(
            f"--prototypes {path}: not a camkit prototype file; build it with camkit prototypes"
        )
    n = int(meta["num_classes"])
    return Prototypes(
        fg=[tensors[f"fg.{c}"] for c in range(n)],
        bg=[tensors[f"bg.{c}"] for c in range(n)],
        layer=meta["layer"],
        config=PrototypeConfig(**json.loads(meta["config"])),
        meta=json.loads(meta["meta"]),
    )
