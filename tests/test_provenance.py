"""Provenance: every artifact records what made it (data config, split, fingerprint, model,
method, camkit's version), and the commands that read one take its data from it: scoring the
maps against other data is refused, and the same data gives the same numbers with or without
the data options."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import Subset

import camkit
from camkit.core import provenance
from camkit.core.mapfile import load_maps, save_maps
from camkit.data.base import FileDataset
from camkit.data.datasets import DataConfig, build_split
from camkit.data.folders import Record
from camkit.models.checkpoint import load_checkpoint
from cli_helpers import assert_one_line_error, run_here
from prov_helpers import extract_tiny, other_fmnist, train_tiny


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, fake_fmnist: Path) -> Path:
    return train_tiny(tmp_path_factory.mktemp("prov-run"), fake_fmnist)


@pytest.fixture(scope="module")
def maps(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return extract_tiny(tiny, tmp_path_factory.mktemp("prov-maps") / "maps.npz")


def _cfg(root: Path, **kw: object) -> DataConfig:
    return DataConfig(root=str(root), n_train=64, n_val=16, n_test=16, image_size=32, **kw)  # type: ignore[arg-type]


# --- the fingerprint ------------------------------------------------------------------------


def test_fingerprint_tells_splits_apart(fake_fmnist: Path, tmp_path: Path) -> None:
    a = provenance.fingerprint(build_split(_cfg(fake_fmnist), "test"))
    assert a == provenance.fingerprint(build_split(_cfg(fake_fmnist), "test"))  # deterministic
    assert a["images"] == 16 and a["content_kind"] == "masks+pixels"
    seed = provenance.fingerprint(build_split(_cfg(fake_fmnist, seed=5), "test"))
    assert provenance.fingerprint_differences(a, seed) == ["labels", "masks/files"]
    val = provenance.fingerprint(build_split(_cfg(fake_fmnist), "val"))
    assert "masks/files" in provenance.fingerprint_differences(a, val)
    more = provenance.fingerprint(build_split(dataclasses.replace(_cfg(fake_fmnist), n_test=32), "test"))
    assert provenance.fingerprint_differences(a, more)[0] == "images (16 recorded, 32 found)"
    # a subset is fingerprinted as the images it holds
    ds = build_split(_cfg(fake_fmnist), "test")
    sub = provenance.fingerprint(Subset(ds, [0, 1, 2]))
    assert sub["images"] == 3 and sub["labels"] != a["labels"]
    assert sub == provenance.fingerprint(Subset(Subset(ds, [0, 1, 2, 3]), [0, 1, 2]))


def test_fingerprint_of_files_sees_masks_and_names(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    recs = []
    for i in range(3):
        img, mask = tmp_path / f"{i}.png", tmp_path / f"{i}_m.png"
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(img)
        Image.fromarray((rng.random((8, 8)) > 0.5).astype(np.uint8) * 255).save(mask)
        recs.append(Record(img, i % 2, mask))
    a = provenance.fingerprint(FileDataset(recs, 8))
    assert a["content_kind"] == "mask files+image files" and a["images"] == 3
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "1_m.png")  # one mask changes
    b = provenance.fingerprint(FileDataset(recs, 8))
    assert provenance.fingerprint_differences(a, b) == ["masks/files"]
    relabelled = [dataclasses.replace(r, label=1 - r.label) for r in recs]
    assert provenance.fingerprint_differences(b, provenance.fingerprint(FileDataset(relabelled, 8))) == [
        "labels"
    ]


def test_fingerprint_of_items_with_mask_files_and_boxes(tmp_path: Path) -> None:
    """Datasets that keep ``items`` (VOC/COCO/WSOL-style: image, mask files, boxes) are
    fingerprinted by their files too."""
    from types import SimpleNamespace

    from torch.utils.data import Dataset

    class Items(Dataset):
        def __init__(self, items: list[SimpleNamespace]) -> None:
            self.items, self.ids = items, [it.image_id for it in items]
            self.labels = torch.zeros(len(items), dtype=torch.int64)

        def __len__(self) -> int:
            return len(self.items)

    for name in ("a.jpg", "a.png", "b.jpg"):
        (tmp_path / name).write_bytes(name.encode())
    items = [
        SimpleNamespace(image_id="a", image=tmp_path / "a.jpg", mask=tmp_path / "a.png"),
        SimpleNamespace(image_id="b", path=tmp_path / "b.jpg", boxes=np.array([[1, 2, 3, 4]])),
    ]
    a = provenance.fingerprint(Items(items))
    assert a["content_kind"] == "mask files+image files"
    (tmp_path / "a.png").write_bytes(b"other mask")  # a mask file changes
    b = provenance.fingerprint(Items(items))
    assert provenance.fingerprint_differences(a, b) == ["masks/files"]
    (tmp_path / "a.png").write_bytes(b"a.png")
    assert provenance.fingerprint(Items(items)) == a
    items[1].boxes = np.array([[1, 2, 3, 5]])  # a box changes
    assert provenance.fingerprint_differences(a, provenance.fingerprint(Items(items))) == ["masks/files"]


def test_data_differences_ignore_where_the_data_lives() -> None:
    a = dataclasses.asdict(DataConfig(root="/a", cache_dir="/c1"))
    b = dataclasses.asdict(DataConfig(root="/b", cache_dir="/c2", seed=5, n_test=10))
    assert provenance.data_differences(a, b) == [("n_test", 1000, 10), ("seed", 0, 5)]
    newer = {**b, "some_later_option": 3}  # a setting an older file does not know is skipped
    assert provenance.data_differences(a, newer) == [("n_test", 1000, 10), ("seed", 0, 5)]


# --- what the artifacts record ---------------------------------------------------------------


def test_maps_record_data_model_method_and_version(tiny: Path, maps: Path, fake_fmnist: Path) -> None:
    rec = load_maps(maps).meta[provenance.KEY]
    assert rec["camkit"] == camkit.__version__ and rec["format"] == 1
    assert rec["method"] == "cam" and rec["target"] == "label"
    cfg = json.loads((tiny / "config.json").read_text())["data"]
    assert rec["data"]["config"] == cfg and rec["data"]["split"] == "test"  # the full config
    assert rec["data"]["fingerprint"] == provenance.fingerprint(build_split(_cfg(fake_fmnist), "test"))
    model, _ = load_checkpoint(tiny / "best.safetensors")
    assert rec["model"]["weights"] == provenance.weights_hash(model)
    assert rec["model"]["source"] == str(tiny / "best.safetensors")
    assert len(rec["model"]["checkpoint_sha256"]) == 16


def test_run_folder_records_its_data(tiny: Path, fake_fmnist: Path) -> None:
    rec = json.loads((tiny / "provenance.json").read_text())
    assert rec["camkit"] == camkit.__version__ and rec["mode"] == "cam"
    assert rec["data"]["config"] == json.loads((tiny / "config.json").read_text())["data"]
    cfg = DataConfig.from_dict(rec["data"]["config"])
    for split in ("train", "val"):
        assert rec["splits"][split] == provenance.fingerprint(build_split(cfg, split))
    assert rec["model"]["config"]["backbone"] == "resnet18"


def test_shards_record_what_made_them(tiny: Path, tmp_path: Path) -> None:
    assert run_here("extract", "--run", str(tiny), "--shard-dir", str(tmp_path / "sh")).returncode == 0
    man = json.loads((tmp_path / "sh" / "shards.json").read_text())
    assert man["method"] == "cam" and man["target"] == "label" and man["data"]["split"] == "test"
    model, _ = load_checkpoint(tiny / "best.safetensors")
    assert man["model"]["weights"] == provenance.weights_hash(model)
    assert "root" not in man["data"]["config"] and man["data"]["config"]["n_test"] == 16
    assert man["data"]["fingerprint"]["images"] == 16
    # the gathered map set carries the same provenance as a direct extraction
    p = run_here(
        "extract", "--run", str(tiny), "--shard-dir", str(tmp_path / "sh"), "--out", str(tmp_path / "g.npz")
    )
    assert p.returncode == 0, p.stderr
    assert (
        load_maps(tmp_path / "g.npz").meta[provenance.KEY]["data"]["fingerprint"]
        == man["data"]["fingerprint"]
    )
    assert run_here("evaluate", "--maps", str(tmp_path / "g.npz")).returncode == 0


def test_prototypes_and_report_record_provenance(tiny: Path, tmp_path: Path) -> None:
    from camkit.methods.prototypes import PrototypeConfig, load_prototypes, save_prototypes
    from camkit.wsss.prototypes import build_prototypes

    model, _ = load_checkpoint(tiny / "best.safetensors")
    cfg = DataConfig.from_dict(json.loads((tiny / "config.json").read_text())["data"])
    ds = build_split(cfg, "val")
    protos = build_prototypes(model, ds, PrototypeConfig(k=1, max_points=64), batch_size=16)
    save_prototypes(tmp_path / "p.safetensors", protos)
    rec = load_prototypes(tmp_path / "p.safetensors").meta[provenance.KEY]
    assert rec["data"]["split"] == "val" and rec["data"]["fingerprint"] == provenance.fingerprint(ds)
    assert rec["model"]["weights"] == provenance.weights_hash(model) and rec["layer"] == protos.layer
    p = run_here("report", str(tiny), "--num", "2", "--out", str(tmp_path / "r.html"))
    assert p.returncode == 0, p.stderr
    html = (tmp_path / "r.html").read_text()
    assert "Provenance" in html and provenance.fingerprint(build_split(cfg, "test"))["content"] in html


# --- reading the data back from the maps -------------------------------------------------------


def test_evaluate_reads_the_data_from_the_maps(maps: Path, tmp_path: Path, fake_fmnist: Path) -> None:
    p = run_here("evaluate", "--maps", str(maps), "--out", str(tmp_path / "a.json"))
    assert p.returncode == 0, p.stderr
    same = ["--dataset", "fashion", "--data-seed", "0", "--n-test", "16", "--data-root", str(fake_fmnist)]
    p = run_here("evaluate", "--maps", str(maps), *same, "--out", str(tmp_path / "b.json"))
    assert p.returncode == 0, p.stderr
    a, b = (json.loads((tmp_path / f).read_text()) for f in ("a.json", "b.json"))
    assert a["miou_curve"] == b["miou_curve"] and a["pxap"] == b["pxap"]
    assert a[provenance.KEY] == load_maps(maps).meta[provenance.KEY]  # the scores say what they scored
    # the command: another seed is refused, saying what differs
    p = run_here("evaluate", "--maps", str(maps), "--dataset", "fashion", "--data-seed", "5")
    assert_one_line_error(p, "--data-seed 0 in the maps, 5 given")


def test_other_data_on_disk_is_refused(maps: Path, tmp_path: Path, fake_fmnist: Path) -> None:
    """Same options, other files under --data-root: the fingerprint tells. The same files
    elsewhere are fine (where the data lives is not what it is)."""
    import shutil

    moved = shutil.copytree(fake_fmnist, tmp_path / "moved")
    assert run_here("evaluate", "--maps", str(maps), "--data-root", str(moved)).returncode == 0
    root = other_fmnist(tmp_path / "other")
    p = run_here("evaluate", "--maps", str(maps), "--data-root", str(root))
    assert_one_line_error(p, "--maps", "not the one the maps were made from", "labels", "masks/files")
    p = run_here("visualize", "--maps", str(maps), "--data-root", str(root), "--out", str(tmp_path / "v"))
    assert_one_line_error(p, "not the one the maps were made from")


def test_old_files_work_with_a_warning(
    maps: Path, tmp_path: Path, fake_fmnist: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ms = load_maps(maps)
    old = dataclasses.replace(ms, meta={k: v for k, v in ms.meta.items() if k != provenance.KEY})
    save_maps(tmp_path / "old.npz", old)
    with caplog.at_level(logging.WARNING):
        p = run_here("evaluate", "--maps", str(tmp_path / "old.npz"), "--out", str(tmp_path / "o.json"))
    assert p.returncode == 0, p.stderr
    assert "carries no provenance" in caplog.text + p.stderr
    p = run_here("evaluate", "--maps", str(maps), "--out", str(tmp_path / "n.json"))
    a, b = (json.loads((tmp_path / f).read_text()) for f in ("o.json", "n.json"))
    assert a["miou_curve"] == b["miou_curve"]
    assert a[provenance.KEY] is None


def test_maps_of_an_image_folder_record_no_config(tmp_path: Path) -> None:
    from camkit.data.datasets import image_folder_dataset
    from camkit.models.camnet import CAMNet, ModelConfig
    from camkit.pipeline.extract import extract

    for i in range(2):
        Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(tmp_path / f"{i}.png")
    ds = image_folder_dataset(tmp_path, 8)
    ms = extract(CAMNet(ModelConfig(num_classes=2)), ds, "cam", "pred")
    rec = ms.meta[provenance.KEY]
    assert rec["data"]["config"] is None and rec["data"]["fingerprint"]["images"] == 2
    assert "data" not in ms.meta
    assert torch.isfinite(ms.maps).all()


def test_demo_maps_evaluate_with_no_flag(tmp_path: Path, fake_fmnist: Path) -> None:
    """The issue's two commands on the demo's own maps file (the demo at a tiny size: same code path)."""
    import camkit.apps.demo as demo_mod

    orig = demo_mod.demo_config

    def tiny_config(*a, **k):  # type: ignore[no-untyped-def]
        cfg = orig(*a, **k)
        cfg.data = dataclasses.replace(
            cfg.data, root=str(fake_fmnist), n_train=32, n_val=16, n_test=16, image_size=32
        )
        cfg.train = dataclasses.replace(cfg.train, epochs=1)
        return cfg

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(demo_mod, "demo_config", tiny_config)
        p = run_here("demo", "--quick", "--out", str(tmp_path / "d"))
    assert p.returncode == 0, p.stderr
    maps = str(tmp_path / "d" / "maps_test.npz")
    p = run_here("evaluate", "--maps", maps, "--out", str(tmp_path / "e.json"))
    assert p.returncode == 0, p.stderr
    demo = json.loads((tmp_path / "d" / "metrics.json").read_text())
    assert json.loads((tmp_path / "e.json").read_text())["peak_iou"] == pytest.approx(
        demo["peak_iou"], abs=1e-6
    )
    assert_one_line_error(
        run_here("evaluate", "--maps", maps, "--dataset", "fashion", "--data-seed", "5"),
        f"--maps {maps}: made from other data (--data-seed 0 in the maps, 5 given)",
    )
