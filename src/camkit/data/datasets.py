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
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from camkit.core.errors import OptionError
from camkit.core.options import from_dict, option
from camkit.data import fashion
from camkit.data.augment import LEGACY_KEYS, AugmentConfig, Augmented
from camkit.data.base import FileDataset, dataset_len
from camkit.data.folders import Record, find_images
from camkit.data.registry import dataset_names, get_dataset

log = logging.getLogger(__name__)

DATASETS = dataset_names()  # the registered sources (camkit.data.sources)
MIN_IMAGE_SIZE = 16  # the smallest input side the backbones and the canvas generator take


@dataclass
class DataConfig:
    """Where the data comes from and how it is shaped."""

    dataset: str = option(
        "fashion", choices=DATASETS,
        help="fashion (embedded benchmark), fashion-multi (its multi-object, multi-label variant), "
        "fashion-context[-multi] (context and co-occurrence benchmark), "
        "folder (ImageFolder tree), lab (CIFAR-10 lab layout), voc, coco or wsol (docs/datasets.md)",
    )  # fmt: skip
    root: str | None = option(
        None, flag="--data-root", default_text="Debian's Fashion-MNIST",
        help="fashion: folder of the IDX .gz files; folder/lab/voc/coco/wsol: the tree (docs/datasets.md)",
    )  # fmt: skip
    mask_root: str | None = option(
        None,
        help="folder: a tree of masks parallel to the images; wsol: the root of localization.txt's mask paths",
    )
    metadata_root: str | None = option(
        None,
        default_text="ROOT/metadata",
        help="wsol: wsolevaluation's metadata/<NAME> (train/, val/, test/)",
    )
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
    # the context benchmark (camkit.data.context)
    canvas_size: int = option(112, help="fashion-context: canvas side in pixels (resized to image_size)")
    p_context: float = option(
        0.9, help="fashion-context: probability that a canvas shows its class's background"
    )
    p_cooccur: float = option(
        0.7, help="fashion-context-multi: probability that a class's fixed partner class is on the canvas too"
    )
    p_occlude: float = option(
        0.3, help="fashion-context: probability that a background patch hides part of an item"
    )
    p_crop: float = option(0.3, help="fashion-context: probability that an item sticks out of the canvas")
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
        return from_dict(cls, d, strict, where)

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
        for name in ("n_train", "n_val", "n_test"):
            if getattr(self, name) < 1:
                raise OptionError(name, "must be at least 1 canvas", getattr(self, name))
        if multi and self.max_objects < 1:
            raise OptionError("max_objects", "must be at least 1", self.max_objects)
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
    if cfg.image_size < MIN_IMAGE_SIZE:
        raise OptionError("image_size", f"must be at least {MIN_IMAGE_SIZE} pixels", cfg.image_size)
    ds = get_dataset(cfg.dataset).build(cfg, split)
    aug = cfg.augment
    out = Augmented(ds, aug, cfg.image_size) if augment and split == "train" and aug.active else ds
    setattr(out, "source_config", (asdict(cfg), split))  # what made it, for artifacts' provenance  # noqa: B010
    return out


def image_folder_dataset(folder: str | Path, image_size: int) -> FileDataset:
    """Every image under ``folder`` (recursively, sorted), unlabelled (-1), ids relative to it
    (unique: the path without suffix, or with it where two files differ only by suffix)."""
    root = Path(folder)
    paths = find_images(root)
    ds = FileDataset([Record(p, -1) for p in paths], image_size)
    rel = [p.relative_to(root).as_posix() for p in paths]
    stems = [str(Path(r).with_suffix("")) for r in rel]
    # ids are the relative paths without suffix; where two files differ only by suffix
    # (x.png, x.jpg) both keep theirs, so every id is unique
    seen = Counter(stems)
    ds.ids = [r if seen[s] > 1 else s for r, s in zip(rel, stems, strict=True)]
    return ds


def split_ids(ds: Dataset) -> list[str]:
    return list(getattr(ds, "ids", [f"{i:06d}" for i in range(dataset_len(ds))]))
