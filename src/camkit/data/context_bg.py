"""Backgrounds of the context benchmark (:mod:`camkit.data.context`): photographs bundled with
scikit-image and procedural textures, nothing downloaded.

There are ten *class contexts*, one per Fashion-MNIST class (like water for boats), and a
*neutral* pool that belongs to no class. Each source is turned once into a small bank of tiles
(photos at three scales, textures in four random variants, every tile at least 2x the canvas
side); a canvas background is then a random crop of a tile, flipped at random, with a small
brightness jitter. Building the bank is the only costly step (well under a second), so a split of
thousands of canvases costs little more than the crops.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from camkit.core.errors import CamkitError

#: one background per class, in class order: (kind, name); grey photos get a fixed tint (_TINTS)
CONTEXTS: tuple[tuple[str, str], ...] = (
    ("photo", "grass"),  # t-shirt
    ("photo", "brick"),  # trouser
    ("photo", "hubble_deep_field"),  # pullover
    ("photo", "coffee"),  # dress
    ("photo", "gravel"),  # coat
    ("texture", "waves"),  # sandal
    ("texture", "checker"),  # shirt
    ("texture", "stripes"),  # sneaker
    ("texture", "blobs"),  # bag
    ("texture", "dots"),  # ankle-boot
)
#: backgrounds of no class
NEUTRAL: tuple[tuple[str, str], ...] = (
    ("photo", "astronaut"),
    ("photo", "chelsea"),
    ("photo", "rocket"),
    ("photo", "immunohistochemistry"),
    ("photo", "camera"),
    ("photo", "moon"),
    ("texture", "noise"),
    ("texture", "gradient"),
)
_TINTS = {"grass": (0.55, 1.0, 0.45), "brick": (1.0, 0.55, 0.4), "gravel": (0.85, 0.8, 0.7)}
_PHOTO_SCALES = (1.0, 1.5, 2.2)  # tile short side / (2 x canvas side), before cropping
_VARIANTS = 4


@dataclass(frozen=True)
class Bank:
    """Tiles per source: ``tiles[j]`` lists (H, W, 3) float32 arrays in [0, 1], H, W >= the
    canvas side; sources ``0..9`` are the class contexts, the rest the neutral pool."""

    tiles: tuple[tuple[np.ndarray, ...], ...]
    size: int

    @property
    def n_neutral(self) -> int:
        return len(self.tiles) - len(CONTEXTS)


def _photo(name: str) -> np.ndarray:
    try:
        import skimage.data
    except ImportError:
        raise CamkitError(
            "the fashion-context backgrounds need scikit-image's bundled photos; "
            "pip install 'camkit[context]' (or scikit-image)"
        ) from None
    a = np.asarray(getattr(skimage.data, name)())
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    rgb = a[..., :3].astype(np.float32) / 255.0
    if name in _TINTS:
        rgb = rgb * np.asarray(_TINTS[name], np.float32)
    return rgb


def _photo_tiles(name: str, size: int) -> tuple[np.ndarray, ...]:
    """The photo rescaled so its short side is 2·size·scale, for each of the scales."""
    rgb = _photo(name)
    img = Image.fromarray(np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8))
    out = []
    for scale in _PHOTO_SCALES:
        f = 2 * size * scale / min(img.size)
        w, h = max(size, round(img.size[0] * f)), max(size, round(img.size[1] * f))
        out.append(np.asarray(img.resize((w, h), Image.Resampling.BILINEAR), np.float32) / 255.0)
    return tuple(out)


def _colour(rng: np.random.Generator, lo: float, hi: float) -> np.ndarray:
    return rng.uniform(lo, hi, 3).astype(np.float32)


def _texture(name: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """One (n, n, 3) variant of procedural texture ``name``, values in [0, 1]."""
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    if name == "waves":  # water: blue, wavy crests
        lam, amp = rng.uniform(10, 18), rng.uniform(3, 8)
        v = 0.5 + 0.5 * np.sin(2 * np.pi * (yy + amp * np.sin(xx / rng.uniform(8, 16))) / lam)
        a, b = np.array([0.05, 0.15, 0.45], np.float32), np.array([0.35, 0.7, 0.95], np.float32)
    elif name == "checker":
        p = int(rng.integers(8, 16))
        v = (((yy // p) + (xx // p)) % 2).astype(np.float32)
        a, b = np.array([0.85, 0.75, 0.1], np.float32), np.array([0.35, 0.1, 0.45], np.float32)
    elif name == "stripes":  # diagonal
        period = rng.uniform(9, 15)
        v = (np.sin(2 * np.pi * (xx + yy) / period) > 0).astype(np.float32)
        a, b = np.array([0.95, 0.55, 0.1], np.float32), np.array([0.1, 0.5, 0.25], np.float32)
    elif name == "blobs":  # reddish patches
        g = ndimage.gaussian_filter(rng.standard_normal((n, n)).astype(np.float32), rng.uniform(3, 5))
        v = (g > 0).astype(np.float32)
        v = ndimage.gaussian_filter(v, 1.0)
        a, b = np.array([0.45, 0.1, 0.1], np.float32), np.array([0.9, 0.5, 0.45], np.float32)
    elif name == "dots":  # light dots on dark green
        p = int(rng.integers(9, 14))
        d = np.hypot((yy % p) - p / 2, (xx % p) - p / 2)
        v = (d < p / 4).astype(np.float32)
        a, b = np.array([0.05, 0.25, 0.1], np.float32), np.array([0.95, 0.95, 0.8], np.float32)
    elif name == "noise":  # smooth colour noise
        g = np.stack([ndimage.gaussian_filter(rng.random((n, n), np.float32), 4) for _ in range(3)], -1)
        g = (g - g.min()) / max(float(g.max() - g.min()), 1e-6)
        return np.clip(0.15 + 0.7 * g, 0, 1).astype(np.float32)
    elif name == "gradient":
        t = (xx * rng.uniform(-1, 1) + yy * rng.uniform(-1, 1)) / n
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
        v = t + rng.normal(0, 0.03, (n, n)).astype(np.float32)
        a, b = _colour(rng, 0.1, 0.9), _colour(rng, 0.1, 0.9)
    else:  # pragma: no cover - the tables above are fixed
        raise ValueError(name)
    v = np.clip(v, 0, 1)[..., None]
    return (a * (1 - v) + b * v).astype(np.float32)


def build_bank(size: int, seed: int) -> Bank:
    """Every source's tiles for canvases of side ``size``; textures depend on ``seed``."""
    tiles = []
    for j, (kind, name) in enumerate(CONTEXTS + NEUTRAL):
        if kind == "photo":
            tiles.append(_photo_tiles(name, size))
        else:
            rng = np.random.default_rng([seed, 7, j])
            tiles.append(tuple(_texture(name, 2 * size, rng) for _ in range(_VARIANTS)))
    return Bank(tuple(tiles), size)


def draw_background(rng: np.random.Generator, bank: Bank, source: int) -> np.ndarray:
    """A random crop of one tile of ``source``, randomly flipped, brightness x U(0.8, 1.1):
    (S, S, 3) float32 in [0, 1], a fresh array."""
    s = bank.size
    tiles = bank.tiles[source]
    t = tiles[int(rng.integers(len(tiles)))]
    y, x = int(rng.integers(0, t.shape[0] - s + 1)), int(rng.integers(0, t.shape[1] - s + 1))
    crop = t[y : y + s, x : x + s]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return np.minimum(crop * np.float32(rng.uniform(0.8, 1.1)), 1.0)
