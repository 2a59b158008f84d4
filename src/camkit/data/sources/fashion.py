"""The embedded benchmark: Fashion-MNIST items on cluttered canvases (:mod:`camkit.data.fashion`),
single-object (``fashion``) and multi-object, multi-label (``fashion-multi``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from torch.utils.data import Dataset

from camkit.data import fashion
from camkit.data.base import ArrayDataset
from camkit.data.registry import DatasetSource, register_dataset

if TYPE_CHECKING:
    from camkit.data.datasets import DataConfig


@register_dataset("fashion")
class Fashion(DatasetSource):
    summary = "the embedded benchmark: one Fashion-MNIST item per canvas, exact masks (default)"
    splits = fashion.SPLITS

    def class_names(self, cfg: DataConfig) -> list[str]:
        return list(fashion.CLASS_NAMES)

    def build(self, cfg: DataConfig, split: str) -> Dataset:
        self.check_split(split)
        cache = Path(cfg.cache_dir) if cfg.cache_dir else None
        d = self.load_split(cfg, split, cache)
        return ArrayDataset(d["images"], d["labels"], d["masks"], cfg.image_size)

    def load_split(self, cfg: DataConfig, split: str, cache: Path | None) -> dict[str, np.ndarray]:
        """The generated arrays of ``split`` (images, labels, masks, ...), cached in ``cache``."""
        return fashion.load_split(split, cfg.canvas(), cfg.root, cache)


@register_dataset("fashion-multi")
class FashionMulti(Fashion):
    summary = "its multi-object, multi-label variant: 1 to max_objects items, VOC-style class masks"
    multilabel = True
