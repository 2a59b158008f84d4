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
import zipfile
import zlib
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
    """Write a map set as compressed npz, atomically (an existing file survives a failure).

    The file named holds the data whatever its suffix (``maps``, ``maps.NPZ``): numpy is given an
    open file, so it never appends ``.npz`` to the name."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(
            fh,
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


_FIX = "extract the maps again with camkit extract"


def load_maps(path: str | os.PathLike[str]) -> MapSet:
    """Read a map file of :func:`save_maps`; a one-line error on anything else (empty,
    truncated, or arrays of the wrong shape or type)."""
    path = Path(path)
    if path.is_dir():
        raise OptionError("maps", "is a folder; pass a map file (.npz) from camkit extract", path)
    if not path.is_file():
        raise OptionError("maps", "file not found; create it with camkit extract", path)
    if path.stat().st_size == 0:
        raise OptionError("maps", f"the file is empty (0 bytes); {_FIX}", path)
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise ValueError("a single array, not an npz archive")
        with z:
            arrays = {k: z[k] for k in _KEYS if k in z.files}
            extra = {k: str(z[k]) for k in ("method", "meta") if k in z.files}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise OptionError(
            "maps",
            f"not a readable camkit map file ({e.__class__.__name__}: truncated or corrupt?); {_FIX}",
            path,
        ) from None
    missing = [k for k in _KEYS if k not in arrays]
    if missing:
        raise OptionError("maps", f"not a camkit map file (no {', '.join(missing)}); {_FIX}", path)
    _check_arrays(arrays, path)
    maps = torch.from_numpy(arrays["maps"].astype(np.float32, copy=False))
    if not torch.isfinite(maps).all():
        raise OptionError("maps", "the maps contain NaN or Inf; extract them again", path)
    try:
        meta = json.loads(extra.get("meta", "{}"))
    except ValueError:
        raise OptionError("maps", f"its metadata is not valid JSON; {_FIX}", path) from None
    size = arrays["image_size"]
    return MapSet(
        maps=maps,
        targets=torch.from_numpy(arrays["targets"]),
        scores=torch.from_numpy(arrays["scores"]),
        labels=torch.from_numpy(arrays["labels"]),
        preds=torch.from_numpy(arrays["preds"]),
        ids=[str(s) for s in arrays["image_id"]],
        image_size=(int(size[0]), int(size[1])),
        method=extra.get("method", "cam"),
        meta=meta if isinstance(meta, dict) else {},
    )


_KEYS = ("maps", "targets", "scores", "labels", "preds", "image_id", "image_size")


def _check_arrays(a: dict[str, np.ndarray], path: Path) -> None:
    """Shapes and types of a map file's arrays: (N, h, w) maps with (N,) numeric targets,
    scores, labels and predictions, or a class map set (N, K, h, w) with (N, K) ones."""

    def bad(msg: str) -> OptionError:
        return OptionError("maps", f"{msg}; {_FIX}", path)

    maps = a["maps"]
    if maps.dtype.kind not in "fiu":
        raise bad(f"the maps are {maps.dtype} values, not numbers")
    if maps.ndim not in (3, 4):
        raise bad(
            f"the maps are {maps.ndim}-D {tuple(maps.shape)}; expected (N, h, w) or class maps (N, K, h, w)"
        )
    n = maps.shape[0]
    if n == 0 or 0 in maps.shape[-2:]:
        raise bad(f"the maps have an empty dimension {tuple(maps.shape)}")
    rows = maps.shape[:2] if maps.ndim == 4 else (n,)
    for k in ("targets", "scores", "labels", "preds"):
        v = a[k]
        if v.dtype.kind not in "fiub":
            raise bad(f"{k} are {v.dtype} values, not numbers")
        if tuple(v.shape) != tuple(rows):
            what = "class maps (N, K, h, w)" if maps.ndim == 4 else "maps (N, h, w)"
            raise bad(f"{k} has shape {tuple(v.shape)} but {what} {tuple(maps.shape)} need {tuple(rows)}")
    if a["image_id"].shape != (n,):
        raise bad(f"{a['image_id'].shape[0] if a['image_id'].ndim else 0} image ids for {n} maps")
    if (
        a["image_size"].shape != (2,)
        or a["image_size"].dtype.kind not in "iu"
        or (a["image_size"] <= 0).any()
    ):
        raise bad(f"image_size is {a['image_size'].tolist()}, not a (height, width) pair")
