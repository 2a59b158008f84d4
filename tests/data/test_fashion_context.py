"""The context benchmark: exact masks, determinism, the context and co-occurrence knobs."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from camkit.core.errors import OptionError
from camkit.data import DataConfig, build_split, class_names
from camkit.data.context import PARTNER, ContextConfig, generate_split, load_split
from camkit.data.fashion import read_idx

SMALL = ContextConfig(size=96, n_train=60, n_val=20, n_test=20, seed=5, p_occlude=0.5, p_crop=0.5)
MULTI = replace(SMALL, max_objects=3, min_scale=0.28, max_scale=0.5)


def _digest(d: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for k in sorted(d):
        h.update(k.encode() + d[k].tobytes())
    return h.hexdigest()


def _expected(d: dict[str, np.ndarray], i: int, x: np.ndarray, s: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """The owner map rebuilt from the stored layout with an independent silhouette and resize:
    -1 background, -2 occluder, j item j; and each item's full alpha (side, side)."""
    owner = np.full((s + 200, s + 200), -1)  # padded, so items that stick out need no clipping
    alphas = []
    for j, idx in enumerate(d["items"][i]):
        if idx < 0:
            break
        y, x0, side = (int(v) for v in d["place"][i, j])
        sil = ndimage.binary_fill_holes(x[idx] >= 16).astype(np.uint8) * 255
        a = np.asarray(Image.fromarray(sil).resize((side, side), Image.Resampling.BILINEAR)) >= 128
        alphas.append(a)
        owner[100 + y : 100 + y + side, 100 + x0 : 100 + x0 + side][a] = j
    for y, x0, h, w in d["occ"][i]:
        if h:
            owner[max(0, 100 + y) : 100 + y + h, max(0, 100 + x0) : 100 + x0 + w] = -2
    return owner[100 : 100 + s, 100 : 100 + s], alphas


@pytest.mark.parametrize("cfg", [SMALL, MULTI], ids=["single", "multi"])
def test_masks_are_exactly_the_items_visible_alpha(real_fmnist: Path, cfg: ContextConfig) -> None:
    d = generate_split(real_fmnist, "test", cfg)
    x = read_idx(real_fmnist / "t10k-images-idx3-ubyte.gz")
    y = read_idx(real_fmnist / "t10k-labels-idx1-ubyte.gz")
    cropped = occluded = 0
    for i in range(cfg.n_test):
        owner, alphas = _expected(d, i, x, cfg.size)
        classes = d["classes"][i, : len(alphas)]
        assert (y[d["items"][i, : len(alphas)]] == classes).all()
        lut = np.array([0, 0, *(classes + 1)])
        want = lut[owner + 2]
        got = d["masks"][i].astype(np.int64) if cfg.max_objects else d["masks"][i] * (classes[0] + 1)
        np.testing.assert_array_equal(got, want)
        for j, a in enumerate(alphas):
            vis = owner == j
            assert vis.sum() >= cfg.min_visible * a.sum()  # every item keeps enough of itself
            # the visible pixels show the item: its intensity times its tint
            y0, x0, side = d["place"][i, j]
            obj = np.asarray(
                Image.fromarray(x[d["items"][i, j]]).resize((side, side), Image.Resampling.BILINEAR)
            )
            full = np.zeros((cfg.size + 200, cfg.size + 200), np.float32)
            full[100 + y0 : 100 + y0 + side, 100 + x0 : 100 + x0 + side] = obj / 255.0
            full = full[100 : 100 + cfg.size, 100 : 100 + cfg.size]
            want_px = full[vis][:, None] * (d["tints"][i, j].astype(np.float32) / 255.0) * 255.0
            assert np.abs(d["images"][i][vis].astype(np.float32) - want_px).max() <= 1.0
            cropped += int(vis.sum() < a.sum() and (y0 < 0 or x0 < 0 or max(y0, x0) + side > cfg.size))
        occluded += int((owner == -2).any())
    assert cropped > 0 and occluded > 0  # both kinds of partial visibility occur


def test_same_seed_same_bytes_and_the_cache_round_trips(real_fmnist: Path, tmp_path: Path) -> None:
    a = generate_split(real_fmnist, "val", MULTI)
    assert _digest(a) == _digest(generate_split(real_fmnist, "val", MULTI))
    assert _digest(a) != _digest(generate_split(real_fmnist, "val", replace(MULTI, seed=6)))
    first = load_split("val", MULTI, real_fmnist, tmp_path)
    assert len(list(tmp_path.glob("fashion-context-multi-val-*.npz"))) == 1
    assert _digest(first) == _digest(load_split("val", MULTI, real_fmnist, tmp_path)) == _digest(a)


def _background_mean(d: dict[str, np.ndarray], sel: np.ndarray) -> np.ndarray:
    """Mean RGB of the background pixels (no item, no occluder) of the canvases ``sel``."""
    rgb = []
    for i in np.flatnonzero(sel):
        bg = d["masks"][i] == 0
        for yy, xx, h, w in d["occ"][i]:
            if h:
                bg[max(0, yy) : yy + h, max(0, xx) : xx + w] = False
        rgb.append(d["images"][i][bg].astype(np.float64).mean(0))
    return np.mean(rgb, axis=0)


