"""PASCAL VOC 2012 (``VOCdevkit/VOC2012`` as the root), multi-label, as WSSS papers use it.

The tree::

    ROOT/JPEGImages/ID.jpg
    ROOT/SegmentationClass/ID.png            palette PNGs: 0 background, 1..20 classes, 255 ignore
    ROOT/SegmentationClassAug/ID.png         optional: SBD's augmented masks (greyscale class ids)
    ROOT/Annotations/ID.xml                  optional: image-level labels (IRN's cls_labels.npy source)
    ROOT/ImageSets/Segmentation/train.txt    1464 ids
    ROOT/ImageSets/Segmentation/val.txt      1449 ids
    ROOT/ImageSets/Segmentation/train_aug.txt  optional: SBD's 10582 training ids

Splits: ``train`` and ``val`` are the training list (``train_aug.txt`` when present, else
``train.txt``) with ``val_fraction`` held out for validation (seeded by ``split_seed``); ``test`` is
``val.txt`` (the 1449 images every paper reports on); ``seeds`` is ``train.txt`` whole, where
IRN, ReCAM and LPCAM score their seeds. List lines are bare ids or DeepLab's
``/JPEGImages/ID.jpg /SegmentationClassAug/ID.png`` pairs.

Masks come from ``SegmentationClassAug/`` when that folder exists, else ``SegmentationClass/``.
Labels come from ``Annotations/ID.xml`` (every ``object``'s ``name``) when ``Annotations/``
exists, else from the classes present in the mask.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from torch.utils.data import Dataset

from camkit.core.errors import CamkitError, OptionError
from camkit.data.registry import DatasetSource, register_dataset
from camkit.data.segfiles import SegDataset, SegItem, carve, check_items, find_image, read_id_list, seg_item

if TYPE_CHECKING:
    from camkit.data.datasets import DataConfig

log = logging.getLogger(__name__)

CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip


def voc_root(cfg: DataConfig) -> Path:
    """The VOC2012 folder of ``cfg.root``, checked for JPEGImages/ and the list folder."""
    if not cfg.root:
        raise OptionError("root", "is required with the voc dataset: the VOCdevkit/VOC2012 folder")
    root = Path(cfg.root)
    if not (root / "JPEGImages").is_dir() and (root / "VOC2012" / "JPEGImages").is_dir():
        root = root / "VOC2012"  # VOCdevkit given
    for sub in ("JPEGImages", "ImageSets/Segmentation"):
        if not (root / sub).is_dir():
            raise OptionError("root", f"no {sub}/ folder; pass VOCdevkit/VOC2012", root)
    return root


def xml_label(path: Path) -> np.ndarray:
    """The multi-hot (20,) label of a VOC annotation: every ``object``'s ``name``."""
    try:
        tree = ET.parse(path)
    except FileNotFoundError:
        raise CamkitError(
            f"{path}: annotation not found; add it or remove Annotations/ to take labels from the masks"
        ) from None
    except ET.ParseError as e:
        raise CamkitError(f"{path}: malformed XML ({e})") from None
    label = np.zeros(len(CLASSES), dtype=np.float32)
    for obj in tree.getroot().iter("object"):
        name = (obj.findtext("name") or "").strip()
        if name not in CLASSES:
            raise CamkitError(f"{path}: unknown class {name!r}; VOC's classes are {', '.join(CLASSES)}")
        label[CLASSES.index(name)] = 1.0
    return label


def voc_items(root: Path, list_file: Path) -> list[SegItem]:
    """The items of one list file: each id's image (required), mask and label source."""
    aug = root / "SegmentationClassAug"
    mask_dir = aug if aug.is_dir() else root / "SegmentationClass"
    ann = root / "Annotations"
    items = []
    for image_id in read_id_list(list_file):
        img = find_image(root / "JPEGImages", image_id)
        if img is None:
            raise CamkitError(f"{list_file}: no image for id {image_id} (JPEGImages/{image_id}.jpg)")
        mask = mask_dir / f"{image_id}.png"
        label = xml_label(ann / f"{image_id}.xml") if ann.is_dir() else None
        missing = f"id {image_id} in {list_file.name}, and no Annotations/ for its labels"
        items.append(seg_item(image_id, img, mask, label, missing))
    return items


@register_dataset("voc")
class Voc(DatasetSource):
    summary = "PASCAL VOC 2012 (root: VOCdevkit/VOC2012), SBD's train_aug when present; multi-label"
    multilabel = True
    splits = ("train", "val", "test", "seeds")

    def class_names(self, cfg: DataConfig) -> list[str]:
        return list(CLASSES)

    def build(self, cfg: DataConfig, split: str) -> Dataset:
        self.check_split(split)
        root = voc_root(cfg)
        lists = root / "ImageSets" / "Segmentation"
        if split in ("train", "val"):
            aug = lists / "train_aug.txt"
            list_file = aug if aug.is_file() else lists / "train.txt"
            items = carve(voc_items(root, list_file), cfg.val_fraction, cfg.split_seed, split)
        else:
            list_file = lists / ("val.txt" if split == "test" else "train.txt")
            items = voc_items(root, list_file)
        checked, stats = check_items(items, len(CLASSES), f"voc {split} ({list_file.name})")
        return SegDataset(checked, len(CLASSES), cfg.image_size, stats)
