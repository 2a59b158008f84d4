"""The context and co-occurrence benchmark: Fashion-MNIST items on photographs and textures.

Each canvas (``size`` px, RGB) shows real Fashion-MNIST items, each pasted with its exact
silhouette (visible pixels >= 16 with holes filled, resized with the item, as in
:mod:`camkit.data.fashion`) and tinted with a random light colour, on a background from
:mod:`camkit.data.context_bg`. The ground truth is exact by construction: a pixel is in an
item's mask if and only if it shows that item. Three knobs set the failure modes that WSSS
methods are meant to fix:

* **context bias** (``p_context``): every class has its own background (class k: source k of
  :data:`~camkit.data.context_bg.CONTEXTS`, e.g. sandals on water). With probability
  ``p_context`` a canvas's background is the context of its (primary) class; otherwise it is
  one of the neutral backgrounds, which belong to no class. So P(context of k | class k) is
  exactly ``p_context``, and a class's context never appears without it.
* **co-occurrence** (``p_cooccur``, multi-label variant): the classes come in fixed pairs
  (:data:`PAIRS`, e.g. coat and bag). With probability ``p_cooccur`` the primary class's
  partner is on the canvas too; the other items (up to ``max_objects``) are drawn uniformly
  from the remaining classes, so at ``p_cooccur`` = 0 the classes are independent.
* **partial visibility**: with probability ``p_crop`` an item is placed partly outside the
  canvas (up to half its side), and with probability ``p_occlude`` a patch of neutral
  background covers part of it (its pixels are background in the mask). Every item keeps at
  least ``min_visible`` of its silhouette (layouts are redrawn until it does; the last try has
  no crop and no occluder).

Single-label variant (``max_objects`` = 0): one item, integer labels, a boolean mask.
Multi-label variant (``max_objects`` >= 1): 1 to ``max_objects`` items of distinct classes
(at least two when the pair is drawn), multi-hot labels of the visible classes and a class
mask (0 background, class + 1 elsewhere), later items in front. Splits draw items as
:mod:`camkit.data.fashion` does. Generation is deterministic per seed and cached as one
``.npz`` per split.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from camkit.core.errors import CamkitError, OptionError
from camkit.data import fashion
from camkit.data.context_bg import CONTEXTS, Bank, build_bank, draw_background

log = logging.getLogger(__name__)

_VERSION = 1  # bump when the generator's output changes
#: the co-occurring class pairs: t-shirt+trouser, pullover+sneaker, dress+sandal, coat+bag, shirt+ankle-boot
PAIRS = ((0, 1), (2, 7), (3, 5), (4, 8), (6, 9))
PARTNER = tuple(next(b if a == k else a for a, b in PAIRS if k in (a, b)) for k in range(10))
_TRIES = 8


@dataclass(frozen=True)
class ContextConfig:
    """How the context canvases are made; scales are item side / canvas side."""

    size: int = 112
    n_train: int = 8000
    n_val: int = 1000
    n_test: int = 1000
    min_scale: float = 0.35
    max_scale: float = 0.65
    seed: int = 0
    max_objects: int = 0  # 0: single-label; >= 1: 1..max_objects items of distinct classes
    p_context: float = 0.9
    p_cooccur: float = 0.7
    p_occlude: float = 0.3
    p_crop: float = 0.3
    min_visible: float = 0.3

    def count(self, split: str) -> int:
        return {"train": self.n_train, "val": self.n_val, "test": self.n_test}[split]

    def validate(self) -> None:
        """One-line :class:`OptionError` naming the setting that is out of range."""
        for name in ("p_context", "p_cooccur", "p_occlude", "p_crop"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise OptionError(name, "is a probability; use a value between 0 and 1", v)
        if not 32 <= self.size <= 512:
            raise OptionError("canvas_size", "use a canvas side between 32 and 512 pixels", self.size)
        if not 0.05 <= self.min_scale <= self.max_scale <= 1.0:
            raise OptionError(
                "min_scale",
                f"need 0.05 <= min_scale <= max_scale ({self.max_scale}) <= 1",
                self.min_scale,
            )
        if not 0 <= self.max_objects <= len(fashion.CLASS_NAMES):
            raise OptionError("max_objects", "use 1 to 10 items per canvas", self.max_objects)
        for split in fashion.SPLITS:
            if self.count(split) < 1:
                raise OptionError(f"n_{split}", "must be at least 1", self.count(split))


def _clip(y: int, x: int, h: int, w: int, s: int) -> tuple[slice, slice, slice, slice] | None:
    """The canvas slices and the local slices of an h×w patch at (y, x), cut to the canvas."""
    y0, x0, y1, x1 = max(y, 0), max(x, 0), min(y + h, s), min(x + w, s)
    if y0 >= y1 or x0 >= x1:
        return None
    return slice(y0, y1), slice(x0, x1), slice(y0 - y, y1 - y), slice(x0 - x, x1 - x)


def _position(rng: np.random.Generator, side: int, s: int, crop: bool) -> tuple[int, int]:
    """A top-left corner; with ``crop`` the item sticks out of one random edge by 1/6 to 1/2 of its side."""
    y, x = (int(v) for v in rng.integers(0, s - side + 1, size=2))
    if crop:
        out = int(rng.integers(max(1, side // 6), side // 2 + 1))
        edge = int(rng.integers(4))
        if edge == 0:
            y = -out
        elif edge == 1:
            y = s - side + out
        elif edge == 2:
            x = -out
        else:
            x = s - side + out
    return y, x


def _layout(
    rng: np.random.Generator, alphas: list[np.ndarray], cfg: ContextConfig, last: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions (M, 3) [y, x, side], occluders (M, 4) [y, x, h, w] (h = 0: none) and the
    owner map (S, S) int8: -1 background, -2 occluder, j for item j (later items in front)."""
    s, m = cfg.size, len(alphas)
    place = np.zeros((m, 3), np.int32)
    occ = np.zeros((m, 4), np.int32)
    boxes: list[tuple[int, int, int]] = []
    for j, a in enumerate(alphas):
        side = a.shape[0]
        crop = rng.random() < cfg.p_crop and not last
        for _ in range(20):
            y, x = _position(rng, side, s, crop)
            if fashion.overlap_ok(y, x, side, boxes):
                break
        boxes.append((y, x, side))
        place[j] = (y, x, side)
        if rng.random() < cfg.p_occlude and not last:
            h, w = (int(round(v * side)) for v in rng.uniform(0.3, 0.6, 2))
            cy, cx = y + int(rng.integers(side)), x + int(rng.integers(side))
            occ[j] = (cy - h // 2, cx - w // 2, h, w)
    owner = np.full((s, s), -1, np.int8)
    for j, a in enumerate(alphas):
        c = _clip(int(place[j, 0]), int(place[j, 1]), a.shape[0], a.shape[1], s)
        if c is not None:
            owner[c[0], c[1]][a[c[2], c[3]]] = j
    for y, x, h, w in occ:
        c = _clip(int(y), int(x), int(h), int(w), s) if h else None
        if c is not None:
            owner[c[0], c[1]] = -2
    return place, occ, owner


def make_canvas(
    rng: np.random.Generator,
    bank: Bank,
    items: np.ndarray,
    chosen: list[int],
    source: int,
    cfg: ContextConfig,
) -> dict[str, np.ndarray]:
    """One canvas of ``items[chosen]`` (in paste order) on background ``source`` of ``bank``.

    Returns image (S, S, 3) uint8, owner (S, S) int8 (-1 background, -2 occluder, j: item j),
    place (M, 3), occ (M, 4) (see :func:`_layout`) and tints (M, 3) uint8."""
    s = cfg.size
    canvas = draw_background(rng, bank, source)
    objs, alphas = [], []
    for index in chosen:
        side = int(round(rng.uniform(cfg.min_scale, cfg.max_scale) * s))
        obj, alpha = fashion.item_patch(items[index], side)
        objs.append(obj)
        alphas.append(alpha)
    tints = np.round(rng.uniform(0.55, 1.0, (len(chosen), 3)) * 255).astype(np.uint8)
    for t in range(_TRIES):
        place, occ, owner = _layout(rng, alphas, cfg, last=t == _TRIES - 1)
        vis = np.bincount(owner[owner >= 0].astype(np.int64), minlength=len(chosen))
        if all(vis[j] >= cfg.min_visible * a.sum() for j, a in enumerate(alphas)):
            break
    for j, (obj, a) in enumerate(zip(objs, alphas, strict=True)):
        c = _clip(int(place[j, 0]), int(place[j, 1]), a.shape[0], a.shape[1], s)
        if c is not None:
            region, keep = canvas[c[0], c[1]], a[c[2], c[3]]
            region[keep] = obj[c[2], c[3]][keep][:, None] * (tints[j].astype(np.float32) / 255.0)
    for y, x, h, w in occ:
        c = _clip(int(y), int(x), int(h), int(w), s) if h else None
        if c is not None:
            patch = draw_background(rng, bank, len(CONTEXTS) + int(rng.integers(bank.n_neutral)))
            canvas[c[0], c[1]] = patch[: c[0].stop - c[0].start, : c[1].stop - c[1].start]
    image = np.clip(canvas * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return {"image": image, "owner": owner, "place": place, "occ": occ, "tints": tints}


def _draw_classes(rng: np.random.Generator, cfg: ContextConfig, present: list[int]) -> tuple[list[int], bool]:
    """(classes with the primary first, whether its partner was added for co-occurrence)."""
    primary = present[int(rng.integers(len(present)))]
    pair = rng.random() < cfg.p_cooccur
    if cfg.max_objects < 1:
        return [primary], False
    count = int(rng.integers(1, cfg.max_objects + 1))
    classes = [primary]
    pair = pair and cfg.max_objects >= 2 and PARTNER[primary] in present
    if pair:
        classes.append(PARTNER[primary])
        count = max(count, 2)
    rest = [k for k in present if k not in classes]
    extra: list[int] | np.ndarray = (
        rng.choice(rest, size=min(count - len(classes), len(rest)), replace=False) if rest else []
    )
    return classes + [int(k) for k in extra], bool(pair)


def generate_split(root: Path, split: str, cfg: ContextConfig) -> dict[str, np.ndarray]:
    """Generate one split (no caching); see the module docstring. Arrays: images (N, S, S, 3)
    uint8; masks (N, S, S) bool (single) or uint8 class masks (multi); labels (N,) int64 or
    (N, K) uint8 multi-hot of the visible classes; classes and items (N, M) in paste order
    (-1 padded); place (N, M, 3); occ (N, M, 4); tints (N, M, 3); context (N,) the class whose
    context is the background (-1: neutral); source (N,) the background source; primary (N,);
    cooccur (N,) bool."""
    cfg.validate()
    x, y, pool = fashion._split_items(root, split)
    k = len(fashion.CLASS_NAMES)
    by_class = [pool[y[pool] == c] for c in range(k)]
    present = [c for c in range(k) if len(by_class[c])]
    if not present:
        raise CamkitError(f"{root}: the {split} split has no items")
    bank = build_bank(cfg.size, cfg.seed)
    n, m, s, multi = cfg.count(split), max(1, cfg.max_objects), cfg.size, cfg.max_objects >= 1
    split_id = fashion.SPLITS.index(split)
    out: dict[str, np.ndarray] = {
        "images": np.empty((n, s, s, 3), np.uint8),
        "masks": np.zeros((n, s, s), np.uint8 if multi else bool),
        "labels": np.zeros((n, k), np.uint8) if multi else np.zeros(n, np.int64),
        "classes": np.full((n, m), -1, np.int64),
        "items": np.full((n, m), -1, np.int64),
        "place": np.zeros((n, m, 3), np.int32),
        "occ": np.zeros((n, m, 4), np.int32),
        "tints": np.zeros((n, m, 3), np.uint8),
        "context": np.full(n, -1, np.int64),
        "source": np.zeros(n, np.int64),
        "primary": np.zeros(n, np.int64),
        "cooccur": np.zeros(n, bool),
    }
    for i in range(n):
        rng = np.random.default_rng([cfg.seed, split_id, 3, i])
        classes, pair = _draw_classes(rng, cfg, present)
        primary = classes[0]
        classes = [classes[j] for j in rng.permutation(len(classes))]
        chosen = [int(by_class[c][rng.integers(len(by_class[c]))]) for c in classes]
        shown = rng.random() < cfg.p_context
        source = primary if shown else len(CONTEXTS) + int(rng.integers(bank.n_neutral))
        r = make_canvas(rng, bank, x, chosen, source, cfg)
        c = len(classes)
        out["images"][i] = r["image"]
        lut = np.array([0, 0] + [cl + 1 for cl in classes], np.uint8)  # owner -2, -1, 0.. -> class + 1
        cmask = lut[r["owner"].astype(np.int64) + 2]
        if multi:
            out["masks"][i] = cmask
            out["labels"][i, np.unique(cmask[cmask > 0]) - 1] = 1
        else:
            out["masks"][i] = cmask > 0
            out["labels"][i] = primary
        out["classes"][i, :c], out["items"][i, :c] = classes, chosen
        out["place"][i, :c], out["occ"][i, :c], out["tints"][i, :c] = r["place"], r["occ"], r["tints"]
        out["context"][i] = primary if shown else -1
        out["source"][i], out["primary"][i], out["cooccur"][i] = source, primary, pair
    return out


def _cache_key(root: Path, split: str, cfg: ContextConfig) -> str:
    files = fashion.idx_stamps(root)
    try:
        from importlib.metadata import version

        skimage_version = version("scikit-image")
    except Exception:  # noqa: BLE001 - not installed: generation says so
        skimage_version = None
    blob = json.dumps(
        {
            "v": _VERSION,
            "split": split,
            "cfg": dataclasses.asdict(cfg),
            "files": files,
            "skimage": skimage_version,
        },
        sort_keys=True,
    )
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def load_split(
    split: str, cfg: ContextConfig, root: str | os.PathLike[str] | None = None, cache: Path | None = None
) -> dict[str, np.ndarray]:
    """Load one split from the cache, generating (and caching) it on first use."""
    cfg.validate()
    src = fashion.find_root(root)
    kind = "fashion-context-multi" if cfg.max_objects >= 1 else "fashion-context"
    path = (cache or fashion.cache_dir()) / f"{kind}-{split}-{_cache_key(src, split, cfg)}.npz"
    cached = fashion.read_cache(path)
    if cached is not None:
        return cached
    log.info(
        "generating the %s %s split (%d canvases of %dpx) into %s",
        kind,
        split,
        cfg.count(split),
        cfg.size,
        path,
    )
    data = generate_split(src, split, cfg)
    fashion.write_cache(path, data)
    return data