def test_p_context_one_gives_every_canvas_its_class_context(real_fmnist: Path) -> None:
    cfg = replace(SMALL, n_train=300, p_context=1.0, p_occlude=0.0)
    d = generate_split(real_fmnist, "train", cfg)
    assert (d["context"] == d["labels"]).all() and (d["source"] == d["labels"]).all()
    # and the pixels are that context: water (sandal, 5) is blue, tinted grass (t-shirt, 0) green
    water, grass = _background_mean(d, d["labels"] == 5), _background_mean(d, d["labels"] == 0)
    assert water[2] > water[0] + 40 and grass[1] > grass[0] + 10 and grass[1] > grass[2] + 10
    none = generate_split(real_fmnist, "train", replace(cfg, p_context=0.0))
    assert (none["context"] == -1).all() and (none["source"] >= 10).all()  # only the neutral pool
    half = generate_split(real_fmnist, "train", replace(cfg, p_context=0.5))
    shown = half["context"] >= 0
    assert abs(shown.mean() - 0.5) < 4 * np.sqrt(0.25 / cfg.n_train)
    # a class's context never shows without it
    assert (half["source"][half["source"] < 10] == half["labels"][half["source"] < 10]).all()


def _partner_rate(d: dict[str, np.ndarray]) -> float:
    return float(np.mean([d["labels"][i, PARTNER[p]] for i, p in enumerate(d["primary"])]))


def test_p_cooccur_pairs_classes_at_the_rate_asked(real_fmnist: Path) -> None:
    cfg = replace(MULTI, size=64, n_train=600, p_occlude=0.0, p_crop=0.0)
    n = cfg.n_train
    tol = 4 * np.sqrt(0.25 / n)
    d = generate_split(real_fmnist, "train", cfg)
    assert abs(d["cooccur"].mean() - 0.7) < tol
    paired = d["cooccur"]
    assert all(
        d["labels"][i, d["primary"][i]] and d["labels"][i, PARTNER[d["primary"][i]]]
        for i in np.flatnonzero(paired)
    )
    # without the pair: 0, 1 or 2 other items (1/3 each) drawn from 9 classes -> P(partner) = 1/9
    assert abs(_partner_rate(d) - (0.7 + 0.3 / 9)) < tol
    zero = generate_split(real_fmnist, "train", replace(cfg, p_cooccur=0.0))
    assert not zero["cooccur"].any() and abs(_partner_rate(zero) - 1 / 9) < tol
    one = generate_split(real_fmnist, "train", replace(cfg, p_cooccur=1.0))
    assert one["cooccur"].all() and _partner_rate(one) == 1.0


def test_multilabel_labels_match_masks_through_the_registry(real_fmnist: Path, tmp_path: Path) -> None:
    data = DataConfig(
        dataset="fashion-context-multi", n_train=8, n_val=8, n_test=24, image_size=64,
        canvas_size=96, cache_dir=str(tmp_path), seed=2,
    )  # fmt: skip
    assert class_names(data)[5] == "sandal"
    ds = build_split(data, "test")
    for i in range(24):
        s = ds[i]
        assert s["image"].shape == (3, 64, 64) and s["image"].dtype == torch.float32
        present = torch.zeros(10)
        present[s["mask"][s["mask"] > 0].long().unique() - 1] = 1
        assert torch.equal(present, s["label"])  # resized nearest still shows every class here
    raw = load_split(
        "test", replace(MULTI, n_test=24, seed=2, p_occlude=0.3, p_crop=0.3), real_fmnist, tmp_path
    )
    for m, lab in zip(raw["masks"], raw["labels"], strict=True):
        assert sorted(np.flatnonzero(lab) + 1) == sorted(np.unique(m[m > 0]))
    single = build_split(replace(data, dataset="fashion-context", image_size=96), "val")
    s = single[0]
    assert s["label"].dtype == torch.int64 and s["mask"].max() == 1 and s["image"].shape == (3, 96, 96)


@pytest.mark.parametrize(
    ("dataset", "key", "value", "option"),
    [
        ("fashion-context", "p_context", 1.5, "p_context"),
        ("fashion-context-multi", "p_cooccur", -0.1, "p_cooccur"),
        ("fashion-context", "p_occlude", 2.0, "p_occlude"),
        ("fashion-context", "p_crop", -1.0, "p_crop"),
        ("fashion-context", "canvas_size", 16, "canvas_size"),
        ("fashion-context-multi", "max_objects", 0, "max_objects"),
        ("fashion-context-multi", "max_objects", 11, "max_objects"),
        ("fashion-context", "min_scale", 0.9, "min_scale"),
    ],
)
def test_bad_options_are_one_line_errors(
    tmp_path: Path, dataset: str, key: str, value: object, option: str
) -> None:
    cfg = DataConfig(dataset=dataset, n_train=4, n_val=4, n_test=4, cache_dir=str(tmp_path))
    setattr(cfg, key, value)
    with pytest.raises(OptionError) as e:
        build_split(cfg, "test")
    assert e.value.option == option and "\n" not in str(e.value)
    assert not list(tmp_path.iterdir())  # nothing generated
