"""Provenance: what made an artifact (map file, shard folder, prototypes, run folder, report).

A provenance record is a JSON-able dict::

    {"format": 1, "camkit": "0.3.0", "created": "2026-12-02T11:30:00Z",
     "data": {"config": {...DataConfig...} or None, "split": "test",
              "fingerprint": {"images": N, "ids": sha, "labels": sha, "content": sha, "content_kind": "masks+pixels"}},
     "model": {"weights": sha of the state dict, "source": checkpoint path or "imagenet:NAME", ...},
     "method": "cam", "target": "label", "layers": None}

The data fingerprint hashes the image ids, the labels and the content: the masks and pixels of
in-memory splits, the mask files' bytes and the image files' names and sizes of on-disk ones.
:func:`data_differences` tells which settings of two data configs change what a split holds
(where it lives on disk, the cache folder and the training augmentation do not), and
:func:`fingerprint_differences` which parts of two fingerprints differ.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, Subset

FORMAT = 1
KEY = "provenance"  # the key of the record in an artifact's metadata

#: DataConfig fields that say where the data lives or how training augments it, not what a
#: split holds: two configs that differ only here give the same split (the fingerprint decides)
LOCATION_FIELDS = frozenset({"root", "mask_root", "metadata_root", "cache_dir", "augment"})


def camkit_version() -> str:
    from camkit import __version__

    return __version__


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sha(chunks: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for c in chunks:
        h.update(c)
    return h.hexdigest()[:16]


def _tensor_bytes(t: Any) -> bytes:
    a = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    return np.ascontiguousarray(a).tobytes() + str(a.dtype).encode() + str(a.shape).encode()


def _base(ds: Dataset) -> tuple[Dataset, list[int] | None]:
    """The dataset under augmentation wrappers and subsets, with the subset's indices (None: all)."""
    idx: list[int] | None = None
    while True:
        if isinstance(ds, Subset):
            sub = [int(i) for i in ds.indices]
            idx = sub if idx is None else [sub[i] for i in idx]
            ds = ds.dataset
        elif hasattr(ds, "ds") and isinstance(ds.ds, Dataset):
            ds = ds.ds
        else:
            return ds, idx


def fingerprint(ds: Dataset, ids: list[str] | None = None) -> dict[str, Any]:
    """A fingerprint of what a split holds: its size, and hashes (16 hex digits) of its image
    ids, labels and content. Reads no image: in-memory splits hash their arrays, on-disk
    splits their mask files and image file names and sizes. Parts it cannot see are None."""
    base, idx = _base(ds)
    sel: Any = slice(None) if idx is None else idx
    all_ids = ids if ids is not None else getattr(ds, "ids", None) or getattr(base, "ids", None)
    if all_ids is not None and ids is None and idx is not None and len(all_ids) != len(idx):
        all_ids = [all_ids[i] for i in idx]
    labels = getattr(base, "labels", None)
    out: dict[str, Any] = {
        "images": len(ds),  # type: ignore[arg-type]
        "ids": _sha(s.encode() + b"\0" for s in all_ids) if all_ids is not None else None,
        "labels": _sha([_tensor_bytes(labels[sel])]) if isinstance(labels, torch.Tensor) else None,
        "content": None,
        "content_kind": None,
    }
    masks, images = getattr(base, "masks", None), getattr(base, "images", None)
    records = getattr(base, "records", None) or getattr(base, "items", None)
    if isinstance(images, torch.Tensor):
        parts = [_tensor_bytes(images[sel])]
        if isinstance(masks, torch.Tensor):
            parts.append(_tensor_bytes(masks[sel]))
        out["content"], out["content_kind"] = _sha(parts), "masks+pixels" if len(parts) == 2 else "pixels"
    elif isinstance(records, list):
        recs = records if idx is None else [records[i] for i in idx]
        out["content"], out["content_kind"] = _sha(_record_bytes(r) for r in recs), "mask files+image files"
    return out


def _record_bytes(r: Any) -> bytes:
    """A file record's share of the fingerprint: the image's name and size, the bytes of its
    mask files (``mask``, ``masks``, ``ignore``) and its boxes, where it has them."""
    image = getattr(r, "path", None) or getattr(r, "image", None)
    b = f"{Path(image).name}:{_size(Path(image))}".encode() if image is not None else b"?"
    files = [getattr(r, "mask", None), *(getattr(r, "masks", None) or ()), getattr(r, "ignore", None)]
    for f in files:
        if f is not None:
            try:
                b += Path(f).read_bytes()
            except OSError:
                b += b"?"
    boxes = getattr(r, "boxes", None)
    if boxes is not None:
        b += _tensor_bytes(boxes)
    return b + b"\0"


def _size(p: Path) -> int:
    try:
        return p.stat().st_size
    except OSError:
        return -1


def weights_hash(model: nn.Module) -> str:
    """A hash (16 hex digits) of a model's parameters and buffers, names included."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(_tensor_bytes(t))
    return h.hexdigest()[:16]


def record(
    data: Mapping[str, Any] | None,
    split: str | None,
    ds: Dataset | None,
    model: Mapping[str, Any] | None = None,
    ids: list[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A provenance record (see the module docstring): the data config (None for a plain image
    folder), the split, the fingerprint of ``ds``, the model's description and ``extra`` keys
    (method, target, layers, ...)."""
    return {
        "format": FORMAT,
        "camkit": camkit_version(),
        "created": now(),
        "data": {
            "config": _jsonable(dict(data)) if data is not None else None,
            "split": split,
            "fingerprint": fingerprint(ds, ids) if ds is not None else None,
        },
        "model": _jsonable(dict(model or {})),
        **_jsonable(extra),
    }


def _jsonable(o: Any) -> Any:
    return json.loads(json.dumps(o, default=str))


def data_differences(recorded: Mapping[str, Any], given: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """The settings that change what a split holds and differ: (field, recorded, given).
    Settings only one side knows (added by a later camkit) are skipped."""
    keys = [k for k in recorded if k in given and k not in LOCATION_FIELDS]
    norm = _jsonable
    return [(k, recorded.get(k), given.get(k)) for k in keys if norm(recorded.get(k)) != norm(given.get(k))]


def fingerprint_differences(recorded: Mapping[str, Any], found: Mapping[str, Any]) -> list[str]:
    """The parts of two fingerprints that differ (those either side could not see are skipped):
    e.g. ``["images (16 recorded, 32 found)", "labels"]``."""
    out = []
    for k in ("images", "ids", "labels", "content"):
        a, b = recorded.get(k), found.get(k)
        if a is None or b is None or a == b:
            continue
        if k == "content" and recorded.get("content_kind") != found.get("content_kind"):
            continue  # hashed differently (e.g. another camkit layout); nothing to compare
        out.append(
            f"{k} ({a} recorded, {b} found)" if k == "images" else ("masks/files" if k == "content" else k)
        )
    return out
