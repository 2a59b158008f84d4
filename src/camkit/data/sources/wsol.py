"""WSOL data in clovaai/wsolevaluation's metadata format (CUB, ImageNet, OpenImages); single-label.

The images live under ``root`` (wsolevaluation's ``dataset/<NAME>``, which the ids are relative
to); the metadata under ``metadata_root`` (its ``metadata/<NAME>``; default ``ROOT/metadata``),
one folder per split, ``train/``, ``val/``, ``test/``::

    image_ids.txt      one image path per line
    class_labels.txt   path,class            (class: 0..K-1)
    localization.txt   optional; either boxes, path,x0,y0,x1,y1 (several lines per image for
                       several boxes; CUB, ImageNet), or masks, path,mask.png,ignore.png
                       (several lines per image for several instances, the ignore mask on the
                       first only; OpenImages), mask paths relative to ``mask_root`` (default ROOT)
    image_sizes.txt    optional: path,width,height; the sizes boxes are rescaled from (else the
                       images' headers)
    class_names.txt    optional, in the metadata root: one class name per line

Boxes are in original-image pixels and are rescaled to the model's input side as
wsolevaluation's ``resize_bbox`` does (``int(x · S / W)``, W and H from ``image_sizes.txt``); ``gt_boxes`` holds them for
MaxBoxAcc, and the sample's mask is the union of the boxes (``masks_from_boxes``: there is no
PxAP without real masks). Masks are resized to the input side with nearest-neighbour, as
wsolevaluation resizes them to 224 whatever their size: the union of the instances is the
foreground (1) and the ignore mask minus the foreground is 255, which PxAP skips; the count of
ignored pixels is logged. Images listed without a localization train but are not scored (logged).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from camkit.core.errors import CamkitError, OptionError
from camkit.data.base import _sample
from camkit.data.folders import image_size as header_size
from camkit.data.folders import read_image
from camkit.data.registry import DatasetSource, register_dataset

if TYPE_CHECKING:
    from camkit.data.datasets import DataConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WsolItem:
    """One image: id, path, class, boxes (K, 4) x0y0x1y1 in its own pixels (None: none),
    instance mask paths and ignore mask path (masks format)."""

    image_id: str
    path: Path
    label: int
    boxes: np.ndarray | None = None
    masks: tuple[Path, ...] = ()
    ignore: Path | None = None
    size: tuple[int, int] = (0, 0)  # (W, H) of an image with boxes


def _roots(cfg: DataConfig) -> tuple[Path, Path, Path]:
    if not cfg.root:
        raise OptionError(
            "root", "is required with the wsol dataset: the folder the image ids are relative to"
        )
    root = Path(cfg.root)
    meta = Path(cfg.metadata_root) if cfg.metadata_root else root / "metadata"
    if not meta.is_dir():
        raise OptionError(
            "metadata_root", "folder not found; pass wsolevaluation's metadata/<NAME> folder", meta
        )
    return root, meta, Path(cfg.mask_root) if cfg.mask_root else root


def _lines(path: Path, fields: tuple[int, ...], what: str) -> list[tuple[int, list[str]]]:
    """(line number, comma-separated fields) of a metadata file; each line has one of ``fields`` counts."""
    if not path.is_file():
        raise CamkitError(f"{path}: not found; wsolevaluation's metadata has it for every split")
    out = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) not in fields:
            raise CamkitError(f"{path}:{n}: expected {what}, got {line.strip()!r}")
        out.append((n, parts))
    if not out:
        raise CamkitError(f"{path}: the file is empty")
    return out


def read_class_labels(path: Path) -> dict[str, int]:
    labels = {}
    for n, (image_id, lab) in _lines(path, (2,), "'path,class'"):
        if not lab.isdigit():
            raise CamkitError(f"{path}:{n}: class {lab!r} is not a whole number")
        labels[image_id] = int(lab)
    return labels


def wsol_classes(meta: Path) -> list[str]:
    """``class_names.txt`` of the metadata root, else "0".."K-1" with K one above the largest class."""
    f = meta / "class_names.txt"
    if f.is_file():
        names = [ln.strip() for ln in f.read_text().splitlines() if ln.strip()]
        if names:
            return names
    top = -1
    for split in ("train", "val", "test"):
        if (meta / split / "class_labels.txt").is_file():
            top = max(top, *read_class_labels(meta / split / "class_labels.txt").values())
    if top < 0:
        raise OptionError("metadata_root", "no split folder with a class_labels.txt", meta)
    return [str(i) for i in range(top + 1)]


def _box(path: Path, n: int, parts: list[str], size: tuple[int, int]) -> list[int]:
    try:
        x0, y0, x1, y1 = (int(float(v)) for v in parts[1:])
    except ValueError:
        raise CamkitError(
            f"{path}:{n}: box coordinates must be numbers, got {','.join(parts[1:])!r}"
        ) from None
    w, h = size
    if not (0 <= x0 <= x1 <= w and 0 <= y0 <= y1 <= h):
        raise CamkitError(
            f"{path}:{n}: box ({x0}, {y0}, {x1}, {y1}) is not x0<=x1, y0<=y1 inside the {w}x{h} image"
        )
    return [x0, y0, x1, y1]


def read_image_sizes(path: Path) -> dict[str, tuple[int, int]]:
    """``image_sizes.txt``: path,width,height per line."""
    sizes = {}
    for n, (image_id, w, h) in _lines(path, (3,), "'path,width,height'"):
        if not (w.isdigit() and h.isdigit() and int(w) > 0 and int(h) > 0):
            raise CamkitError(
                f"{path}:{n}: width and height must be positive whole numbers, got {w!r}, {h!r}"
            )
        sizes[image_id] = (int(w), int(h))
    return sizes


def _sizes(d: Path, items: dict[str, WsolItem]) -> Callable[[str], tuple[int, int]]:
    """An image's (W, H): from ``image_sizes.txt`` when the split has one (as wsolevaluation
    rescales boxes), else from the image's header."""
    f = d / "image_sizes.txt"
    table = read_image_sizes(f) if f.is_file() else None

    def size_of(image_id: str) -> tuple[int, int]:
        if table is None:
            return header_size(items[image_id].path)
        if image_id not in table:
            raise CamkitError(f"{f}: no size for {image_id}; add 'path,width,height' or remove the file")
        return table[image_id]

    return size_of


