"""The bad-input matrix, outputs and map files: whatever name the user gives, the file named
holds the data or the command refuses before working; stale or shared shard folders are
refused; map files that are not what camkit writes give one line; maps scored against another
split or seed are refused. Each case runs the command line (``run_here``) on a tiny run."""

from __future__ import annotations

import logging
import os
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from camkit.core.mapfile import load_maps
from cli_helpers import CAMKIT, assert_one_line_error, run_here
from prov_helpers import extract_tiny, leftovers, train_tiny


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, fake_fmnist: Path) -> Path:
    return train_tiny(tmp_path_factory.mktemp("prov-run"), fake_fmnist)


@pytest.fixture(scope="module")
def maps(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return extract_tiny(tiny, tmp_path_factory.mktemp("prov-maps") / "maps.npz")


# --- output names: the file named holds the data ------------------------------------------


@pytest.mark.parametrize("name", ["mymaps", "maps.NPZ", "maps.npz", "sub/dir/m.data"])
def test_out_is_exactly_the_file_named(tiny: Path, tmp_path: Path, name: str) -> None:
    out = tmp_path / name
    p = run_here("extract", "--run", str(tiny), "--out", str(out))
    assert p.returncode == 0, p.stderr
    assert f"-> {out} " in p.stdout  # the path written is printed
    assert out.stat().st_size > 0 and len(load_maps(out)) == 16
    assert leftovers(tmp_path) == [] and sorted(f.name for f in out.parent.iterdir()) == [out.name]
    # and evaluate reads it back under the same name
    assert run_here("evaluate", "--maps", str(out)).returncode == 0


def test_several_methods_need_the_method_in_the_name(tiny: Path, tmp_path: Path) -> None:
    p = run_here("extract", "--run", str(tiny), "--method", "cam,grad-cam", "--out", str(tmp_path / "m.npz"))
    assert_one_line_error(p, "--out", "{method}", "m_{method}.npz")
    assert list(tmp_path.iterdir()) == []  # refused before any work
    p = run_here(
        "extract", "--run", str(tiny), "--method", "cam,grad-cam", "--out", str(tmp_path / "m_{method}.npz")
    )
    assert p.returncode == 0, p.stderr
    for m in ("cam", "grad-cam"):
        assert f"-> {tmp_path / f'm_{m}.npz'} " in p.stdout
        assert load_maps(tmp_path / f"m_{m}.npz").method == m
    assert sorted(f.name for f in tmp_path.iterdir()) == ["m_cam.npz", "m_grad-cam.npz"]


@pytest.mark.parametrize("cmd", ["extract", "evaluate", "report"])
def test_out_an_existing_folder_is_refused(tiny: Path, maps: Path, tmp_path: Path, cmd: str) -> None:
    folder = tmp_path / "taken"
    folder.mkdir()
    argv = {
        "extract": ["extract", "--run", str(tiny)],
        "evaluate": ["evaluate", "--maps", str(maps)],
        "report": ["report", str(tiny)],
    }[cmd]
    assert_one_line_error(run_here(*argv, "--out", str(folder)), "--out", "existing folder")
    assert list(folder.iterdir()) == [] and leftovers(tmp_path) == []


@pytest.mark.parametrize("cmd", ["extract", "evaluate", "visualize", "shards"])
def test_out_under_a_regular_file_says_not_a_directory(
    tiny: Path, maps: Path, tmp_path: Path, cmd: str
) -> None:
    (tmp_path / "f").write_text("x")
    under = str(tmp_path / "f" / "out")
    argv = {
        "extract": ["extract", "--run", str(tiny), "--out", under],
        "evaluate": ["evaluate", "--maps", str(maps), "--out", under],
        "visualize": ["visualize", "--maps", str(maps), "--out", under],
        "shards": ["extract", "--run", str(tiny), "--shard-dir", under],
    }[cmd]
    assert_one_line_error(run_here(*argv), "is a file, not a folder (Not a directory)")
    assert (tmp_path / "f").read_text() == "x"


def test_duplicate_stems_get_unique_ids(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for rel in ("a/x.png", "a/x.jpg", "b/x.png", "y.png"):
        (tmp_path / "imgs" / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(tmp_path / "imgs" / rel)
    from camkit.data.datasets import image_folder_dataset
    from camkit.models.camnet import CAMNet, ModelConfig
    from camkit.models.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "m.safetensors", CAMNet(ModelConfig(num_classes=3)), ["p", "q", "r"])
    out = tmp_path / "m.npz"
    argv = ["extract", "--checkpoint", str(tmp_path / "m.safetensors"), "--images", str(tmp_path / "imgs")]
    p = run_here(*argv, "--image-size", "16", "--target", "pred", "--out", str(out))
    assert p.returncode == 0, p.stderr
    assert load_maps(out).ids == ["a/x.jpg", "a/x.png", "b/x", "y"]
    assert image_folder_dataset(tmp_path / "imgs", 16).ids == ["a/x.jpg", "a/x.png", "b/x", "y"]
    # one file per image: shards need unique ids, and get them
    p = run_here(*argv, "--image-size", "16", "--target", "pred", "--shard-dir", str(tmp_path / "sh"))
    assert p.returncode == 0, p.stderr
    assert len(list((tmp_path / "sh").glob("*.npz"))) == 4


# --- shard folders: what made them, and one writer at a time ------------------------------


def _other_checkpoint(tiny: Path, path: Path) -> Path:
    from camkit.models.checkpoint import load_checkpoint, save_checkpoint

    model, meta = load_checkpoint(tiny / "best.safetensors")
    with torch.no_grad():
        model.classifier.weight.mul_(-1)
    save_checkpoint(path, model, meta["class_names"])
    return path


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (["--checkpoint", "OTHER"], "model weights"),
        (["--method", "grad-cam"], "method cam there, grad-cam now"),
        (["--target", "pred"], "target label there, pred now"),
        (["--split", "val"], "split test there, val now"),
        (["--data-seed", "3"], "data seed 0 there, 3 now"),
        (["--layer", "backbone.layer3"], "layers None there, ['backbone.layer3'] now"),
    ],
)
def test_stale_shards_are_refused(tiny: Path, tmp_path: Path, change: list[str], needle: str) -> None:
    d = tmp_path / "sh"
    p = run_here("extract", "--run", str(tiny), "--shard-dir", str(d))
    assert p.returncode == 0 and "16 maps written" in p.stdout, p.stderr
    before = {f.name: f.read_bytes() for f in d.glob("*.npz")}
    change = [str(_other_checkpoint(tiny, tmp_path / "o.safetensors")) if a == "OTHER" else a for a in change]
    p = run_here("extract", "--run", str(tiny), "--shard-dir", str(d), *change)
    assert_one_line_error(p, str(d), "holds maps of another extraction", needle)
    assert {f.name: f.read_bytes() for f in d.glob("*.npz")} == before
    # the same extraction again resumes (nothing to do)
    p = run_here("extract", "--run", str(tiny), "--shard-dir", str(d))
    assert p.returncode == 0 and "0 maps written, 16 already there" in p.stdout, p.stderr


