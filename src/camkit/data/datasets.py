"""Torch datasets over the three sources, behind one config and one sample format.

Every sample is a dict:

* ``image``: float32 (3, S, S) in [0, 1] (S = ``image_size``);
* ``label``: int64 class id (-1 when unknown); for multi-label data (``fashion-multi``) a
  float32 (K,) multi-hot vector;
* ``mask``: uint8 (S, S) with 1 for the object, 0 for background (all 0 when absent); for
  multi-label data the class mask, 0 for background and class + 1 elsewhere (VOC style);
* ``has_mask``: bool;
* ``index``: int, the sample's position in its split.

Masks are resized with nearest-neighbour to the image size, so scores are computed at the
model's input resolution.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from camkit.core.errors import CamkitError
from camkit.data import fashion
from camkit.data.augment import AugmentConfig, Augmented
from camkit.data.folders import (
    Record,
    check_mask_sizes,
    read_image,
    read_mask,
    scan_image_folder,
    scan_lab_layout,
)

log = logging.getLogger(__name__)

DATASETS = ("fashion", "fashion-multi", "folder", "lab")


@dataclass
class DataConfig:
    """Where the data comes from and how it is shaped."""

    dataset: str = "fashion"  # fashion | folder | lab
    root: str | None = None  # fashion: IDX folder (Debian's by default); folder/lab: the tree
    mask_root: str | None = None  # folder: parallel tree of masks
    image_size: int = 64
    val_fraction: float = 0.1  # folder/lab: share of train held out for validation
    split_seed: int = 0
    # the embedded benchmark
    n_train: int = 8000
    n_val: int = 1000
    n_test: int = 1000
    min_scale: float | None = None  # item side / canvas side; None: 0.45 (fashion), 0.3 (fashion-multi)
    max_scale: float | None = None  # None: 0.8 (fashion), 0.55 (fashion-multi)
    clutter: int = 8
    seed: int = 0
    max_objects: int = 3  # fashion-multi: 1..max_objects items of distinct classes per canvas
    cache_dir: str | None = None
    # online augmentation of the training split (see camkit.data.augment)
    aug_hflip: bool = False
    aug_rotate: float = 0.0
    aug_shift: float = 0.0
    aug_jitter: float = 0.0
    aug_crop: float = 0.0

    def augment(self) -> AugmentConfig:
        return AugmentConfig(self.aug_hflip, self.aug_rotate, self.aug_shift, self.aug_jitter, self.aug_crop)

    @property
    def multilabel(self) -> bool:
        """Multi-hot labels and class masks (the multi-object benchmark)."""
        return self.dataset == "fashion-multi"

    def canvas(self) -> fashion.CanvasConfig:
        names = {f.name for f in fields(fashion.CanvasConfig)}
        kw = {k: getattr(self, k) for k in names if hasattr(self, k)}
        multi = self.multilabel
        if kw["min_scale"] is None:
            kw["min_scale"] = 0.3 if multi else 0.45
        if kw["max_scale"] is None:
            kw["max_scale"] = 0.55 if multi else 0.8
        if multi and self.max_objects < 1:
            raise CamkitError(f"--max-objects {self.max_objects}: must be at least 1")
        kw["max_objects"] = self.max_objects if multi else 0
        return fashion.CanvasConfig(size=self.image_size, **kw)


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
    """Images read from disk with PIL, resized to S×S; masks resized with nearest."""

    def __init__(self, records: list[Record], image_size: int) -> None:
        if not records:
            raise CamkitError("the split is empty; check --data-root and the list files")
        self.records = records
        self.image_size = image_size
        self.ids = [r.image_id for r in records]
        self.labels = torch.tensor([r.label for r in records], dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict[str, Any]:
        r = self.records[i]
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


def _carve(records: list[Record], cfg: DataConfig, split: str) -> list[Record]:
    """Split ``records`` into train/val deterministically (``val_fraction``, ``split_seed``)."""
    if not 0.0 < cfg.val_fraction < 1.0:
        raise CamkitError(f"--val-fraction {cfg.val_fraction}: must be between 0 and 1")
    perm = np.random.default_rng(cfg.split_seed).permutation(len(records))
    n_val = max(1, int(round(cfg.val_fraction * len(records))))
    idx = np.sort(perm[:n_val] if split == "val" else perm[n_val:])
    return [records[i] for i in idx]


def class_names(cfg: DataConfig) -> list[str]:
    if cfg.dataset in ("fashion", "fashion-multi"):
        return list(fashion.CLASS_NAMES)
    if cfg.dataset == "folder":
        root = Path(cfg.root or "")
        base = root / "train" if (root / "train").is_dir() else root
        return scan_image_folder(base)[1]
    if cfg.dataset == "lab":
        return [str(i) for i in range(10)]
    raise CamkitError(f"--dataset {cfg.dataset}: unknown; choose one of {', '.join(DATASETS)}")


def build_split(cfg: DataConfig, split: str, augment: bool = True) -> Dataset:
    """Build one split: ``train``, ``val`` or ``test`` (the lab layout also has ``seg``).

    Only the requested split is touched, so training never opens the test data. The train
    split gets the configured online augmentation (unless ``augment=False``); the others never do.
    """
    ds = _build_split(cfg, split)
    aug = cfg.augment()
    return Augmented(ds, aug, cfg.image_size) if augment and split == "train" and aug.active else ds


def _build_split(cfg: DataConfig, split: str) -> Dataset:
    if cfg.dataset in ("fashion", "fashion-multi"):
        if split not in fashion.SPLITS:
            raise CamkitError(f"--split {split}: the embedded benchmark has train, val and test")
        cache = Path(cfg.cache_dir) if cfg.cache_dir else None
        d = fashion.load_split(split, cfg.canvas(), cfg.root, cache)
        return ArrayDataset(d["images"], d["labels"], d["masks"], cfg.image_size)
    if cfg.dataset == "folder":
        if not cfg.root:
            raise CamkitError("--data-root is required with --dataset folder")
        root = Path(cfg.root)
        has_splits = (root / "train").is_dir()
        mroot = Path(cfg.mask_root) if cfg.mask_root else None
        if split in ("train", "val"):
            base = root / "train" if has_splits else root
            records, _ = scan_image_folder(
                base, (mroot / "train" if has_splits and mroot and (mroot / "train").is_dir() else mroot)
            )
            records = _carve(records, cfg, split)
        elif split == "test":
            if not has_splits or not (root / "test").is_dir():
                raise CamkitError(
                    f"--data-root {root}: no test/ folder; lay the tree out as train/<class>, test/<class>"
                )
            mtest = mroot / "test" if mroot and (mroot / "test").is_dir() else mroot
            records, _ = scan_image_folder(root / "test", mtest)
        else:
            raise CamkitError(f"--split {split}: an ImageFolder tree has train, val and test")
        check_mask_sizes(records)
        return FileDataset(records, cfg.image_size)
    if cfg.dataset == "lab":
        if not cfg.root:
            raise CamkitError("--data-root is required with --dataset lab")
        if split in ("train", "val"):
            records = _carve(scan_lab_layout(cfg.root, "train"), cfg, split)
        else:
            records = scan_lab_layout(cfg.root, split)
        check_mask_sizes(records)
        return FileDataset(records, cfg.image_size)
    raise CamkitError(f"--dataset {cfg.dataset}: unknown; choose one of {', '.join(DATASETS)}")


def split_ids(ds: Dataset) -> list[str]:
    return list(getattr(ds, "ids", [f"{i:06d}" for i in range(len(ds))]))  # type: ignore[arg-type]
