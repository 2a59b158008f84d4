"""Map sets: the on-disk format of extracted CAMs (compressed npz), and loading it back.

A map set keeps the raw maps at feature resolution (N, h, w) float32, plus per image the
target class, its softmax score, the label, the prediction and the image id. Normalizing
and upsampling happen when the maps are scored or drawn, so nothing is lost on disk.

Multi-label data (multi-hot labels) gives a *class map set*: maps (N, K, h, w) with the map
of every class present in each image (zeros elsewhere), ``targets`` (N, K) bool marking
them, ``scores`` (N, K), ``labels`` (N, K) multi-hot and ``preds`` (N, K) bool (logit > 0).
Extraction itself is :func:`camkit.pipeline.extract.extract`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from camkit.core.errors import OptionError
from camkit.core.io import atomic_path


@dataclass
class MapSet:
    maps: torch.Tensor  # (N, h, w) float32, raw
    targets: torch.Tensor  # (N,) int64: the class each map explains
    scores: torch.Tensor  # (N,) float32: softmax probability of the target
    labels: torch.Tensor  # (N,) int64 (-1 unknown)
    preds: torch.Tensor  # (N,) int64
    ids: list[str]
    image_size: tuple[int, int]
    method: str = "cam"
    meta: dict[str, object] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def per_class(self) -> bool:
        """True for a class map set (maps (N, K, h, w), see the module docstring)."""
        return self.maps.ndim == 4


def save_maps(path: str | os.PathLike[str], ms: MapSet) -> None:
    """Write a map set as compressed npz, atomically (an existing file survives a failure)."""
    with atomic_path(path) as tmp:
        np.savez_compressed(
            tmp,
            maps=ms.maps.detach().cpu().numpy().astype(np.float32),
            targets=ms.targets.cpu().numpy(),
            scores=ms.scores.cpu().numpy(),
            labels=ms.labels.cpu().numpy(),
            preds=ms.preds.cpu().numpy(),
            image_id=np.array(ms.ids),
            image_size=np.array(ms.image_size),
            method=np.array(ms.method),
            meta=np.array(json.dumps(ms.meta, default=str)),
        )


def load_maps(path: str | os.PathLike[str]) -> MapSet:
    path = Path(path)
    if not path.is_file():
        raise OptionError("maps", "file not found; create it with camkit extract", path)
    try:
        with np.load(path, allow_pickle=False) as z:
            maps = torch.from_numpy(z["maps"])
            if not torch.isfinite(maps).all():
                raise OptionError("maps", "the maps contain NaN or Inf; extract them again", path)
            return MapSet(
                maps=maps,
                targets=torch.from_numpy(z["targets"]),
                scores=torch.from_numpy(z["scores"]),
                labels=torch.from_numpy(z["labels"]),
                preds=torch.from_numpy(z["preds"]),
                ids=[str(s) for s in z["image_id"]],
                image_size=(int(z["image_size"][0]), int(z["image_size"][1])),
                method=str(z["method"]),
                meta=json.loads(str(z["meta"])),
            )
    except (OSError, ValueError, KeyError) as e:
        raise OptionError(
            "maps", f"not a camkit map file ({e.__class__.__name__}); create it with camkit extract", path
        ) from None
