"""The two dataset classes every source builds on, and the one sample format.

Every sample is a dict:

* ``image``: float32 (3, S, S) in [0, 1] (S = ``image_size``);
* ``label``: int64 class id (-1 when unknown); for multi-label data a float32 (K,) multi-hot vector;
* ``mask``: uint8 (S, S) with 1 for the object, 0 for background (all 0 when absent); for
  multi-label data the class mask, 0 for background and class + 1 elsewhere (VOC style);
* ``has_mask``: bool;
* ``index``: int, the sample's position in its split.

Masks are resized with nearest-neighbour to the image size, so scores are computed at the
model's input resolution.
"""

from __future__ import annotations

from collections.abc import Sized
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from camkit.core.errors import CamkitError, OptionError
from camkit.data.folders import Record, read_image, read_mask


def dataset_len(ds: Dataset) -> int:
    """Number of samples in a map-style dataset.

    ``torch.utils.data.Dataset`` does not declare ``__len__``, so ``len(ds)`` does not type-check;
    this is the one place that narrows it.
    """
    if not isinstance(ds, Sized):
        raise TypeError(f"{type(ds).__name__} has no len(); camkit needs a map-style dataset")
    return len(ds)


class ArrayDataset(Dataset):
    """In-memory images (N, H, W[, 3]) uint8 with labels and optional masks (N, H, W) bool."""

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        masks: np.ndarray | None,
        image_size: int,
        ids: list[str] | None = None,
    ) -> None:
        self.images = torch.from_numpy(np.ascontiguousarray(images))
        labels = np.asarray(labels)
        self.multilabel = labels.ndim == 2
        self.labels = torch.from_numpy(labels.astype(np.float32 if self.multilabel else np.int64))
        self.masks = None if masks is None else torch.from_numpy(np.ascontiguousarray(masks)).to(torch.uint8)
        self.image_size = image_size
        self.ids = ids or [f"{i:06d}" for i in range(len(self.labels))]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Any]:
        img = self.images[i]
        img = img.unsqueeze(0).expand(3, -1, -1) if img.ndim == 2 else img.permute(2, 0, 1)
        img = img.float().div_(255.0)
        mask = self.masks[i] if self.masks is not None else torch.zeros(img.shape[1:], dtype=torch.uint8)
        return _sample(img, self.labels[i], mask, self.masks is not None, i, self.image_size)


class FileDataset(Dataset):
    """Images read from disk with PIL, resized to S×S; masks resized with nearest.

    A split that fits in ``cache_bytes`` (default :func:`decoded_cache_bytes`: 1 GiB,
    ``$CAMKIT_DECODED_CACHE_MB``) keeps each decoded, resized sample in memory after its
    first read, so later epochs skip decoding and resizing; samples are returned as copies,
    so the cache never changes what a read gives."""

    def __init__(self, records: list[Record], image_size: int, cache_bytes: int | None = None) -> None:
        if not records:
            raise CamkitError("the split is empty; check {root} and the list files", refs={"root": None})
        self.records = records
        self.image_size = image_size
        self.ids = [r.image_id for r in records]
        self.labels = torch.tensor([r.label for r in records], dtype=torch.int64)
        budget = decoded_cache_bytes() if cache_bytes is None else cache_bytes
        fits = len(records) * image_size * image_size * 13 <= budget  # float32 RGB + uint8 mask
        self._cache: list[tuple[torch.Tensor, torch.Tensor] | None] | None = (
            [None] * len(records) if fits else None
        )

    @property
    def cached(self) -> bool:
        """Whether decoded samples are kept in memory."""
        return self._cache is not None

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict[str, Any]:
        r = self.records[i]
        hit = self._cache[i] if self._cache is not None else None
        if hit is not None:
            img, mask = hit
            return _sample(img.clone(), self.labels[i], mask.clone(), r.mask is not None, i, self.image_size)
        s = self._read(r, i)
        if self._cache is not None:
            self._cache[i] = (s["image"].clone(), s["mask"].clone())
        return s

    def _read(self, r: Record, i: int) -> dict[str, Any]:
        pil = read_image(r.path)
        img = torch.from_numpy(np.asarray(pil).copy()).permute(2, 0, 1).float().div_(255.0)
        if r.mask is not None:
            m = read_mask(r.mask)
            if m.shape != img.shape[1:]:
                raise CamkitError(
                    f"{r.mask}: mask is {m.shape[1]}x{m.shape[0]} but its image {r.path.name} is "
                    f"{img.shape[2]}x{img.shape[1]}; masks must match their images"
                )
            mask = torch.from_numpy(m.astype(np.uint8))
        else:
            mask = torch.zeros(img.shape[1:], dtype=torch.uint8)
        return _sample(img, self.labels[i], mask, r.mask is not None, i, self.image_size)


def decoded_cache_bytes() -> int:
    """The memory a :class:`FileDataset` may fill with decoded samples: ``$CAMKIT_DECODED_CACHE_MB``
    megabytes (0 turns the cache off), 1024 by default."""
    import os

    raw = os.environ.get("CAMKIT_DECODED_CACHE_MB", "1024")
    try:
        mb = float(raw)
    except ValueError:
        raise CamkitError(
            f"$CAMKIT_DECODED_CACHE_MB={raw!r}: give a number of megabytes (0: no cache)"
        ) from None
    return max(0, int(mb * 2**20))


def _sample(
    img: torch.Tensor, label: torch.Tensor, mask: torch.Tensor, has_mask: bool, i: int, size: int
) -> dict[str, Any]:
    """The sample dict (see the module docstring), resized to ``size``."""
    img, mask = _resize(img, mask, size)
    return {"image": img, "label": label, "mask": mask, "has_mask": has_mask, "index": i}


def _resize(img: torch.Tensor, mask: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    if img.shape[1:] == (size, size):
        return img, mask
    img = F.interpolate(img[None], size=(size, size), mode="bilinear", align_corners=False, antialias=True)[0]
    mask = F.interpolate(mask[None, None].float(), size=(size, size), mode="nearest")[0, 0].to(torch.uint8)
    return img.clamp_(0, 1), mask


def carve_split(records: list[Record], val_fraction: float, split_seed: int, split: str) -> list[Record]:
    """The ``train`` or ``val`` share of ``records``, deterministic for ``split_seed``: a seeded
    permutation holds out ``val_fraction`` of them (at least one) for validation."""
    if not 0.0 < val_fraction < 1.0:
        raise OptionError("val_fraction", "must be between 0 and 1", val_fraction)
    perm = np.random.default_rng(split_seed).permutation(len(records))
    n_val = max(1, int(round(val_fraction * len(records))))
    idx = np.sort(perm[:n_val] if split == "val" else perm[n_val:])
    return [records[i] for i in idx]
