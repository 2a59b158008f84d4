"""The embedded default benchmark: real Fashion-MNIST items on cluttered canvases.

Each sample is one Fashion-MNIST item, scaled and pasted at a random position onto a
canvas of low noise and small fragments of other items ("clutter", after cluttered
MNIST). The label is the item's class; the ground-truth mask is the item's own
silhouette (its visible pixels with holes filled), resized with the item, so it is exact
by construction: every pixel inside the mask shows the item and no pixel outside does.
The box is the tight box of the mask.

Sources: Debian's ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``) or
the official IDX ``.gz`` files in any folder. Generation is deterministic for a seed, and
each split is cached on disk as one ``.npz``.

The multi-object variant (``max_objects`` >= 1, the ``fashion-multi`` dataset) puts 1 to
``max_objects`` items of distinct classes on each canvas, with multi-hot labels and a
per-pixel class mask (0 = background, class + 1 elsewhere), for WSSS-style mIoU with
background as on VOC. Items overlap by at most a quarter of the smaller box; the one in
front owns the shared pixels.

Splits: ``train`` and ``val`` draw items from disjoint parts of the official training
set (the last 6,000 items feed ``val``), ``test`` draws from the official test set.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from scipy import ndimage

from camkit.core.errors import CamkitError, OptionError
from camkit.core.io import atomic_path
from camkit.core.ops import masks_to_boxes

log = logging.getLogger(__name__)

DEBIAN_ROOT = "/usr/share/datasets/fashion-mnist"
CLASS_NAMES = (
    "t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot",
)  # fmt: skip
_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_VAL_ITEMS = 6000  # items held out of the official train set for the val split (at most a tenth)
_GENERATOR_VERSION = 1  # bump when the generator's output changes
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class CanvasConfig:
    """How the canvases are made. Sizes are in pixels, scales are fractions of the canvas side."""

    size: int = 64
    n_train: int = 8000
    n_val: int = 1000
    n_test: int = 1000
    min_scale: float = 0.45
    max_scale: float = 0.8
    clutter: int = 8
    clutter_size: int = 9
    noise: float = 0.08
    seed: int = 0
    max_objects: int = 0  # >= 1: the multi-object variant (1..max_objects items of distinct classes)

    def count(self, split: str) -> int:
        return {"train": self.n_train, "val": self.n_val, "test": self.n_test}[split]


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) into a uint8 array."""
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise CamkitError(
            f"{path}: Fashion-MNIST file not found; install dataset-fashion-mnist or pass {{root}}",
            refs={"root": None},
        ) from None
    except (OSError, EOFError) as e:
        raise CamkitError(f"{path}: cannot read this IDX file ({e}); download it again") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise CamkitError(f"{path}: not an unsigned-byte IDX file; pass the official Fashion-MNIST .gz files")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    if len(data) - offset != int(np.prod(dims)):
        raise CamkitError(f"{path}: truncated IDX file ({len(data) - offset} of {int(np.prod(dims))} bytes)")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(dims)


def find_root(root: str | os.PathLike[str] | None) -> Path:
    """The folder holding the four IDX files; the Debian location when ``root`` is None."""
    path = Path(root) if root else Path(DEBIAN_ROOT)
    if not path.is_dir():
        hint = (
            "apt-get install dataset-fashion-mnist"
            if root is None
            else "pass the folder holding the IDX .gz files"
        )
        raise OptionError("root", f"Fashion-MNIST folder not found; {hint}", path)
    for imgs, labels in _FILES.values():
        for name in (imgs, labels):
            if not (path / name).is_file() and not (path / name[:-3]).is_file():
                raise OptionError(
                    "root", f"{name} is missing; put the four official Fashion-MNIST files there", path
                )
    return path


def _load_items(root: Path, source: str) -> tuple[np.ndarray, np.ndarray]:
    imgs, labels = (root / n if (root / n).is_file() else root / n[:-3] for n in _FILES[source])
    x, y = read_idx(imgs), read_idx(labels)
    if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
        raise CamkitError(f"{imgs}: images and labels do not match ({x.shape} vs {y.shape})")
    return x, y


def _silhouette(item: np.ndarray) -> np.ndarray:
    """The item's filled silhouette: visible pixels (>= 16/255; the faint scanner haze below
    that is not part of the item) with interior holes filled. (28, 28) bool."""
    return ndimage.binary_fill_holes(item >= 16)


