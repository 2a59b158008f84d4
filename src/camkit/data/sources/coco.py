"""MS COCO 2014 in the WSSS convention (IRN, RIB, AMN, ReCAM, LPCAM): images plus per-image
class-index PNGs and image-level labels; multi-label, 80 classes.

The tree::

    ROOT/train2014/ID.jpg            images (COCO_train2014_000000000009.jpg)
    ROOT/val2014/ID.jpg
    ROOT/SegmentationClass/train2014/ID.png   class ids: 0 background, 1..80, 255 ignore (L or P PNG)
    ROOT/SegmentationClass/val2014/ID.png
    ROOT/train.txt, ROOT/val.txt     optional: the ids to use (default: every image of the folder)
    ROOT/cls_labels.npy              optional: {id: (80,) multi-hot} (IRN's make_cls_labels format)
    ROOT/class_names.txt             optional: one class name per line (default: COCO's 80)

An id in a list or in ``cls_labels.npy`` is an image's file stem, or a bare COCO number
(``9`` or ``000000000009``; numeric keys too), which names ``COCO_<folder>_<12 digits>``.
Labels come from ``cls_labels.npy`` when it exists (every image needs an entry), else from
the classes present in the mask. Splits: ``train`` and ``val`` are train2014 with
``val_fraction`` held out (seeded by ``split_seed``); ``test`` is val2014 (where COCO seeds and
segmentations are reported); ``seeds`` is train2014 whole.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from torch.utils.data import Dataset

from camkit.core.errors import CamkitError, OptionError
from camkit.data.folders import IMAGE_EXTS
from camkit.data.registry import DatasetSource, register_dataset
from camkit.data.segfiles import SegDataset, SegItem, carve, check_items, find_image, read_id_list, seg_item

if TYPE_CHECKING:
    from camkit.data.datasets import DataConfig

CLASSES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip
FOLDERS = {"train": "train2014", "test": "val2014"}


def _root(cfg: DataConfig) -> Path:
    if not cfg.root:
        raise OptionError(
            "root", "is required with the coco dataset: the folder holding train2014/ and val2014/"
        )
    root = Path(cfg.root)
    if not root.is_dir():
        raise OptionError("root", "folder not found", root)
    return root


def coco_classes(root: Path) -> list[str]:
    """``ROOT/class_names.txt`` (one per line) when present, else COCO's 80 classes."""
    f = root / "class_names.txt"
    if not f.is_file():
        return list(CLASSES)
    names = [ln.strip() for ln in f.read_text().splitlines() if ln.strip()]
    if not names or len(set(names)) != len(names):
        raise CamkitError(f"{f}: give one distinct class name per line")
    return names


def _stem(image_id: str, folder: str) -> str:
    """A bare COCO number names ``COCO_<folder>_<12 digits>``; anything else is a stem."""
    return f"COCO_{folder}_{int(image_id):012d}" if image_id.isdigit() else image_id


def load_cls_labels(path: Path, num_classes: int) -> dict[str, np.ndarray]:
    """``cls_labels.npy``: a pickled {id: (K,) multi-hot} dict (a trusted file), keys as strings."""
    try:
        d = np.load(path, allow_pickle=True).item()
    except (OSError, ValueError, AttributeError, EOFError) as e:
        raise CamkitError(
            f"{path}: cannot read ({e.__class__.__name__}); expected np.save of a dict id -> label"
        ) from None
    if not isinstance(d, dict):
        raise CamkitError(f"{path}: expected a dict id -> (K,) multi-hot label")
    out: dict[str, np.ndarray] = {}
    for k, v in d.items():
        a = np.asarray(v, dtype=np.float32).reshape(-1)
        if a.shape != (num_classes,) or not np.isin(a, (0.0, 1.0)).all():
            raise CamkitError(f"{path}: the label of {k!r} is not a ({num_classes},) 0/1 vector")
        out[str(k)] = a
    return out


def _label(labels: dict[str, np.ndarray], image_id: str, stem: str, path: Path) -> np.ndarray:
    tail = stem.rsplit("_", 1)[-1]  # COCO_train2014_000000000009 -> its number, 9
    for key in (image_id, stem, str(int(tail)) if tail.isdigit() else None):
        if key is not None and key in labels:
            return labels[key]
    raise CamkitError(
        f"{path}: no label for image {stem}; add it or remove the file to take labels from the masks"
    )


def coco_items(root: Path, split: str, num_classes: int) -> list[SegItem]:
    """The items of one folder (train2014 or val2014), in list order or sorted by name."""
    folder = FOLDERS[split]
    img_dir, mask_dir = root / folder, root / "SegmentationClass" / folder
    if not img_dir.is_dir():
        raise OptionError("root", f"no {folder}/ folder of images", root)
    list_file = root / f"{'train' if split == 'train' else 'val'}.txt"
    if list_file.is_file():
        ids = read_id_list(list_file)
    else:
        ids = sorted(p.stem for p in img_dir.iterdir() if p.suffix.lower() in IMAGE_EXTS)
    npy = root / "cls_labels.npy"
    labels: dict[str, Any] | None = load_cls_labels(npy, num_classes) if npy.is_file() else None
    items = []
    for image_id in ids:
        stem = _stem(image_id, folder)
        img = find_image(img_dir, stem)
        if img is None:
            raise CamkitError(
                f"{list_file if list_file.is_file() else img_dir}: no image for id {image_id} ({folder}/{stem}.jpg)"
            )
        mask = mask_dir / f"{stem}.png"
        label = _label(labels, image_id, stem, npy) if labels is not None else None
        items.append(seg_item(stem, img, mask, label, f"{stem}, and no cls_labels.npy for its labels"))
    return items


@register_dataset("coco")
class Coco(DatasetSource):
    summary = "MS COCO 2014, WSSS convention (root: train2014/, val2014/, SegmentationClass/); multi-label"
    multilabel = True
    splits = ("train", "val", "test", "seeds")

    def class_names(self, cfg: DataConfig) -> list[str]:
        return coco_classes(_root(cfg))

    def build(self, cfg: DataConfig, split: str) -> Dataset:
        self.check_split(split)
        root = _root(cfg)
        k = len(coco_classes(root))
        items = coco_items(root, "test" if split == "test" else "train", k)
        if split in ("train", "val"):
            items = carve(items, cfg.val_fraction, cfg.split_seed, split)
        checked, stats = check_items(items, k, f"coco {split}")
        return SegDataset(checked, k, cfg.image_size, stats)
