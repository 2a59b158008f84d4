"""One config for every data source, and the split builder that dispatches to the registered
source (:mod:`camkit.data.registry`, one file per source in :mod:`camkit.data.sources`).
The sample format is in :mod:`camkit.data.base`.

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

from torch.utils.data import Dataset

from camkit.core.errors import CamkitError
from camkit.data import fashion
from camkit.data.augment import AugmentConfig, Augmented
from camkit.data.base import dataset_len
from camkit.data.registry import dataset_names, get_dataset

log = logging.getLogger(__name__)

DATASETS = dataset_names()  # the registered sources (camkit.data.sources)


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
        return get_dataset(self.dataset).multilabel

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


def class_names(cfg: DataConfig) -> list[str]:
    """The class names of ``cfg``'s dataset, in label order."""
    return get_dataset(cfg.dataset).class_names(cfg)


def build_split(cfg: DataConfig, split: str, augment: bool = True) -> Dataset:
    """Build one split: ``train``, ``val`` or ``test`` (the lab layout also has ``seg``).

    Only the requested split is touched, so training never opens the test data. The train
    split gets the configured online augmentation (unless ``augment=False``); the others never do.
    """
    ds = get_dataset(cfg.dataset).build(cfg, split)
    aug = cfg.augment()
    return Augmented(ds, aug, cfg.image_size) if augment and split == "train" and aug.active else ds


def split_ids(ds: Dataset) -> list[str]:
    return list(getattr(ds, "ids", [f"{i:06d}" for i in range(dataset_len(ds))]))
