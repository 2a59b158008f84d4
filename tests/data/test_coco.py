"""The COCO (WSSS convention) layout: a tiny tree written here in the exact format (train2014/,
val2014/ with COCO file names, SegmentationClass/<folder>/ greyscale class-id PNGs with 255
borders, numeric-id lists, IRN-style cls_labels.npy); every split, labels from the masks and
from the .npy, the ignored-pixel count, each malformed-input error, and train -> extract ->
evaluate -> report end to end."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from camkit.core.errors import CamkitError
from camkit.data.datasets import DataConfig, build_split, class_names
from camkit.data.sources.coco import CLASSES
from cli_helpers import assert_one_line_error, report_html, run_here, train_extract_evaluate

S = 32
TRAIN = [9, 25, 30, 34, 36, 42, 49, 61]
VAL = [42, 73, 74]  # val2014 numbers may repeat train's: other folder
K = 80


def name(folder: str, n: int) -> str:
    return f"COCO_{folder}_{n:012d}"


def mask_for(n: int) -> np.ndarray:
    m = np.zeros((S, S), np.uint8)
    for j, c in enumerate({n % K + 1, (3 * n) % K + 1}):
        y = 2 + 15 * j
        m[y : y + 12, 4:28] = 255
        m[y + 1 : y + 11, 5:27] = c
    return m


def hot(m: np.ndarray, k: int = K) -> np.ndarray:
    out = np.zeros(k, np.float32)
    out[[c - 1 for c in set(np.unique(m).tolist()) - {0, 255}]] = 1
    return out


def write_coco(root: Path, lists: bool = True, npy: bool = False) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    masks = {}
    for folder, nums in (("train2014", TRAIN), ("val2014", VAL)):
        (root / folder).mkdir(parents=True)
        (root / "SegmentationClass" / folder).mkdir(parents=True)
        for n in nums:
            m = mask_for(n + (1000 if folder == "val2014" else 0))
            stem = name(folder, n)
            masks[stem] = m
            img = rng.integers(0, 80, (S, S, 3), dtype=np.uint8)
            img[(m > 0) & (m < 255)] = [200, 40, 40]
            Image.fromarray(img).save(root / folder / f"{stem}.jpg", quality=95)
            Image.fromarray(m, mode="L").save(root / "SegmentationClass" / folder / f"{stem}.png")
    if lists:  # RIB's lists: 12-digit numbers
        (root / "train.txt").write_text("".join(f"{n:012d}\n" for n in TRAIN))
        (root / "val.txt").write_text("".join(f"{n:012d}\n" for n in VAL))
    if npy:  # keyed by int, as IRN's make_cls_labels writes for COCO
        d = {n: hot(masks[name("train2014", n)]) for n in TRAIN}
        np.save(root / "cls_labels.npy", d)  # type: ignore[arg-type]
    return masks


def cfg(root: Path) -> DataConfig:
    return DataConfig(dataset="coco", root=str(root), image_size=S, val_fraction=0.25)


def test_splits_labels_masks_and_ignored_count(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    masks = write_coco(tmp_path)
    c = cfg(tmp_path)
    assert class_names(c) == list(CLASSES) and len(CLASSES) == K and c.multilabel
    train, val = build_split(c, "train"), build_split(c, "val")
    assert sorted(train.ids + val.ids) == sorted(name("train2014", n) for n in TRAIN) and len(val) == 2
    assert build_split(c, "seeds").ids == [name("train2014", n) for n in TRAIN]
    with caplog.at_level(logging.INFO, logger="camkit.data.segfiles"):
        test = build_split(c, "test")
    assert test.ids == [name("val2014", n) for n in VAL]
    ignored = sum(int((masks[i] == 255).sum()) for i in test.ids)
    assert test.stats.ignored == ignored and f"{ignored} of {3 * S * S} mask pixels" in caplog.text
    for j, i in enumerate(test.ids):
        s = test[j]
        assert np.array_equal(s["mask"].numpy(), masks[i]) and np.array_equal(
            s["label"].numpy(), hot(masks[i])
        )


def test_no_lists_npy_labels_and_own_class_names(tmp_path: Path) -> None:
    masks = write_coco(tmp_path, lists=False, npy=True)
    ds = build_split(cfg(tmp_path), "seeds")  # every image of train2014, sorted by name
    assert ds.ids == sorted(name("train2014", n) for n in TRAIN)
    d = np.load(tmp_path / "cls_labels.npy", allow_pickle=True).item()
    d[TRAIN[0]] = np.eye(K, dtype=np.float32)[5]  # the .npy wins over the mask
    np.save(tmp_path / "cls_labels.npy", d)  # type: ignore[arg-type]
    ds = build_split(cfg(tmp_path), "seeds")
    assert ds.labels[ds.ids.index(name("train2014", TRAIN[0]))].argmax() == 5
    assert np.array_equal(ds.labels[1].numpy(), hot(masks[ds.ids[1]]))
    (tmp_path / "class_names.txt").write_text("\n".join(CLASSES) + "\n")
    assert class_names(cfg(tmp_path)) == list(CLASSES)


def err(root: Path, split: str = "test") -> str:
    with pytest.raises(CamkitError) as e:
        build_split(cfg(root), split)
    assert "\n" not in str(e.value)
    return str(e.value)


def test_malformed_trees_name_the_file(tmp_path: Path) -> None:
    masks = write_coco(tmp_path)
    seg = tmp_path / "SegmentationClass" / "val2014"
    stem = name("val2014", VAL[1])
    (tmp_path / "val2014" / f"{stem}.jpg").unlink()
    assert f"val.txt: no image for id {VAL[1]:012d} (val2014/{stem}.jpg)" in err(tmp_path)
    Image.fromarray(np.zeros((S + 2, S, 3), np.uint8)).save(tmp_path / "val2014" / f"{stem}.jpg")
    assert f"{stem}.png: mask is 32x32 but its image {stem}.jpg is 32x34" in err(tmp_path)
    Image.fromarray(np.zeros((S, S, 3), np.uint8)).save(tmp_path / "val2014" / f"{stem}.jpg")
    Image.fromarray(np.stack([masks[stem]] * 3, -1)).save(seg / f"{stem}.png")
    assert f"{stem}.png: an RGB mask where a palette or greyscale class-index PNG is expected" in err(
        tmp_path
    )
    bad = masks[stem].copy()
    bad[0, 0] = 81
    Image.fromarray(bad, mode="L").save(seg / f"{stem}.png")
    assert f"{stem}.png: unknown class id 81" in err(tmp_path)
    (seg / f"{stem}.png").unlink()
    assert f"{stem}.png: mask not found for {stem}, and no cls_labels.npy" in err(tmp_path)
    (tmp_path / "val.txt").write_text("42 x y\n")
    assert "val.txt:1: expected an image id" in err(tmp_path)
    np.save(tmp_path / "cls_labels.npy", {TRAIN[0]: np.ones(K)})  # type: ignore[arg-type]
    assert f"cls_labels.npy: no label for image {name('train2014', TRAIN[1])}" in err(tmp_path, "seeds")
    np.save(tmp_path / "cls_labels.npy", {TRAIN[0]: np.ones(3)})  # type: ignore[arg-type]
    assert f"cls_labels.npy: the label of {TRAIN[0]} is not a (80,) 0/1 vector" in err(tmp_path, "seeds")


def test_train_extract_evaluate_report(tmp_path: Path) -> None:
    write_coco(tmp_path)
    data = [
        "--dataset",
        "coco",
        "--data-root",
        str(tmp_path),
        "--image-size",
        str(S),
        "--val-fraction",
        "0.25",
    ]
    run, _ = train_extract_evaluate(tmp_path, data, "c", 4)
    s = json.loads((tmp_path / "e.json").read_text())["seeds"]
    assert (
        s["images"] == len(VAL) and 0 <= s["miou"] <= s["peak_miou"] <= 1 and len(s["per_class_iou"]) == K + 1
    )
    assert "Seed scores" in report_html(run, tmp_path)
    # a broken tree through the command line: one line naming the file
    (tmp_path / "val2014" / f"{name('val2014', VAL[0])}.jpg").unlink()
    p = run_here(
        "extract", "--run", str(run), "--split", "test", "--method", "cam", "--out", str(tmp_path / "x.npz")
    )
    assert_one_line_error(p, "val.txt: no image for id")
