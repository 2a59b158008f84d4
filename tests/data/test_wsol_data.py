"""The wsol layout: tiny trees written here in wsolevaluation's exact metadata format, a box one
(CUB / ImageNet: several boxes per image) and a mask one (OpenImages: instance masks plus an
ignore mask); labels, rescaled boxes (resize_bbox), masks with 255, MaxBoxAcc on the data's
own boxes against a hand-worked case, PxAP skipping ignored pixels, each malformed-input error,
and train -> extract -> evaluate -> report end to end."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from camkit.core.errors import CamkitError, OptionError
from camkit.core.mapfile import MapSet
from camkit.data.datasets import DataConfig, build_split, class_names
from camkit.metrics.wsol import PxAP
from camkit.pipeline.evaluate import score_maps
from cli_helpers import report_html, train_extract_evaluate

S, W, H = 32, 40, 32  # input side; box-tree images are 40x32 (not square: boxes rescale per axis)
CUB = ["001.Albatross/A_{}.jpg", "002.Auklet/B_{}.jpg", "003.Cowbird/C_{}.jpg"]
N = {"train": 6, "val": 3, "test": 3}


def boxes_of(k: int) -> list[tuple[int, int, int, int]]:
    """Box 1 top-left; even k: a second box bottom-right, far from the first."""
    b = [(1, 1, 12, 10)]
    return b + [(24 + k % 3, 18, 38, 30)] if k % 2 == 0 else b


def write_boxes(root: Path) -> dict[str, list[tuple[int, int, int, int]]]:
    """A CUB-style tree: root/<class dir>/<image>, root/metadata/<split>/*.txt; returns boxes by id."""
    rng = np.random.default_rng(0)
    out = {}
    for split, n in N.items():
        meta = root / "metadata" / split
        meta.mkdir(parents=True)
        ids, labels, loc = [], [], []
        for k in range(n):
            c = k % 3
            image_id = CUB[c].format(f"{split}{k}")
            (root / image_id).parent.mkdir(parents=True, exist_ok=True)
            img = rng.integers(0, 60, (H, W, 3), dtype=np.uint8)
            for x0, y0, x1, y1 in boxes_of(k):
                img[y0 : y1 + 1, x0 : x1 + 1] = [60 + 90 * c, 200, 90]
            Image.fromarray(img).save(root / image_id, quality=95)
            ids.append(image_id)
            labels.append(f"{image_id},{c}")
            loc += [f"{image_id},{x0},{y0},{x1},{y1}" for x0, y0, x1, y1 in boxes_of(k)]
            out[image_id] = boxes_of(k)
        (meta / "image_ids.txt").write_text("\n".join(ids) + "\n")
        (meta / "class_labels.txt").write_text("\n".join(labels) + "\n")
        (meta / "localization.txt").write_text("\n".join(loc) + "\n")
    return out


def write_masks(root: Path, masks_root: Path) -> dict[str, np.ndarray]:
    """An OpenImages-style test split: ids test/<cls>/<hash>.jpg, masks (one at twice the
    size: resized as wsolevaluation does) and an ignore mask on the first line only."""
    meta = root / "metadata" / "test"
    meta.mkdir(parents=True)
    expect, ids, labels, loc = {}, [], [], []
    for k in range(3):
        image_id = f"test/0cls{k}/{k:016x}.jpg"
        (root / image_id).parent.mkdir(parents=True)
        (masks_root / image_id).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((S, S, 3), 40 * k, np.uint8)).save(root / image_id)
        a, b, ign = (np.zeros((S, S), np.uint8) for _ in range(3))
        a[2:10, 2:12] = 255
        b[20:30, 18:30] = 255
        ign[0:14, 0:16] = 255  # a box around instance a: its ring is ignored
        stem = image_id[:-4]
        big = np.kron(a, np.ones((2, 2), np.uint8)) if k == 0 else a  # 64x64 for image 0
        Image.fromarray(big).save(masks_root / f"{stem}_ma.png")
        Image.fromarray(b).save(masks_root / f"{stem}_mb.png")
        Image.fromarray(ign).save(masks_root / f"{stem}_ignore.png")
        loc += [f"{image_id},{stem}_ma.png,{stem}_ignore.png", f"{image_id},{stem}_mb.png,"]
        ids.append(image_id)
        labels.append(f"{image_id},{k}")
        m = ((a > 0) | (b > 0)).astype(np.uint8)
        m[(ign > 0) & (m == 0)] = 255
        expect[image_id] = m
    (meta / "image_ids.txt").write_text("\n".join(ids) + "\n")
    (meta / "class_labels.txt").write_text("\n".join(labels) + "\n")
    (meta / "localization.txt").write_text("\n".join(loc) + "\n")
    return expect


def cfg(root: Path, **kw: str) -> DataConfig:
    return DataConfig(dataset="wsol", root=str(root), image_size=S, **kw)  # type: ignore[arg-type]


def test_boxes_labels_and_rescaling(tmp_path: Path) -> None:
    boxes = write_boxes(tmp_path)
    c = cfg(tmp_path)
    assert class_names(c) == ["0", "1", "2"] and not c.multilabel
    (tmp_path / "metadata" / "class_names.txt").write_text("albatross\nauklet\ncowbird\n")
    assert class_names(c) == ["albatross", "auklet", "cowbird"]
    for split, n in N.items():
        ds = build_split(c, split, augment=False)
        assert len(ds) == n and ds.labels.tolist() == [k % 3 for k in range(n)]
    ds = build_split(c, "test")
    for i, image_id in enumerate(ds.ids):
        # resize_bbox: int(x * S / W), int(y * S / H), by hand for these numbers
        want = [
            [int(x0 * S / W), int(y0 * S / H), int(x1 * S / W), int(y1 * S / H)]
            for x0, y0, x1, y1 in boxes[image_id]
        ]
        assert ds.gt_boxes[i].tolist() == want
        m = ds[i]["mask"]
        union = torch.zeros((S, S), dtype=torch.uint8)
        for x0, y0, x1, y1 in want:
            union[y0 : y1 + 1, x0 : x1 + 1] = 1
        assert torch.equal(m, union) and ds[i]["has_mask"]
    assert ds.masks_from_boxes
    # image_sizes.txt, when present, gives the W and H boxes rescale from (wsolevaluation's rule)
    meta = tmp_path / "metadata" / "test"
    (meta / "image_sizes.txt").write_text("".join(f"{i},{2 * W},{2 * H}\n" for i in ds.ids))
    ds = build_split(c, "test")
    for i, image_id in enumerate(ds.ids):
        want = [[int(x0 * S / W / 2), int(y0 * S / H / 2), int(x1 * S / W / 2), int(y1 * S / H / 2)]
                for x0, y0, x1, y1 in boxes[image_id]]  # fmt: skip
        assert ds.gt_boxes[i].tolist() == want
    (meta / "image_sizes.txt").write_text(f"{ds.ids[0]},{W},{H}\n")
    with pytest.raises(CamkitError, match=f"image_sizes.txt: no size for {ds.ids[1]}"):
        build_split(c, "test")
    (meta / "image_sizes.txt").write_text(f"{ds.ids[0]},{W},-3\n")
    with pytest.raises(CamkitError, match="image_sizes.txt:1: width and height must be positive"):
        build_split(c, "test")


def test_resize_box_matches_wsolevaluations_own_cases() -> None:
    from camkit.data.sources.wsol import resize_box

    # evaluation_test.py: test_resize_bbox_case and test_resize_bbox_degenerate
    assert resize_box((1, 2, 4, 3), (10, 20), (35, 10)).tolist() == [3, 1, 14, 1]
    assert resize_box((1, 2, 1, 2), (3, 3), (3, 3)).tolist() == [1, 2, 1, 2]


def indicator(box: list[int]) -> torch.Tensor:
    m = torch.zeros((S, S))
    m[box[1] : box[3] + 1, box[0] : box[2] + 1] = 1
    return m


def test_max_box_acc_uses_the_datas_own_boxes(tmp_path: Path) -> None:
    """Maps that light exactly the second box of the two-box images: a hit against the data's
    boxes (IoU with box 2 is 1 up to OpenCV's one-past-the-end quirk), a miss against the
    tight box of the union that the masks alone would give."""
    write_boxes(tmp_path)
    ds = build_split(cfg(tmp_path), "test")
    two = [i for i in range(len(ds)) if len(ds.gt_boxes[i]) == 2]
    assert two == [0, 2]
    maps = torch.stack([indicator(ds.gt_boxes[i][-1].tolist()) for i in range(len(ds))])
    n = len(ds)
    ms = MapSet(maps, ds.labels, torch.ones(n), ds.labels, ds.labels, ds.ids, (S, S))
    r = score_maps(ms, ds, wsol=True)
    assert r.wsol.max_box_acc == 100.0 and r.wsol.top1_loc == 100.0
    assert r.wsol.pxap is None  # boxes are no pixel masks
    plain = [ds[i] for i in range(n)]  # a dataset without gt_boxes: each mask's tight box (the union)
    r = score_maps(ms, plain, wsol=True)  # type: ignore[arg-type]
    assert r.wsol.max_box_acc == pytest.approx(100.0 / 3)  # only the one-box image hits


def test_masks_ignore_and_pxap(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    expect = write_masks(tmp_path, tmp_path / "masks")
    c = cfg(tmp_path, mask_root=str(tmp_path / "masks"))
    with caplog.at_level(logging.INFO, logger="camkit.data.sources.wsol"):
        ds = build_split(c, "test")
    ignored = sum(int((m == 255).sum()) for m in expect.values())
    assert f"{ignored} pixels at 32x32 are 255 (ignored by PxAP)" in caplog.text
    for i, image_id in enumerate(ds.ids):
        assert np.array_equal(ds[i]["mask"].numpy(), expect[image_id])
    assert ds.gt_boxes is None and not ds.masks_from_boxes
    maps = torch.rand(3, S, S, generator=torch.Generator().manual_seed(0))
    ms = MapSet(maps, ds.labels, torch.ones(3), ds.labels, ds.labels, ds.ids, (S, S))
    r = score_maps(ms, ds, wsol=True)
    ref, naive = PxAP(), PxAP()
    norm = (maps - maps.amin((1, 2), keepdim=True)) / (
        maps.amax((1, 2), keepdim=True) - maps.amin((1, 2), keepdim=True)
    )
    gt = torch.stack([torch.from_numpy(expect[i]) for i in ds.ids])
    ref.update(norm, gt)
    naive.update(norm, (gt == 1).to(torch.uint8))  # 255 counted as background
    assert r.wsol.pxap == pytest.approx(ref.compute(), abs=1e-6) and r.wsol.pxap != pytest.approx(
        naive.compute()
    )


def err(root: Path, split: str = "test", **kw: str) -> str:
    with pytest.raises(CamkitError) as e:
        build_split(cfg(root, **kw), split)
    assert "\n" not in str(e.value)
    return str(e.value)


def test_malformed_metadata_names_the_file(tmp_path: Path) -> None:
    write_boxes(tmp_path)
    meta = tmp_path / "metadata" / "test"
    ids = (meta / "image_ids.txt").read_text().split()
    loc, labels = (meta / "localization.txt").read_text(), (meta / "class_labels.txt").read_text()
    (tmp_path / ids[1]).unlink()
    assert f"image_ids.txt:2: no image for id {ids[1]}" in err(tmp_path)
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(tmp_path / ids[1])
    (meta / "localization.txt").write_text(loc + f"{ids[0]},1,2,3\n")
    assert "localization.txt:6: expected 'path,x0,y0,x1,y1' (boxes)" in err(tmp_path)
    (meta / "localization.txt").write_text(loc + f"{ids[0]},30,2,3,4\n")
    assert "localization.txt:6: box (30, 2, 3, 4) is not x0<=x1" in err(tmp_path)
    (meta / "localization.txt").write_text(loc + f"{ids[0]},1,2,41,4\n")
    assert "inside the 40x32 image" in err(tmp_path)
    (meta / "localization.txt").write_text(loc + "nope.jpg,1,2,3,4\n")
    assert "localization.txt:6: image nope.jpg is not in image_ids.txt" in err(tmp_path)
    (meta / "localization.txt").write_text(loc + f"{ids[0]},a.png,\n")
    assert "mixes box lines" in err(tmp_path)
    (meta / "localization.txt").write_text(loc)
    (meta / "class_labels.txt").write_text(labels.replace(f"{ids[2]},2", f"{ids[2]},x"))
    assert "class_labels.txt:3: class 'x' is not a whole number" in err(tmp_path)
    (meta / "class_labels.txt").write_text(labels.replace(f"{ids[2]},2\n", ""))
    assert f"class_labels.txt: no class for {ids[2]}" in err(tmp_path)
    (meta / "class_labels.txt").write_text(labels)
    (tmp_path / "metadata" / "class_names.txt").write_text("a\nb\n")
    assert f"class_labels.txt: unknown class id 2 for {ids[2]} (0..1)" in err(tmp_path)
    with pytest.raises(OptionError, match="metadata_root=.*folder not found"):
        build_split(cfg(tmp_path, metadata_root=str(tmp_path / "nope")), "test")


def test_malformed_mask_lines(tmp_path: Path) -> None:
    write_masks(tmp_path, tmp_path / "masks")
    loc_file = tmp_path / "metadata" / "test" / "localization.txt"
    loc = loc_file.read_text()
    assert "_ma.png does not exist" in err(tmp_path)  # masks are under mask_root, not root
    first = loc.splitlines()[0]
    loc_file.write_text(loc + first + "\n")
    assert "localization.txt:7: a second ignore mask for test/0cls0" in err(
        tmp_path, mask_root=str(tmp_path / "masks")
    )


def test_train_extract_evaluate_report(tmp_path: Path) -> None:
    write_boxes(tmp_path)
    data = ["--dataset", "wsol", "--data-root", str(tmp_path), "--image-size", str(S)]
    run, p = train_extract_evaluate(tmp_path, data, "w", 3)
    assert "MaxBoxAcc" in p.stdout
    r = json.loads((tmp_path / "e.json").read_text())
    assert r["images"] == N["test"] and r["pxap"] is None
    assert (
        0 <= r["max_box_acc"] <= 100
        and 0 <= r["max_box_acc_v2"] <= 100
        and set(r["max_box_acc_v2_per_iou"]) == {"30", "50", "70"}
    )
    assert "MaxBoxAcc" in report_html(run, tmp_path)
