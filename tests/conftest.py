"""Shared fixtures: a private benchmark cache, tiny IDX files, tiny image trees."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

FMNIST = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Generated benchmark splits go to a per-session folder, never the user's cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("CAMKIT_CACHE", str(tmp_path_factory.mktemp("camkit-cache")))
    yield
    mp.undo()


def write_idx(path: Path, arr: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + arr.astype(np.uint8).tobytes())


def _shapes(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n 28x28 items of 10 classes: class k is a filled rectangle whose aspect depends on k."""
    items = np.zeros((n, 28, 28), np.uint8)
    labels = rng.integers(0, 10, n)
    for i, k in enumerate(labels):
        h, w = 6 + 2 * (k % 5), 20 - 2 * (k % 5)
        if k >= 5:
            h, w = w, h
        y0, x0 = (28 - h) // 2, (28 - w) // 2
        items[i, y0 : y0 + h, x0 : x0 + w] = rng.integers(120, 255)
    return items, labels.astype(np.uint8)


@pytest.fixture(scope="session")
def fake_fmnist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of the four official IDX file names holding synthetic items (fast, offline)."""
    root = tmp_path_factory.mktemp("fake-fmnist")
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 600), ("t10k", 200)):
        x, y = _shapes(n, rng)
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", x)
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", y)
    return root


@pytest.fixture(scope="session")
def real_fmnist() -> Path:
    if not (FMNIST / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("Debian's dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)")
    return FMNIST


@pytest.fixture
def image_tree(tmp_path: Path) -> tuple[Path, Path]:
    """ROOT/{train,test}/<class>/*.png with a parallel mask tree for test/."""
    root, masks = tmp_path / "imgs", tmp_path / "masks"
    rng = np.random.default_rng(1)
    for split, n in (("train", 6), ("test", 3)):
        for cls in ("cat", "dog"):
            (root / split / cls).mkdir(parents=True)
            if split == "test":
                (masks / split / cls).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(
                    root / split / cls / f"{i}.png"
                )
                if split == "test":
                    m = np.zeros((20, 24), np.uint8)
                    m[5:15, 6:18] = 255
                    Image.fromarray(m).save(masks / split / cls / f"{i}.png")
    return root, masks
