"""The VOC layout: a tiny VOCdevkit/VOC2012 tree written here in the exact format (JPEGImages,
palette SegmentationClass PNGs with 255 borders, ImageSets/Segmentation lists, Annotations XML,
SBD's SegmentationClassAug and train_aug.txt); every split, labels, masks, the ignored-pixel
count, each malformed-input error, and train -> extract -> evaluate -> report end to end."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from camkit.core.errors import CamkitError, OptionError
from camkit.data.datasets import DataConfig, build_split, class_names
from camkit.data.sources.voc import CLASSES
from cli_helpers import report_html, train_extract_evaluate

S = 32
TRAIN = [f"2007_{i:06d}" for i in range(8)]
VAL = [f"2008_{i:06d}" for i in range(4)]
AUG_ONLY = [f"2011_{i:06d}" for i in range(3)]  # in train_aug.txt, with SBD masks only


def voc_palette() -> list[int]:
    """VOC's colour map (the bit-interleaved one of the devkit)."""
    pal = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal += [r, g, b]
    return pal


def class_mask(k: int, rng: np.random.Generator) -> np.ndarray:
    """A (S, S) class-index mask: one or two squares of classes from ``k``, a 255 border."""
    m = np.zeros((S, S), np.uint8)
    classes = [k % 20 + 1] + ([(k + 7) % 20 + 1] if k % 3 == 0 else [])
    for j, c in enumerate(classes):
        y, x = 2 + 14 * j, int(rng.integers(2, 14))
        m[y : y + 12, x : x + 14] = 255
        m[y + 1 : y + 11, x + 1 : x + 13] = c
    return m


def image_for(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    img = rng.integers(0, 60, (S, S, 3), dtype=np.uint8)
    fg = (mask > 0) & (mask < 255)
    img[fg] = np.stack([mask[fg] * 12, 255 - mask[fg] * 12, np.full(fg.sum(), 200)], -1).astype(np.uint8)
    return img


def save_palette(path: Path, m: np.ndarray) -> None:
    im = Image.fromarray(m, mode="P")
    im.putpalette(voc_palette())
    im.save(path)


def write_voc(root: Path, aug: bool = False, xml: bool = False) -> dict[str, np.ndarray]:
    """The tree under ROOT (= VOC2012); returns the masks by id."""
    rng = np.random.default_rng(0)
    for d in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / d).mkdir(parents=True, exist_ok=True)
    masks = {}
    ids = TRAIN + VAL + (AUG_ONLY if aug else [])
    for k, i in enumerate(ids):
        m = class_mask(k, rng)
        masks[i] = m
        Image.fromarray(image_for(m, rng)).save(root / "JPEGImages" / f"{i}.jpg", quality=95)
        if i not in AUG_ONLY:
            save_palette(root / "SegmentationClass" / f"{i}.png", m)
    lists = root / "ImageSets/Segmentation"
    (lists / "train.txt").write_text("\n".join(TRAIN) + "\n")
    (lists / "val.txt").write_text("\n".join(VAL) + "\n")
    if aug:
        (root / "SegmentationClassAug").mkdir()
        for i, m in masks.items():  # SBD's masks are greyscale class ids
            Image.fromarray(m, mode="L").save(root / "SegmentationClassAug" / f"{i}.png")
        lines = [f"/JPEGImages/{i}.jpg /SegmentationClassAug/{i}.png" for i in TRAIN + AUG_ONLY]
        (lists / "train_aug.txt").write_text("\n".join(lines) + "\n")
    if xml:
        (root / "Annotations").mkdir()
        for i, m in masks.items():
            objs = "".join(
                f"<object><name>{CLASSES[c - 1]}</name><part><name>head</name></part></object>"
                for c in sorted(set(np.unique(m)) - {0, 255})
            )
            (root / "Annotations" / f"{i}.xml").write_text(
                f"<annotation><filename>{i}.jpg</filename>{objs}</annotation>"
            )
    return masks


def hot(m: np.ndarray) -> np.ndarray:
    out = np.zeros(20, np.float32)
    out[[c - 1 for c in set(np.unique(m).tolist()) - {0, 255}]] = 1
    return out


