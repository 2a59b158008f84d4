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
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from camkit.core.errors import CamkitError, OptionError
from camkit.core.options import from_dict, option
from camkit.data import fashion
from camkit.data.augment import LEGACY_KEYS, AugmentConfig, Augmented
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

    dataset: str = option(
        "fashion", choices=DATASETS,
        help="fashion (embedded benchmark), fashion-multi (its multi-object, multi-label variant), "
        "folder (ImageFolder tree) or lab (CIFAR-10 lab layout)",
    )  # fmt: skip
    root: str | None = option(
        None, flag="--data-root", default_text="Debian's Fashion-MNIST",
        help="fashion: folder of the IDX .gz files; folder/lab: the tree",
    )  # fmt: skip
    mask_root: str | None = option(None, help="folder: a tree of masks parallel to the images")
    image_size: int = option(64, help="model input side in pixels")
    val_fraction: float = option(0.1, help="folder/lab: share of train held out for validation")
    split_seed: int = option(0, cli=False, help="folder/lab: seed of the train/val split")
    # the embedded benchmark
    n_train: int = option(8000, help="fashion: training canvases")
    n_val: int = option(1000, help="fashion: validation canvases")
    n_test: int = option(1000, help="fashion: test canvases")
    min_scale: float | None = option(
        None,
        cli=False,
        default_text="0.45, fashion-multi 0.3",
        help="fashion: smallest item side / canvas side",
    )
    max_scale: float | None = option(
        None,
        cli=False,
        default_text="0.8, fashion-multi 0.55",
        help="fashion: largest item side / canvas side",
    )
    clutter: int = option(8, cli=False, help="fashion: background clutter strokes per canvas")
    seed: int = option(0, flag="--data-seed", help="fashion: generator seed")
    max_objects: int = option(3, help="fashion-multi: 1 to this many items of distinct classes per canvas")
    cache_dir: str | None = option(
        None,
        default_text="$CAMKIT_CACHE or ~/.cache/camkit",
        help="where generated benchmark splits are cached",
    )
    #: online augmentation of the training split (see camkit.data.augment)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    @classmethod
    def from_dict(cls, d: dict[str, Any], strict: bool = False, where: str = "data") -> DataConfig:
        """From a JSON dict; the flat ``aug_*`` keys of older configs go to ``augment``."""
        d = dict(d)
        legacy = {LEGACY_KEYS[k]: d.pop(k) for k in list(d) if k in LEGACY_KEYS}
        if legacy:
            nested = d.get("augment")
            d["augment"] = {**legacy, **(nested if isinstance(nested, dict) else {})}
        return from_dict(cls, d, strict, where)  # type: ignore[no-any-return]

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
            raise OptionError("max_objects", "must be at least 1", self.max_objects)
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
            raise OptionError("data.root", "the split is empty; check the tree and the list files")
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
        raise OptionError("val_fraction", "must be between 0 and 1", cfg.val_fraction)
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
    raise OptionError("dataset", f"unknown; choose one of {', '.join(DATASETS)}", cfg.dataset)


def build_split(cfg: DataConfig, split: str, augment: bool = True) -> Dataset:
    """Build one split: ``train``, ``val`` or ``test`` (the lab layout also has ``seg``).

    Only the requested split is touched, so training never opens the test data. The train
    split gets the configured online augmentation (unless ``augment=False``); the others never do.
    """
    ds = _build_split(cfg, split)
    aug = cfg.augment
    return Augmented(ds, aug, cfg.image_size) if augment and split == "train" and aug.active else ds


def _build_split(cfg: DataConfig, split: str) -> Dataset:
    if cfg.dataset in ("fashion", "fashion-multi"):
        if split not in fashion.SPLITS:
            raise OptionError("split", "the embedded benchmark has train, val and test", split)
        cache = Path(cfg.cache_dir) if cfg.cache_dir else None
        d = fashion.load_split(split, cfg.canvas(), cfg.root, cache)
        return ArrayDataset(d["images"], d["labels"], d["masks"], cfg.image_size)
    if cfg.dataset == "folder":
        if not cfg.root:
            raise OptionError("data.root", "is required with dataset folder")
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
                raise OptionError(
                    "data.root", "no test/ folder; lay the tree out as train/<class>, test/<class>", root
                )
            mtest = mroot / "test" if mroot and (mroot / "test").is_dir() else mroot
            records, _ = scan_image_folder(root / "test", mtest)
        else:
            raise OptionError("split", "an ImageFolder tree has train, val and test", split)
        check_mask_sizes(records)
        return FileDataset(records, cfg.image_size)
    if cfg.dataset == "lab":
        if not cfg.root:
            raise OptionError("data.root", "is required with dataset lab")
        if split in ("train", "val"):
            records = _carve(scan_lab_layout(cfg.root, "train"), cfg, split)
        else:
            records = scan_lab_layout(cfg.root, split)
        check_mask_sizes(records)
        return FileDataset(records, cfg.image_size)
    raise OptionError("dataset", f"unknown; choose one of {', '.join(DATASETS)}", cfg.dataset)


def image_folder_dataset(folder: str | Path, image_size: int) -> FileDataset:
    """Every image under ``folder`` (recursively, sorted), unlabelled (-1), ids relative to it."""
    from camkit.data.folders import IMAGE_EXTS

    root = Path(folder)
    if not root.is_dir():
        raise OptionError("images", "folder not found", root)
    paths = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
    if not paths:
        raise OptionError("images", f"no images found (extensions: {', '.join(IMAGE_EXTS)})", root)
    ds = FileDataset([Record(p, -1) for p in paths], image_size)
    ds.ids = [str(p.relative_to(root).with_suffix("")) for p in paths]
    return ds


def split_ids(ds: Dataset) -> list[str]:
    return list(getattr(ds, "ids", [f"{i:06d}" for i in range(len(ds))]))  # type: ignore[arg-type]
