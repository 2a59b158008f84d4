from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from camkit.core.errors import CamkitError
from camkit.data import DataConfig, build_split, class_names


def test_image_folder_with_masks(image_tree: tuple[Path, Path]) -> None:
    root, masks = image_tree
    cfg = DataConfig(dataset="folder", root=str(root), mask_root=str(masks), image_size=16, val_fraction=0.25)
    assert class_names(cfg) == ["cat", "dog"]
    tr, va, te = (build_split(cfg, s) for s in ("train", "val", "test"))
    assert len(tr) + len(va) == 12 and len(va) == 3 and len(te) == 6
    s = te[4]
    assert s["image"].shape == (3, 16, 16) and s["has_mask"] and int(s["label"]) == 1
    # 20x24 mask with rows 5..14, cols 6..17 set, resized (nearest) to 16x16
    assert s["mask"].sum() > 0 and s["mask"][0, 0] == 0
    assert not tr[0]["has_mask"]


def test_image_folder_errors(image_tree: tuple[Path, Path], tmp_path: Path) -> None:
    root, masks = image_tree
    with pytest.raises(CamkitError, match=r"root=.*missing: folder not found"):
        build_split(DataConfig(dataset="folder", root=str(tmp_path / "missing")), "train")
    # a mask whose size differs from its image
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(masks / "test" / "cat" / "0.png")
    with pytest.raises(CamkitError, match=r"0\.png: mask is 10x10 but its image 0.png is 24x20"):
        build_split(DataConfig(dataset="folder", root=str(root), mask_root=str(masks)), "test")
    # an image PIL cannot read: a one-line error naming the file when it is loaded
    (root / "test" / "dog" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    ds = build_split(DataConfig(dataset="folder", root=str(root)), "test")
    i = [r.path.name for r in ds.records].index("broken.jpg")
    with pytest.raises(CamkitError, match=r"broken\.jpg: cannot read this image"):
        ds[i]


def _lab_tree(tmp_path: Path) -> Path:
    root = tmp_path / "lab"
    rng = np.random.default_rng(0)
    for split in ("train", "test", "test_seg_source"):
        (root / split).mkdir(parents=True)
    (root / "test_seg").mkdir()
    lines = {"train": [], "test": []}
    for split, n in (("train", 8), ("test", 4)):
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(
                root / split / f"{split}{i}.png"
            )
            lines[split].append(f"{split}{i}.png {i % 10}")
        (root / f"{split}_cls.txt").write_text("\n".join(lines[split]) + "\n")
    for i in range(2):
        Image.open(root / "test" / f"test{i}.png").save(root / "test_seg_source" / f"test{i}.png")
        m = np.zeros((32, 32), np.uint8)
        m[8:24, 8:24] = 255
        Image.fromarray(m).save(root / "test_seg" / f"test{i}.png")
    return root


def test_lab_layout(tmp_path: Path) -> None:
    root = _lab_tree(tmp_path)
    cfg = DataConfig(dataset="lab", root=str(root), image_size=64, val_fraction=0.25)
    tr, va, te, seg = (build_split(cfg, s) for s in ("train", "val", "test", "seg"))
    assert (len(tr), len(va), len(te), len(seg)) == (6, 2, 4, 2)
    s = seg[1]
    assert s["has_mask"] and int(s["label"]) == 1 and s["image"].shape == (3, 64, 64)
    assert int(s["mask"].sum()) == 32 * 32  # 16x16 square upsampled x2


def test_lab_layout_errors(tmp_path: Path) -> None:
    root = _lab_tree(tmp_path)
    (root / "train_cls.txt").write_text("train0.png 0\nghost.png 3\n")
    with pytest.raises(CamkitError, match=r"train_cls\.txt:2: image .*ghost\.png does not exist"):
        build_split(DataConfig(dataset="lab", root=str(root)), "train")
    (root / "train_cls.txt").write_text("train0.png 12\n")
    with pytest.raises(CamkitError, match=r"train_cls\.txt:1: label 12 out of range 0..9"):
        build_split(DataConfig(dataset="lab", root=str(root)), "train")
    (root / "test_cls.txt").unlink()
    with pytest.raises(CamkitError, match=r"test_cls\.txt: list file not found"):
        build_split(DataConfig(dataset="lab", root=str(root)), "test")


def test_find_images(tmp_path: Path) -> None:
    from camkit.core.errors import OptionError
    from camkit.data.folders import find_images

    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/b/z.PNG", "a/y.jpg", "a/notes.txt", "x.bmp"):
        Image.new("RGB", (4, 4)).save(tmp_path / name, format="PNG") if name[-3:] != "txt" else (
            tmp_path / name
        ).write_text("-")
    assert find_images(tmp_path / "a") == [tmp_path / "a/b/z.PNG", tmp_path / "a/y.jpg"]
    # a sequence keeps its order; folders are searched recursively and sorted
    assert find_images([tmp_path / "x.bmp", tmp_path / "a"]) == [
        tmp_path / "x.bmp", tmp_path / "a/b/z.PNG", tmp_path / "a/y.jpg",
    ]  # fmt: skip
    (tmp_path / "empty").mkdir()
    with pytest.raises(OptionError, match=r"images=.*empty: no images found \(extensions: .jpg"):
        find_images(tmp_path / "empty")
    with pytest.raises(OptionError, match=r"images=.*nowhere: folder not found"):
        find_images(str(tmp_path / "nowhere"))
    with pytest.raises(CamkitError, match=r"empty: no images in this folder"):
        find_images([tmp_path / "empty"])
    with pytest.raises(CamkitError, match=r"nowhere: no such image file or folder"):
        find_images([tmp_path / "nowhere"])
    with pytest.raises(CamkitError, match="give at least one image file or folder"):
        find_images([])
