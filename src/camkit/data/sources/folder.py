"""Any ImageFolder tree: ``ROOT/<class>/<image>`` or ``ROOT/{train,test}/<class>/<image>``, with
an optional parallel tree of masks (``mask_root``); val is carved out of train."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from torch.utils.data import Dataset

from camkit.core.errors import OptionError
from camkit.data.base import FileDataset, carve_split
from camkit.data.folders import check_mask_sizes, scan_image_folder
from camkit.data.registry import DatasetSource, register_dataset

if TYPE_CHECKING:
    from camkit.data.datasets import DataConfig


def _root(cfg: DataConfig) -> Path:
    if not cfg.root:
        raise OptionError("root", "is required with the folder dataset: the ImageFolder tree")
    return Path(cfg.root)


@register_dataset("folder")
class Folder(DatasetSource):
    summary = "an ImageFolder tree (root), masks optional (mask_root)"

    def class_names(self, cfg: DataConfig) -> list[str]:
        root = _root(cfg)
        base = root / "train" if (root / "train").is_dir() else root
        return scan_image_folder(base)[1]

    def build(self, cfg: DataConfig, split: str) -> Dataset:
        self.check_split(split)
        root = _root(cfg)
        has_splits = (root / "train").is_dir()
        mroot = Path(cfg.mask_root) if cfg.mask_root else None
        if split in ("train", "val"):
            base = root / "train" if has_splits else root
            mtrain = mroot / "train" if has_splits and mroot and (mroot / "train").is_dir() else mroot
            records, _ = scan_image_folder(base, mtrain)
            records = carve_split(records, cfg.val_fraction, cfg.split_seed, split)
        else:
            if not has_splits or not (root / "test").is_dir():
                raise OptionError(
                    "root", "no test/ folder; lay the tree out as train/<class>, test/<class>", root
                )
            mtest = mroot / "test" if mroot and (mroot / "test").is_dir() else mroot
            records, _ = scan_image_folder(root / "test", mtest)
        check_mask_sizes(records)
        return FileDataset(records, cfg.image_size)