def _localization(path: Path, items: dict[str, WsolItem], mask_root: Path) -> dict[str, dict[str, Any]]:
    """Boxes or mask paths per image id from ``localization.txt``."""
    size_of = _sizes(path.parent, items)
    loc: dict[str, dict[str, Any]] = {}
    rows = _lines(path, (5, 3), "'path,x0,y0,x1,y1' (boxes) or 'path,mask,ignore' (masks)")
    kinds = {len(p) for _, p in rows}
    if len(kinds) > 1:
        raise CamkitError(f"{path}: mixes box lines (5 fields) and mask lines (3 fields); use one kind")
    for n, parts in rows:
        image_id = parts[0]
        if image_id not in items:
            raise CamkitError(f"{path}:{n}: image {image_id} is not in image_ids.txt")
        entry = loc.setdefault(image_id, {"boxes": [], "masks": [], "ignore": None, "size": (0, 0)})
        if len(parts) == 5:
            if not entry["boxes"]:
                entry["size"] = size_of(image_id)
            entry["boxes"].append(_box(path, n, parts, entry["size"]))
            continue
        mask = mask_root / parts[1]
        if not mask.is_file():
            raise CamkitError(
                f"{path}:{n}: mask {mask} does not exist; check {{mask_root}}", refs={"mask_root": None}
            )
        entry["masks"].append(mask)
        if parts[2]:
            if entry["ignore"] is not None:
                raise CamkitError(
                    f"{path}:{n}: a second ignore mask for {image_id}; give it on the first line only"
                )
            if not (mask_root / parts[2]).is_file():
                raise CamkitError(f"{path}:{n}: ignore mask {mask_root / parts[2]} does not exist")
            entry["ignore"] = mask_root / parts[2]
    return loc


def wsol_items(root: Path, meta: Path, mask_root: Path, split: str, num_classes: int) -> list[WsolItem]:
    """The items of one split, in image_ids.txt order, checked."""
    d = meta / split
    ids_file, labels_file = d / "image_ids.txt", d / "class_labels.txt"
    labels = read_class_labels(labels_file)
    items: dict[str, WsolItem] = {}
    for n, (image_id,) in _lines(ids_file, (1,), "one image path"):
        if image_id not in labels:
            raise CamkitError(f"{labels_file}: no class for {image_id} (image_ids.txt line {n})")
        if not 0 <= labels[image_id] < num_classes:
            raise CamkitError(
                f"{labels_file}: unknown class id {labels[image_id]} for {image_id} (0..{num_classes - 1})"
            )
        path = root / image_id
        if not path.is_file():
            raise CamkitError(
                f"{ids_file}:{n}: no image for id {image_id} ({path}); check {{root}}", refs={"root": None}
            )
        items[image_id] = WsolItem(image_id, path, labels[image_id])
    loc_file = d / "localization.txt"
    loc = _localization(loc_file, items, mask_root) if loc_file.is_file() else {}
    out = []
    for image_id, it in items.items():
        e = loc.get(image_id)
        if e is not None:
            boxes = np.asarray(e["boxes"], dtype=np.int64).reshape(-1, 4) if e["boxes"] else None
            it = WsolItem(image_id, it.path, it.label, boxes, tuple(e["masks"]), e["ignore"], e["size"])
        out.append(it)
    if loc and len(loc) < len(out):
        log.warning("wsol %s: %d of %d images have no localization in %s; they are not scored",
                    split, len(out) - len(loc), len(out), loc_file)  # fmt: skip
    return out