def item_patch(item: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """The (28, 28) uint8 item resized to side×side: (intensity (side, side) float32 in [0, 1],
    silhouette (side, side) bool, the filled silhouette resized with the item)."""
    img = Image.fromarray(item).resize((side, side), Image.Resampling.BILINEAR)
    sil = Image.fromarray(_silhouette(item).astype(np.uint8) * 255)
    alpha = np.asarray(sil.resize((side, side), Image.Resampling.BILINEAR)) >= 128
    return np.asarray(img, np.float32) / 255.0, alpha


def _paste(canvas: np.ndarray, patch: np.ndarray, y: int, x: int, mask: np.ndarray | None = None) -> None:
    h, w = patch.shape
    region = canvas[y : y + h, x : x + w]
    if mask is None:
        np.maximum(region, patch, out=region)
    else:
        region[mask] = patch[mask]


def _background(rng: np.random.Generator, items: np.ndarray, cfg: CanvasConfig) -> np.ndarray:
    """Low noise and ``cfg.clutter`` fragments of random other items: (S, S) float32 in [0, 1]."""
    s, k = cfg.size, cfg.clutter_size
    canvas = rng.random((s, s), dtype=np.float32) * cfg.noise
    for _ in range(cfg.clutter):
        src = items[rng.integers(len(items))].astype(np.float32) / 255.0
        cy, cx = rng.integers(0, 28 - k + 1, size=2)
        frag = src[cy : cy + k, cx : cx + k] * rng.uniform(0.4, 1.0)
        py, px = rng.integers(0, s - k + 1, size=2)
        _paste(canvas, frag, int(py), int(px))
    return canvas


def _split_items(root: Path, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(items, labels, pool): the source set of ``split`` and the item indices it may draw
    (train and val share the official training set, disjointly; test uses the test set)."""
    if split not in SPLITS:
        raise CamkitError(f"split {split!r}: unknown; choose one of {', '.join(SPLITS)}")
    x, y = _load_items(root, "test" if split == "test" else "train")
    n_val_items = max(1, min(_VAL_ITEMS, len(x) // 10))
    if split == "train":
        pool = np.arange(0, len(x) - n_val_items)
    elif split == "val":
        pool = np.arange(len(x) - n_val_items, len(x))
    else:
        pool = np.arange(len(x))
    return x, y, pool


def make_canvas(
    rng: np.random.Generator, items: np.ndarray, index: int, cfg: CanvasConfig
) -> tuple[np.ndarray, np.ndarray]:
    """One canvas showing ``items[index]``: returns (image (S, S) uint8, mask (S, S) bool)."""
    s = cfg.size
    canvas = _background(rng, items, cfg)
    side = int(round(rng.uniform(cfg.min_scale, cfg.max_scale) * s))
    obj, mask_local = item_patch(items[index], side)
    oy, ox = rng.integers(0, s - side + 1, size=2)
    _paste(canvas, obj, int(oy), int(ox), mask_local)
    mask = np.zeros((s, s), dtype=bool)
    mask[oy : oy + side, ox : ox + side] = mask_local
    return np.clip(canvas * 255.0 + 0.5, 0, 255).astype(np.uint8), mask


def generate_split(root: Path, split: str, cfg: CanvasConfig) -> dict[str, np.ndarray]:
    """Generate one split (no caching). Arrays: images (N,S,S) uint8, masks (N,S,S) bool,
    labels (N,) int64, boxes (N,4) int32 inclusive xyxy, items (N,) source item index."""
    x, y, pool = _split_items(root, split)
    n = cfg.count(split)
    split_id = SPLITS.index(split)
    order = np.random.default_rng([cfg.seed, split_id, 0]).permutation(pool)
    chosen = order[np.arange(n) % len(order)]
    images = np.empty((n, cfg.size, cfg.size), np.uint8)
    masks = np.empty((n, cfg.size, cfg.size), bool)
    boxes = np.empty((n, 4), np.int32)
    for i, idx in enumerate(chosen):
        rng = np.random.default_rng([cfg.seed, split_id, 1, i])
        images[i], masks[i] = make_canvas(rng, x, int(idx), cfg)
    boxes[:] = torch.cat(masks_to_boxes(torch.from_numpy(masks))).numpy()  # every canvas has an item
    return {
        "images": images,
        "masks": masks,
        "labels": y[chosen].astype(np.int64),
        "boxes": boxes,
        "items": chosen.astype(np.int64),
    }


def _place(rng: np.random.Generator, side: int, s: int, boxes: list[tuple[int, int, int]]) -> tuple[int, int]:
    """A top-left corner for a side×side item whose box overlaps each earlier box by at most a
    quarter of the smaller one (20 tries; the last try is kept, so occlusion stays possible)."""
    oy = ox = 0
    for _ in range(20):
        oy, ox = (int(v) for v in rng.integers(0, s - side + 1, size=2))
        if overlap_ok(oy, ox, side, boxes):
            break
    return oy, ox


def overlap_ok(y: int, x: int, side: int, boxes: list[tuple[int, int, int]]) -> bool:
    """Whether a side×side box at (y, x) overlaps each (y, x, side) box in ``boxes`` by at most
    a quarter of the smaller box's area."""
    for by, bx, bs in boxes:
        iy = max(0, min(y + side, by + bs) - max(y, by))
        ix = max(0, min(x + side, bx + bs) - max(x, bx))
        if iy * ix > 0.25 * min(side, bs) ** 2:
            return False
    return True


def make_multi_canvas(
    rng: np.random.Generator, items: np.ndarray, chosen: list[int], cfg: CanvasConfig
) -> tuple[np.ndarray, np.ndarray]:
    """One canvas showing ``items[chosen]`` (distinct classes), pasted in order, later items
    in front. Returns (image (S, S) uint8, class mask (S, S) uint8 with 0 = background and
    the 1-based *position in chosen* for each item's visible pixels)."""
    s = cfg.size
    canvas = _background(rng, items, cfg)
    mask = np.zeros((s, s), dtype=np.uint8)
    boxes: list[tuple[int, int, int]] = []
    for j, index in enumerate(chosen):
        side = int(round(rng.uniform(cfg.min_scale, cfg.max_scale) * s))
        obj, mask_local = item_patch(items[index], side)
        oy, ox = _place(rng, side, s, boxes)
        boxes.append((oy, ox, side))
        _paste(canvas, obj, oy, ox, mask_local)
        mask[oy : oy + side, ox : ox + side][mask_local] = j + 1
    return np.clip(canvas * 255.0 + 0.5, 0, 255).astype(np.uint8), mask


def generate_multi_split(root: Path, split: str, cfg: CanvasConfig) -> dict[str, np.ndarray]:
    """The multi-object variant: each canvas shows 1..``cfg.max_objects`` items of distinct
    classes (uniform count). Arrays: images (N,S,S) uint8; masks (N,S,S) uint8 with 0 for
    background and class+1 for each item's visible pixels (VOC style); labels (N,K) uint8
    multi-hot of the classes still visible; items (N, max_objects) source indices, -1 padded."""
    x, y, pool = _split_items(root, split)
    k_cls = len(CLASS_NAMES)
    by_class = [pool[y[pool] == c] for c in range(k_cls)]
    present = [c for c in range(k_cls) if len(by_class[c])]
    n, m = cfg.count(split), cfg.max_objects
    split_id = SPLITS.index(split)
    images = np.empty((n, cfg.size, cfg.size), np.uint8)
    masks = np.empty((n, cfg.size, cfg.size), np.uint8)
    labels = np.zeros((n, k_cls), np.uint8)
    items_out = np.full((n, m), -1, np.int64)
    for i in range(n):
        rng = np.random.default_rng([cfg.seed, split_id, 2, i])
        count = min(int(rng.integers(1, m + 1)), len(present))
        classes = [int(c) for c in rng.choice(present, size=count, replace=False)]
        chosen = [int(by_class[c][rng.integers(len(by_class[c]))]) for c in classes]
        images[i], local = make_multi_canvas(rng, x, chosen, cfg)
        cls_lut = np.array([0] + [c + 1 for c in classes], dtype=np.uint8)
        masks[i] = cls_lut[local]
        for c in classes:
            if (masks[i] == c + 1).any():
                labels[i, c] = 1
        items_out[i, :count] = chosen
    return {"images": images, "masks": masks, "labels": labels, "items": items_out}


def cache_dir() -> Path:
    """Where generated splits are cached: $CAMKIT_CACHE, else ~/.cache/camkit."""
    return Path(os.environ.get("CAMKIT_CACHE") or Path.home() / ".cache" / "camkit")


def idx_stamps(root: Path) -> dict[str, tuple[int, int]]:
    """{file name: (size, mtime in ns)} of the IDX files in ``root``, for cache keys."""
    files = {}
    for name in sorted(os.listdir(root)):
        if "idx" in name:
            st = (root / name).stat()
            files[name] = (st.st_size, st.st_mtime_ns)
    return files


def read_cache(path: Path) -> dict[str, np.ndarray] | None:
    """The arrays of the cached split ``path``; None when it is missing or unreadable."""
    if path.is_file():
        try:
            with np.load(path) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError):
            log.warning("cache file %s is unreadable; regenerating it", path)
    return None


def write_cache(path: Path, data: dict[str, np.ndarray]) -> None:
    """Cache a generated split at ``path`` (atomically); a failure is logged, not raised."""
    try:
        with atomic_path(path) as tmp:
            # numpy's stub matches **kwargs values against savez's allow_pickle flag
            arrays: dict[str, Any] = data
            np.savez(tmp, **arrays)
    except CamkitError as e:
        log.warning("could not cache the benchmark (%s); continuing without a cache", e)


def _cache_key(root: Path, split: str, cfg: CanvasConfig) -> str:
    files = idx_stamps(root)
    c = asdict(cfg)
    if c["max_objects"] == 0:  # keys of single-object caches made before the multi-object variant
        del c["max_objects"]
    blob = json.dumps({"v": _GENERATOR_VERSION, "split": split, "cfg": c, "files": files}, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def load_split(
    split: str, cfg: CanvasConfig, root: str | os.PathLike[str] | None = None, cache: Path | None = None
) -> dict[str, np.ndarray]:
    """Load one split from the cache, generating (and caching) it on first use."""
    src = find_root(root)
    folder = cache or cache_dir()
    kind = "fashion-multi" if cfg.max_objects >= 1 else "fashion-canvas"
    path = folder / f"{kind}-{split}-{_cache_key(src, split, cfg)}.npz"
    cached = read_cache(path)
    if cached is not None:
        return cached
    log.info("generating the %s split (%d canvases of %dpx) into %s", split, cfg.count(split), cfg.size, path)
    data = (generate_multi_split if cfg.max_objects >= 1 else generate_split)(src, split, cfg)
    write_cache(path, data)
    return data