def test_an_older_shard_folder_is_reused_with_a_warning(
    tiny: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    d = tmp_path / "sh"
    assert run_here("extract", "--run", str(tiny), "--shard-dir", str(d)).returncode == 0
    (d / "shards.json").unlink()  # as an older camkit left it
    with caplog.at_level(logging.WARNING):
        p = run_here("extract", "--run", str(tiny), "--shard-dir", str(d))
    assert p.returncode == 0 and "0 maps written, 16 already there" in p.stdout, p.stderr
    assert "no shards.json" in caplog.text + p.stderr and (d / "shards.json").is_file()
    assert_one_line_error(
        run_here("extract", "--run", str(tiny), "--shard-dir", str(d), "--method", "grad-cam")
    )


def test_a_shard_folder_in_use_is_refused(tiny: Path, tmp_path: Path) -> None:
    import fcntl

    d = tmp_path / "sh"
    d.mkdir()
    with open(d / ".lock", "a+") as fh:  # another extraction holds the folder
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        p = run_here("extract", "--run", str(tiny), "--shard-dir", str(d))
        assert_one_line_error(p, str(d), "another extraction is writing there")
        assert not list(d.glob("*.npz"))
    p = run_here("extract", "--run", str(tiny), "--shard-dir", str(d))  # free again
    assert p.returncode == 0 and "16 maps written" in p.stdout, p.stderr


# --- concurrent extraction into one --out -------------------------------------------------


def test_concurrent_extractions_into_one_out(tiny: Path, tmp_path: Path) -> None:
    """Two extractions (cam, grad-cam) racing to one --out, as two processes started together
    (spawned, not forked: a fork of a process with torch's thread pool can deadlock): the file
    ends whole, one of the two sets (never a mix), and no temporary file is left."""
    out = tmp_path / "m.npz"
    argv = [["extract", "--run", str(tiny), "--method", m, "--out", str(out)] for m in ("cam", "grad-cam")]
    procs = [
        subprocess.Popen([*CAMKIT, *a], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for a in argv
    ]
    done = [(p.wait(timeout=600), p.communicate()[1]) for p in procs]
    assert [c for c, _ in done] == [0, 0], done
    ms = load_maps(out)
    ref = {}
    for m, a in zip(("cam", "grad-cam"), argv, strict=True):
        single = tmp_path / f"{m}.npz"
        assert run_here(*a[:-1], str(single)).returncode == 0
        ref[m] = load_maps(single)
    assert ms.method in ref and torch.equal(ms.maps, ref[ms.method].maps)
    assert leftovers(tmp_path) == []


# --- map files that are not what extract writes --------------------------------------------


def _arrays(maps: Path) -> dict[str, np.ndarray]:
    with np.load(maps) as z:
        return {k: z[k] for k in z.files}


def _bad_map_file(kind: str, maps: Path, path: Path) -> None:
    a = _arrays(maps)
    if kind == "empty-file":
        path.write_bytes(b"")
        return
    if kind == "truncated":
        path.write_bytes(maps.read_bytes()[: maps.stat().st_size // 2])
        return
    if kind == "text":
        path.write_text("maps, but not really\n")
        return
    if kind == "plain-npy":
        np.save(open(path, "wb"), a["maps"])  # noqa: SIM115
        return
    if kind == "empty-spatial":
        a["maps"] = np.zeros((16, 0, 4), np.float32)
    elif kind == "count-mismatch":
        a["labels"] = a["labels"][:10]
    elif kind == "4d-maps":
        a["maps"] = a["maps"][:, None]
    elif kind == "string-labels":
        a["labels"] = np.array([f"c{i}" for i in range(16)])
    elif kind == "no-maps":
        del a["maps"]
    elif kind == "bad-meta":
        a["meta"] = np.array("{not json")
    elif kind == "nan":
        a["maps"][0, 0, 0] = np.nan
    with open(path, "wb") as fh:
        np.savez(fh, **a)


@pytest.mark.parametrize(
    ("kind", "needle"),
    [
        ("empty-file", "the file is empty (0 bytes)"),
        ("truncated", "not a readable camkit map file"),
        ("text", "not a readable camkit map file"),
        ("plain-npy", "not a readable camkit map file"),
        ("empty-spatial", "empty dimension"),
        ("count-mismatch", "labels has shape (10,)"),
        ("4d-maps", "has shape (16,) but class maps (N, K, h, w) (16, 1, 4, 4)"),
        ("string-labels", "labels are <U3 values, not numbers"),
        ("no-maps", "no maps"),
        ("bad-meta", "metadata is not valid JSON"),
        ("nan", "NaN or Inf"),
    ],
)
@pytest.mark.parametrize("cmd", ["evaluate", "visualize"])
def test_bad_map_files(maps: Path, tmp_path: Path, kind: str, needle: str, cmd: str) -> None:
    bad = tmp_path / "bad.npz"
    _bad_map_file(kind, maps, bad)
    argv = (
        ["evaluate", "--maps", str(bad)]
        if cmd == "evaluate"
        else ["visualize", "--maps", str(bad), "--out", str(tmp_path / "v")]
    )
    assert_one_line_error(run_here(*argv), "--maps", str(bad), needle)


def test_maps_folder_is_refused(tmp_path: Path) -> None:
    assert_one_line_error(run_here("evaluate", "--maps", str(tmp_path)), "--maps", "is a folder")


def test_truncated_zip_is_a_bad_zip(maps: Path, tmp_path: Path) -> None:
    """The truncated case above really is a broken archive, not a short valid one."""
    bad = tmp_path / "t.npz"
    bad.write_bytes(maps.read_bytes()[: maps.stat().st_size // 2])
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(bad)


# --- maps scored against another split, seed or size: refused -----------------------------


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--split", "val"], "--split test in the maps, val given"),
        (["--data-seed", "7"], "--data-seed 0 in the maps, 7 given"),
        (["--dataset", "fashion", "--data-seed", "5"], "--data-seed 0 in the maps, 5 given"),
        (["--n-test", "32"], "--n-test 16 in the maps, 32 given"),
        (["--image-size", "48"], "--image-size 32 in the maps, 48 given"),
        (["--dataset", "fashion-multi"], "--dataset fashion in the maps, fashion-multi given"),
    ],
)
@pytest.mark.parametrize("cmd", ["evaluate", "visualize"])
def test_other_data_is_refused(maps: Path, tmp_path: Path, flags: list[str], needle: str, cmd: str) -> None:
    extra = ["--out", str(tmp_path / "v")] if cmd == "visualize" else []
    assert_one_line_error(run_here(cmd, "--maps", str(maps), *flags, *extra), "--maps", "other data", needle)
    assert not (tmp_path / "v").exists()


def test_bad_values(tiny: Path, maps: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "m.npz")
    assert_one_line_error(run_here("extract", "--run", str(tiny), "--method", "", "--out", out), "--method")
    assert not os.path.exists(out)


@pytest.mark.parametrize("exp_id", ["", " ", ".", "..", "a/.."])
def test_exp_id_must_name_a_folder(fake_fmnist: Path, tmp_path: Path, exp_id: str) -> None:
    p = run_here("train", "--data-root", str(fake_fmnist), "--n-train", "32", "--epochs", "1",
                 "--out", str(tmp_path), "--exp-id", exp_id)  # fmt: skip
    assert_one_line_error(p, "--exp-id")  # (the config's own check may answer first)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("t", ["0.35", "0.57", "0.95", "0.123"])
def test_threshold_on_the_grid_up_to_rounding(maps: Path, tmp_path: Path, t: str) -> None:
    """A rounded peak threshold (0.35) sits next to its float64 grid value (0.35000000000000003):
    the two collapsed in float32 and the sweep refused ("strictly increasing")."""
    p = run_here("evaluate", "--maps", str(maps), "--threshold", t, "--out", str(tmp_path / "e.json"))
    assert p.returncode == 0, p.stderr
    import json

    r = json.loads((tmp_path / "e.json").read_text())
    assert r["threshold"] == pytest.approx(float(t), abs=1e-6)
    assert r["miou"] == r["miou_curve"][r["thresholds"].index(r["threshold"])]