def resize_box(box: np.ndarray | tuple[int, ...], size: tuple[int, int], new: tuple[int, int]) -> np.ndarray:
    """wsolevaluation's ``resize_bbox``: (x0, y0, x1, y1) in a W×H image -> in a new W'×H' one."""
    (w, h), (nw, nh) = size, new
    return np.array([int(box[0] * nw / w), int(box[1] * nh / h), int(box[2] * nw / w), int(box[3] * nh / h)])


def _binary(path: Path, side: int) -> torch.Tensor:
    """A mask file as (side, side) bool: grey > 0, resized with OpenCV's nearest-neighbour
    exactly as wsolevaluation's ``load_mask_image`` (torch's nearest picks other pixels)."""
    import cv2

    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("L")) > 0
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise CamkitError(f"{path}: cannot read this mask ({e.__class__.__name__}); replace it") from None
    return torch.from_numpy(
        cv2.resize(arr.astype(np.uint8), (side, side), interpolation=cv2.INTER_NEAREST) > 0
    )


class WsolDataset(Dataset):
    """wsolevaluation's images, resized to S×S; samples as in :mod:`camkit.data.base` with mask
    1 object, 0 background, 255 ignored (masks format). ``gt_boxes``: per image the (K, 4)
    boxes at S×S (None when the data has masks, not boxes)."""

    def __init__(self, items: list[WsolItem], image_size: int) -> None:
        if not items:
            raise CamkitError("the split is empty; check image_ids.txt")
        self.items = items
        self.image_size = image_size
        self.ids = [it.image_id for it in items]
        self.labels = torch.tensor([it.label for it in items], dtype=torch.int64)
        has_boxes = any(it.boxes is not None for it in items)
        self.masks_from_boxes = has_boxes
        self.gt_boxes: list[np.ndarray] | None = None
        if has_boxes:
            self.gt_boxes = [
                np.stack([resize_box(b, it.size, (self.image_size, self.image_size)) for b in it.boxes])
                if it.boxes is not None else np.zeros((0, 4), np.int64)
                for it in items
            ]  # fmt: skip

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        it, s = self.items[i], self.image_size
        img = torch.from_numpy(np.asarray(read_image(it.path)).copy()).permute(2, 0, 1).float().div_(255.0)
        img = F.interpolate(img[None], size=(s, s), mode="bilinear", align_corners=False, antialias=True)[0]
        return _sample(
            img.clamp_(0, 1), self.labels[i], self.mask(i), it.boxes is not None or bool(it.masks), i, s
        )

    def mask(self, i: int) -> torch.Tensor:
        """Image ``i``'s (S, S) uint8 mask: the boxes' union, or the masks' with 255 ignored."""
        it, s = self.items[i], self.image_size
        mask = torch.zeros((s, s), dtype=torch.uint8)
        if self.gt_boxes is not None:
            for x0, y0, x1, y1 in self.gt_boxes[i].tolist():
                mask[y0 : y1 + 1, x0 : x1 + 1] = 1
        elif it.masks:
            fg = torch.stack([_binary(p, s) for p in it.masks]).any(0)
            mask[fg] = 1
            if it.ignore is not None:
                mask[_binary(it.ignore, s) & ~fg] = 255
        return mask


def ignored_pixels(ds: WsolDataset) -> int:
    """The pixels marked 255 (ignored by PxAP) over a masks-format split, at the input size."""
    return sum(int((ds.mask(i) == 255).sum()) for i, it in enumerate(ds.items) if it.ignore is not None)


@register_dataset("wsol")
class Wsol(DatasetSource):
    summary = (
        "wsolevaluation's metadata (root: images, metadata_root: metadata/<NAME>): CUB, ImageNet, OpenImages"
    )

    def class_names(self, cfg: DataConfig) -> list[str]:
        return wsol_classes(_roots(cfg)[1])

    def build(self, cfg: DataConfig, split: str) -> Dataset:
        self.check_split(split)
        root, meta, mask_root = _roots(cfg)
        items = wsol_items(root, meta, mask_root, split, len(wsol_classes(meta)))
        ds = WsolDataset(items, cfg.image_size)
        if any(it.ignore is not None for it in items):
            n = ignored_pixels(ds)
            log.info(
                "wsol %s: %d pixels at %dx%d are 255 (ignored by PxAP)",
                split,
                n,
                cfg.image_size,
                cfg.image_size,
            )
        return ds
