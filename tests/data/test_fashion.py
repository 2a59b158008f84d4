import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from camkit.core.errors import CamkitError
from camkit.data import DataConfig, build_split
from camkit.data.fashion import CanvasConfig, find_root, generate_split, load_split, read_idx

SMALL = CanvasConfig(size=48, n_train=40, n_val=10, n_test=10, seed=3)


def _digest(d: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for k in sorted(d):
        h.update(k.encode() + d[k].tobytes())
    return h.hexdigest()


def test_same_seed_same_bytes_different_seed_differs(real_fmnist: Path) -> None:
    a = generate_split(real_fmnist, "train", SMALL)
    b = generate_split(real_fmnist, "train", SMALL)
    assert _digest(a) == _digest(b)
    c = generate_split(real_fmnist, "train", CanvasConfig(**{**SMALL.__dict__, "seed": 4}))
    assert _digest(a) != _digest(c)


def test_cache_round_trip_is_byte_identical(real_fmnist: Path, tmp_path: Path) -> None:
    first = load_split("val", SMALL, real_fmnist, tmp_path)
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1
    second = load_split("val", SMALL, real_fmnist, tmp_path)  # from the cache
    assert _digest(first) == _digest(second) == _digest(generate_split(real_fmnist, "val", SMALL))


def test_masks_and_boxes_are_exact(real_fmnist: Path) -> None:
    d = generate_split(real_fmnist, "test", SMALL)
    x = read_idx(real_fmnist / "t10k-images-idx3-ubyte.gz")
    y = read_idx(real_fmnist / "t10k-labels-idx1-ubyte.gz")
    assert (d["labels"] == y[d["items"]]).all()
    for mask, box in zip(d["masks"], d["boxes"], strict=True):
        assert mask.any()
        ys, xs = np.nonzero(mask)
        assert tuple(box) == (xs.min(), ys.min(), xs.max(), ys.max())
        x0, y0, x1, y1 = box
        assert mask[y0, x0:].any() and mask[y1].any() and mask[:, x0].any() and mask[:, x1].any()
    assert x.shape[1:] == (28, 28)
    # objects cover a sensible share of the canvas
    frac = d["masks"].mean()
    assert 0.05 < frac < 0.4


def test_splits_use_disjoint_items(fake_fmnist: Path) -> None:
    cfg = CanvasConfig(size=32, n_train=200, n_val=50, n_test=20)
    tr, va = generate_split(fake_fmnist, "train", cfg), generate_split(fake_fmnist, "val", cfg)
    assert not set(tr["items"]) & set(va["items"])


def test_dataset_samples(fake_fmnist: Path) -> None:
    ds = build_split(DataConfig(root=str(fake_fmnist), image_size=32, n_train=20, n_val=5, n_test=5), "test")
    s = ds[0]
    assert s["image"].shape == (3, 32, 32) and s["image"].dtype.is_floating_point
    assert float(s["image"].min()) >= 0.0 and float(s["image"].max()) <= 1.0
    assert s["mask"].shape == (32, 32) and s["has_mask"]
    assert len(ds) == 5


def test_missing_and_corrupt_sources(tmp_path: Path) -> None:
    with pytest.raises(CamkitError, match=r"root=.*nowhere: Fashion-MNIST folder not found"):
        find_root(tmp_path / "nowhere")
    (tmp_path / "d").mkdir()
    with pytest.raises(CamkitError, match="train-images-idx3-ubyte.gz is missing"):
        find_root(tmp_path / "d")
    bad = tmp_path / "bad-idx"
    bad.write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x05ab")
    with pytest.raises(CamkitError, match="truncated"):
        read_idx(bad)


def test_multi_object_variant(fake_fmnist) -> None:
    from camkit.data.datasets import DataConfig, build_split

    cfg = DataConfig(dataset="fashion-multi", root=str(fake_fmnist), n_train=60, n_val=10, n_test=10)
    ds = build_split(cfg, "train")
    counts = []
    for i in range(len(ds)):
        s = ds[i]
        y, m = s["label"], s["mask"]
        assert y.shape == (10,) and y.dtype == torch.float32
        present = set((torch.unique(m[m > 0]).long() - 1).tolist())
        assert present == set(torch.nonzero(y).flatten().tolist())  # labels = classes visible in the mask
        counts.append(int(y.sum()))
    assert min(counts) >= 1 and max(counts) <= 3 and len(set(counts)) == 3
    again = build_split(cfg, "train")
    assert torch.equal(again.images, ds.images) and torch.equal(
        again.masks, ds.masks
    )  # cached, deterministic
