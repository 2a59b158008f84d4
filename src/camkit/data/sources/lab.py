"""The lab's CIFAR-10 layout (:func:`camkit.data.folders.scan_lab_layout`): list files, test
masks in ``test_seg/`` (split ``seg``); val is carved out of train."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch.utils.data import Dataset

from camkit.core.errors import OptionError
from camkit.data.base import FileDataset, carve_split
from camkit.data.folders import check_mask_sizes, scan_lab_layout
from camkit.data.registry import DatasetSource, register_dataset

if TYPE_CHECKING:
    from camkit.data.datasets import DataConfig


@register_dataset("lab")
class Lab(DatasetSource):
    summary = "the lab's CIFAR-10 layout (root), with the seg split's masks"
    splits = ("train", "val", "test", "seg")

    def class_names(self, cfg: DataConfig) -> list[str]:
        return [str(i) for i in range(10)]

    def build(self, cfg: DataConfig, split: str) -> Dataset:
        if not cfg.root:
            raise OptionError("root", "is required with the lab dataset: the CIFAR-10 lab tree")
        if split in ("train", "val"):
            records = carve_split(scan_lab_layout(cfg.root, "train"), cfg.val_fraction, cfg.split_seed, split)
        else:
            records = scan_lab_layout(cfg.root, split)
        check_mask_sizes(records)
        return FileDataset(records, cfg.image_size)
