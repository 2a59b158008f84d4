"""Segmentation data on disk, shared by the VOC and COCO sources: images with class-index masks.

A class-index mask is a palette (``P``) or greyscale (``L``) PNG the size of its image, with
0 for background, ``k + 1`` for class ``k`` and 255 for "ignore" (object borders, crowds).
RGB masks (the colours of a rendered palette) are refused: their values are not class ids.

Every mask of a split is checked once when the split is built (size against its image's
header, mode, values), so a bad file fails at once with its name, not mid-training; the
number of ignored (255) pixels is logged. Samples follow :mod:`camkit.data.base`: a multi-hot
``label`` (K,) and the class mask with 255 kept, which the seed scores skip.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from camkit.core.errors import CamkitError
from camkit.data.base import _sample
from camkit.data.folders import image_errors, image_size, read_image

log = logging.getLogger(__name__)

IGNORE = 255
T = TypeVar("T")


@dataclass(frozen=True)
class SegItem:
    """One image: its id, path, class-index mask (None: none) and multi-hot label (None:
    taken from the mask's classes)."""

    image_id: str
    image: Path
    mask: Path | None
    label: np.ndarray | None = None


def seg_item(image_id: str, image: Path, mask: Path, label: np.ndarray | None, missing: str) -> SegItem:
    """The item of ``image`` with class-index mask ``mask`` (None in the item when the file is
    absent) and multi-hot ``label``; with neither, a CamkitError "``mask``: mask not found for
    ``missing``"."""
    if label is None and not mask.is_file():
        raise CamkitError(f"{mask}: mask not found for {missing}")
    return SegItem(image_id, image, mask if mask.is_file() else None, label)


@dataclass(frozen=True)
class MaskStats:
    """What checking a split's masks found: masks read, pixels in them, pixels labelled 255."""

    masks: int
    pixels: int
    ignored: int


def read_index_mask(path: Path, num_classes: int) -> np.ndarray:
    """A class-index PNG as (H, W) uint8: 0 background, 1..K classes, 255 ignore. A one-line
    CamkitError naming the file for an RGB mask or a value that is no class id."""
    with image_errors(path, "mask"), Image.open(path) as im:
        im.load()
        if im.mode not in ("P", "L"):
            raise CamkitError(
                f"{path}: an {im.mode} mask where a palette or greyscale class-index PNG is expected "
                f"(0 background, 1..{num_classes} classes, 255 ignore); save the class ids, not colours"
            )
        arr = np.asarray(im, dtype=np.uint8)
    bad = (arr > num_classes) & (arr != IGNORE)
    if bad.any():
        raise CamkitError(
            f"{path}: unknown class id {int(arr[bad].max())} in the mask "
            f"(0 background, 1..{num_classes} classes, 255 ignore)"
        )
    return arr


def labels_from_mask(mask: np.ndarray, num_classes: int) -> np.ndarray:
    """The multi-hot (K,) float32 label of the classes present in a class-index mask."""
    present = np.zeros(num_classes + 1, dtype=bool)
    present[np.unique(mask[mask != IGNORE])] = True
    return present[1:].astype(np.float32)


def _check_one(item: SegItem, num_classes: int) -> tuple[SegItem, int, int]:
    """Check one item's mask (size, mode, values); the item with its label filled in, and
    the mask's pixel and ignored-pixel counts."""
    if item.mask is None:
        if item.label is None:
            raise CamkitError(f"{item.image}: no mask and no image-level label for {item.image_id}")
        return item, 0, 0
    mask = read_index_mask(item.mask, num_classes)
    iw, ih = image_size(item.image)
    if mask.shape != (ih, iw):
        raise CamkitError(
            f"{item.mask}: mask is {mask.shape[1]}x{mask.shape[0]} but its image {item.image.name} is "
            f"{iw}x{ih}; masks must match their images"
        )
    label = item.label if item.label is not None else labels_from_mask(mask, num_classes)
    return replace(item, label=label), mask.size, int((mask == IGNORE).sum())


def check_items(items: Sequence[SegItem], num_classes: int, where: str) -> tuple[list[SegItem], MaskStats]:
    """Check every item's mask (in threads: PNG decoding releases the GIL), fill labels from
    the masks where missing, and log the masks read, the ignored pixels, the images without a
    mask and those without any class. ``where`` names the split in the log."""
    if not items:
        raise CamkitError(f"{where}: the split is empty")
    with ThreadPoolExecutor(max(1, min(8, torch.get_num_threads() * 2))) as pool:
        done = list(pool.map(lambda it: _check_one(it, num_classes), items))
    out = [d[0] for d in done]
    stats = MaskStats(
        sum(d[0].mask is not None for d in done), sum(d[1] for d in done), sum(d[2] for d in done)
    )
    if stats.masks:
        log.info(
            "%s: %d images, %d masks; %d of %d mask pixels (%.2f%%) are 255 (ignored in scoring)",
            where, len(out), stats.masks, stats.ignored, stats.pixels, 100.0 * stats.ignored / max(1, stats.pixels),
        )  # fmt: skip
    if stats.masks < len(out):
        log.warning("%s: %d of %d images have no mask; they train but are not scored", where,
                    len(out) - stats.masks, len(out))  # fmt: skip
    empty = sum(not bool(np.any(it.label)) for it in out)
    if empty:
        log.warning("%s: %d images have no class (all background)", where, empty)
    return out, stats


def read_id_list(path: Path) -> list[str]:
    """Image ids from a list file, one per line: a bare id (``2007_000032``) or DeepLab's
    ``/JPEGImages/ID.jpg /SegmentationClassAug/ID.png`` pair (the image's stem is the id).
    Blank lines are allowed; a line of more than two fields is an error naming the line."""
    if not path.is_file():
        raise CamkitError(f"{path}: list file not found")
    ids = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) > 2:
            raise CamkitError(
                f"{path}:{n}: expected an image id (or 'image mask' paths), got {line.strip()!r}"
            )
        ids.append(Path(parts[0]).stem if len(parts) == 2 else parts[0])
    if not ids:
        raise CamkitError(f"{path}: the list is empty")
    return ids