def cfg(root: Path, **kw: object) -> DataConfig:
    return DataConfig(dataset="voc", root=str(root), image_size=S, val_fraction=0.25, **kw)  # type: ignore[arg-type]


def test_splits_labels_masks_and_ignored_count(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    masks = write_voc(tmp_path)
    c = cfg(tmp_path)
    assert class_names(c) == list(CLASSES) and c.multilabel
    train, val = build_split(c, "train"), build_split(c, "val")
    assert sorted(train.ids + val.ids) == TRAIN and len(val) == 2  # 25% of 8 held out
    with caplog.at_level(logging.INFO, logger="camkit.data.segfiles"):
        test = build_split(c, "test")
    assert test.ids == VAL
    ignored = sum(int((masks[i] == 255).sum()) for i in VAL)
    assert test.stats.ignored == ignored and test.stats.masks == 4 and test.stats.pixels == 4 * S * S
    assert f"{ignored} of {4 * S * S} mask pixels" in caplog.text
    for j, i in enumerate(VAL):
        s = test[j]
        assert s["has_mask"] and np.array_equal(s["mask"].numpy(), masks[i])  # 255 kept, classes exact
        assert np.array_equal(s["label"].numpy(), hot(masks[i]))
        assert s["image"].shape == (3, S, S)
    seeds = build_split(c, "seeds")
    assert seeds.ids == TRAIN


def test_sbd_train_aug_and_xml_labels(tmp_path: Path) -> None:
    root = tmp_path / "VOCdevkit" / "VOC2012"
    masks = write_voc(root, aug=True, xml=True)
    c = cfg(tmp_path / "VOCdevkit")  # the devkit folder: VOC2012 is found inside
    train, val = build_split(c, "train"), build_split(c, "val")
    assert sorted(train.ids + val.ids) == sorted(TRAIN + AUG_ONLY)  # train_aug.txt, DeepLab lines
    for ds in (train, val):
        for j, i in enumerate(ds.ids):
            assert np.array_equal(ds.labels[j].numpy(), hot(masks[i]))
            assert ds.items[j].mask.parent.name == "SegmentationClassAug"
    # XML labels win over the mask: drop a class from one annotation
    xml = root / "Annotations" / f"{VAL[0]}.xml"
    xml.write_text("<annotation><object><name>person</name></object></annotation>")
    test = build_split(c, "test")
    expect = np.zeros(20, np.float32)
    expect[CLASSES.index("person")] = 1
    assert np.array_equal(test.labels[0].numpy(), expect)


def test_images_without_masks_are_counted_not_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_voc(tmp_path, xml=True)
    (tmp_path / "SegmentationClass" / f"{TRAIN[0]}.png").unlink()
    with caplog.at_level(logging.INFO):
        ds = build_split(cfg(tmp_path), "seeds")
    assert len(ds) == len(TRAIN) and not ds[0]["has_mask"] and ds[1]["has_mask"]
    assert bool((ds[0]["mask"] == 255).all())  # ignored by the seed scores, not scored as background
    assert "1 of 8 images have no mask" in caplog.text


def err(tmp_path: Path, split: str = "test") -> str:
    with pytest.raises(CamkitError) as e:
        ds = build_split(cfg(tmp_path), split)
        ds[0]
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_malformed_trees_name_the_file(tmp_path: Path) -> None:
    masks = write_voc(tmp_path)
    seg, lists = tmp_path / "SegmentationClass", tmp_path / "ImageSets/Segmentation"
    (tmp_path / "JPEGImages" / f"{VAL[1]}.jpg").unlink()
    assert f"val.txt: no image for id {VAL[1]}" in err(tmp_path)
    Image.fromarray(np.zeros((S, S, 3), np.uint8)).save(tmp_path / "JPEGImages" / f"{VAL[1]}.jpg")
    save_palette(seg / f"{VAL[2]}.png", np.zeros((S, S + 4), np.uint8))
    assert f"{VAL[2]}.png: mask is 36x32 but its image {VAL[2]}.jpg is 32x32" in err(tmp_path)
    Image.fromarray(np.stack([masks[VAL[2]]] * 3, -1)).save(seg / f"{VAL[2]}.png")
    assert f"{VAL[2]}.png: an RGB mask where a palette" in err(tmp_path)
    bad = masks[VAL[2]].copy()
    bad[5, 5] = 21
    save_palette(seg / f"{VAL[2]}.png", bad)
    assert f"{VAL[2]}.png: unknown class id 21" in err(tmp_path)
    save_palette(seg / f"{VAL[2]}.png", masks[VAL[2]])
    (seg / f"{VAL[3]}.png").unlink()
    assert f"{VAL[3]}.png: mask not found for id {VAL[3]} in val.txt" in err(tmp_path)
    save_palette(seg / f"{VAL[3]}.png", masks[VAL[3]])
    (lists / "val.txt").write_text(f"{VAL[0]}\na b c\n")
    assert "val.txt:2: expected an image id" in err(tmp_path)
    (lists / "val.txt").write_text("\n".join(VAL))
    (tmp_path / "Annotations").mkdir()
    for i in masks:
        (tmp_path / "Annotations" / f"{i}.xml").write_text(
            "<annotation><object><name>unicorn</name></object></annotation>"
        )
    assert f"{VAL[0]}.xml: unknown class 'unicorn'" in err(tmp_path)
    (tmp_path / "Annotations" / f"{VAL[0]}.xml").write_text("<annotation><object>")
    assert f"{VAL[0]}.xml: malformed XML" in err(tmp_path)
    with pytest.raises(OptionError, match="no JPEGImages/ folder; pass VOCdevkit/VOC2012"):
        build_split(cfg(tmp_path / "JPEGImages"), "test")
    with pytest.raises(OptionError, match="split=seg: the voc data has train, val, test, seeds"):
        build_split(cfg(tmp_path), "seg")


def test_ignored_pixels_are_skipped_by_the_seed_and_peak_scores(tmp_path: Path) -> None:
    """Class maps that light each class's region and its 255 border: every score is perfect
    once the border is ignored (it would be a false positive otherwise); an image without a
    mask (all 255) adds nothing."""
    import torch

    from camkit.core.mapfile import MapSet
    from camkit.wsss.seeds import class_peak_iou, score_seeds

    masks = write_voc(tmp_path)
    (tmp_path / "SegmentationClass" / f"{VAL[0]}.png").unlink()
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "Annotations" / f"{VAL[0]}.xml").write_text(
        "<annotation><object><name>cat</name></object></annotation>"
    )
    for i in VAL[1:]:
        labels = "".join(
            f"<object><name>{CLASSES[c - 1]}</name></object>"
            for c in set(np.unique(masks[i]).tolist()) - {0, 255}
        )
        (tmp_path / "Annotations" / f"{i}.xml").write_text(f"<annotation>{labels}</annotation>")
    ds = build_split(cfg(tmp_path), "test")
    maps = torch.zeros(len(VAL), 20, S, S)
    for j, i in enumerate(VAL):
        m = torch.from_numpy(masks[i]).long()
        for c in set(np.unique(masks[i]).tolist()) - {0, 255}:
            region = m == c
            grown = torch.nn.functional.max_pool2d(region[None, None].float(), 3, 1, 1)[0, 0] > 0
            maps[j, c - 1] = (grown & ((m == c) | (m == 255))).float()  # the class and its border
    n = len(VAL)
    ms = MapSet(maps, ds.labels.bool(), torch.ones(n, 20), ds.labels, ds.labels.bool(), ds.ids, (S, S))
    peak = class_peak_iou(ms, ds)
    assert peak.peak_iou == pytest.approx(1.0) and peak.pairs == int(ds.labels[1:].sum())
    seeds = score_seeds(ms, ds)
    assert seeds.peak_miou == pytest.approx(1.0) and seeds.fp == pytest.approx(0.0)


def test_train_extract_evaluate_report(tmp_path: Path) -> None:
    root = tmp_path / "VOC2012"
    write_voc(root)
    data = ["--dataset", "voc", "--data-root", str(root), "--image-size", str(S), "--val-fraction", "0.25"]
    run, _ = train_extract_evaluate(tmp_path, data, "v", 4)
    r = json.loads((tmp_path / "e.json").read_text())
    s = r["seeds"]
    assert s["images"] == len(VAL) and 0 <= s["miou"] <= s["peak_miou"] <= 1
    assert {"fp", "fn", "precision", "recall"} <= set(s)
    assert "Seed scores" in report_html(run, tmp_path)