class SegDataset(Dataset):
    """Images and class-index masks (checked :class:`SegItem` s), resized to S×S; samples as
    in :mod:`camkit.data.base` with a multi-hot label and the class mask (255 kept); an image
    without a mask has ``has_mask`` False and a mask of 255 everywhere."""

    def __init__(self, items: list[SegItem], num_classes: int, image_size: int, stats: MaskStats) -> None:
        self.items = items
        self.num_classes = num_classes
        self.image_size = image_size
        self.stats = stats
        self.ids = [it.image_id for it in items]
        self.labels = torch.from_numpy(np.stack([np.asarray(it.label, np.float32) for it in items]))
        self.multilabel = True

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        it = self.items[i]
        img = torch.from_numpy(np.asarray(read_image(it.image)).copy()).permute(2, 0, 1).float().div_(255.0)
        if it.mask is not None:
            mask = torch.from_numpy(read_index_mask(it.mask, self.num_classes).copy())
        else:  # all "ignore": the seed scores, which read every mask, skip the image
            mask = torch.full(img.shape[1:], IGNORE, dtype=torch.uint8)
        return _sample(img, self.labels[i], mask, it.mask is not None, i, self.image_size)


def find_image(folder: Path, image_id: str, exts: Sequence[str] = (".jpg", ".jpeg", ".png")) -> Path | None:
    """``folder/ID.ext`` for the first extension that exists, else None."""
    for ext in exts:
        p = folder / f"{image_id}{ext}"
        if p.is_file():
            return p
    return None


def carve(items: list[T], val_fraction: float, split_seed: int, split: str) -> list[T]:
    """The ``train`` or ``val`` share of ``items``, as :func:`camkit.data.base.carve_split`
    draws it (the same seeded permutation), for any kind of item."""
    from camkit.data.base import carve_split

    idx = carve_split(list(range(len(items))), val_fraction, split_seed, split)  # type: ignore[arg-type]
    return [items[int(i)] for i in idx]  # type: ignore[call-overload]
