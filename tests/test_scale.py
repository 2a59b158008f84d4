"""Scale and reliability: sharded resumable extraction, torchrun with gloo on 2 CPU processes,
and SIGTERM in the middle of training and of extraction, then resume."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from camkit.data.datasets import DataConfig, build_split
from camkit.models.checkpoint import load_checkpoint
from camkit.pipeline.extract import extract
from camkit.pipeline.shards import extract_shards, file_name, gather
from camkit.train.config import RunConfig
from camkit.train.loop import train_run
from cli_helpers import run

CAMKIT = [sys.executable, "-m", "camkit.cli.main"]


def _data(root: Path, n_train: int = 64, n_val: int = 48) -> list[str]:
    return ["--data-root", str(root), "--n-train", str(n_train), "--n-val", str(n_val), "--n-test", "16"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, fake_fmnist: Path) -> Path:
    out = tmp_path_factory.mktemp("scale")
    cfg = RunConfig.from_dict({
        "data": {"root": str(fake_fmnist), "n_train": 64, "n_val": 48, "n_test": 16},
        "train": {"epochs": 1, "batch_size": 16, "out": str(out), "exp_id": "run"},
    })  # fmt: skip
    train_run(cfg)
    return out / "run"


def test_shards_equal_extract_and_resume(tiny: Path, fake_fmnist: Path, tmp_path: Path) -> None:
    model, _ = load_checkpoint(tiny / "best.safetensors")
    ds = build_split(DataConfig(root=str(fake_fmnist), n_train=64, n_val=48, n_test=16), "val")
    c = extract_shards(model, ds, "cam", tmp_path, batch_size=16)
    assert c == {"written": 48, "skipped": 0, "total": 48}
    ref = extract(model, ds, "cam", batch_size=16)
    got = gather(tmp_path)
    assert torch.equal(got.maps, ref.maps) and got.ids == ref.ids and torch.equal(got.preds, ref.preds)
    # a job killed part-way: some files missing; the rerun writes exactly those
    ids = ref.ids
    stamps = {i: (tmp_path / file_name(i)).stat().st_mtime_ns for i in ids}
    for i in ids[5:8] + ids[40:41]:
        (tmp_path / file_name(i)).unlink()
    c = extract_shards(model, ds, "cam", tmp_path, batch_size=16)
    assert c == {"written": 4, "skipped": 44, "total": 48}
    kept = [i for i in ids if i not in ids[5:8] + ids[40:41]]
    assert all((tmp_path / file_name(i)).stat().st_mtime_ns == stamps[i] for i in kept)  # untouched
    assert torch.equal(gather(tmp_path).maps, ref.maps)
    assert not list(tmp_path.glob(".*tmp*"))


def _torchrun() -> list[str]:
    exe = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    if not exe:
        pytest.skip("torchrun is not installed")
    return [exe, "--standalone", "--nproc-per-node", "2", "--no-python", "--"]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}  # torchrun's default; the same for the reference


def test_torchrun_gloo_matches_one_process(tiny: Path, fake_fmnist: Path, tmp_path: Path) -> None:
    cli = [str(Path(sys.executable).parent / "camkit")]
    # extraction: 2 ranks vs 1 process, same batches -> bit-identical files
    one = subprocess.run([*CAMKIT, "extract", "--run", str(tiny), "--split", "val", "--batch-size", "8",
                          "--shard-dir", str(tmp_path / "one")], capture_output=True, text=True, env=_env(), timeout=300)  # fmt: skip
    assert one.returncode == 0, one.stderr
    two = subprocess.run([*_torchrun(), *cli, "extract", "--run", str(tiny), "--split", "val", "--batch-size", "8",
                          "--shard-dir", str(tmp_path / "two")], capture_output=True, text=True, env=_env(), timeout=300)  # fmt: skip
    assert two.returncode == 0, two.stderr[-2000:]
    files = sorted(p.name for p in (tmp_path / "one").glob("*.npz"))
    assert len(files) == 48 and files == sorted(p.name for p in (tmp_path / "two").glob("*.npz"))
    for f in files:
        assert (tmp_path / "one" / f).read_bytes() == (tmp_path / "two" / f).read_bytes(), f
    # training: 2 ranks x batch 8 vs one process x batch 16 (frozen backbone: no BatchNorm
    # statistics differ between the two), the same global batches in the same order
    common = [
        *_data(fake_fmnist),
        "--epochs",
        "2",
        "--freeze-backbone",
        "--lr",
        "0.01",
        "--out",
        str(tmp_path),
    ]
    one = subprocess.run([*CAMKIT, "train", *common, "--batch-size", "16", "--exp-id", "one"],
                         capture_output=True, text=True, env=_env(), timeout=300)  # fmt: skip
    assert one.returncode == 0, one.stderr
    two = subprocess.run([*_torchrun(), *cli, "train", *common, "--batch-size", "8", "--exp-id", "two"],
                         capture_output=True, text=True, env=_env(), timeout=300)  # fmt: skip
    assert two.returncode == 0, two.stderr[-2000:]
    a, b = (
        load_file(str(tmp_path / "one" / "best.safetensors")),
        load_file(str(tmp_path / "two" / "best.safetensors")),
    )
    assert set(a) == set(b)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6, msg=k)
    assert (a["classifier.weight"] != load_checkpoint(tiny / "best.safetensors")[0].classifier.weight).any()
    sa = (tmp_path / "one" / "summary.json").read_text()
    assert '"world_size": 2' in (tmp_path / "two" / "summary.json").read_text() and "world_size" not in sa


def _kill_when(p: subprocess.Popen, ready, timeout: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    t = time.time()
    while not ready():
        assert p.poll() is None, "finished before it could be interrupted; give it more work"
        assert time.time() - t < timeout
        time.sleep(0.02)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 143, err
    assert "interrupted (SIGTERM)" in err and "Traceback" not in err


# the full-size run is a slow study; the default suite runs the same path on smaller images, 2 epochs
@pytest.mark.parametrize(("image_size", "epochs"), [(32, 2), pytest.param(64, 3, marks=pytest.mark.slow)])
def test_sigterm_mid_epoch_then_resume_equals_uninterrupted(
    fake_fmnist: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, image_size: int, epochs: int
) -> None:
    # one thread per process: multi-threaded CPU kernels may reduce in a different order from
    # one run to the next, which would differ in the last bits whether or not a run is resumed
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    args = [
        "train",
        *_data(fake_fmnist, n_train=600),
        "--image-size",
        str(image_size),
        "--epochs",
        str(epochs),
        "--batch-size",
        "8",
        "--out",
        str(tmp_path),
    ]
    full = run(*args, "--exp-id", "full")
    assert full.returncode == 0, full.stderr
    p = subprocess.Popen(
        [*CAMKIT, *args, "--exp-id", "cut"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    log = tmp_path / "cut" / "metrics.jsonl"
    # after the first epoch's files, and well before the second ends (75 steps of 8 images)
    _kill_when(p, lambda: log.is_file() and (time.sleep(0.3) or True))
    assert len(log.read_text().splitlines()) == 1  # stopped in the middle of epoch 2
    assert not list((tmp_path / "cut").glob(".*tmp*"))  # nothing half-written
    again = run(*args, "--exp-id", "cut", "--resume")
    assert again.returncode == 0, again.stderr
    a, b = (
        load_file(str(tmp_path / "full" / "best.safetensors")),
        load_file(str(tmp_path / "cut" / "best.safetensors")),
    )
    assert all(torch.equal(a[k], b[k]) for k in a)

    def strip(f: Path) -> list[dict]:
        return [
            {k: v for k, v in json.loads(x).items() if k != "images_per_s"}
            for x in f.read_text().splitlines()
        ]

    assert strip(tmp_path / "full" / "metrics.jsonl") == strip(log)
    sa = json.loads((tmp_path / "full" / "summary.json").read_text())
    sb = json.loads((tmp_path / "cut" / "summary.json").read_text())
    assert sa["test"] == sb["test"] and sa["best_epoch"] == sb["best_epoch"]


def test_sigterm_mid_extraction_then_resume(tiny: Path, fake_fmnist: Path, tmp_path: Path) -> None:
    args = ["extract", "--run", str(tiny), "--split", "train", "--n-train", "600", "--batch-size", "4"]
    ref = run(*args, "--shard-dir", str(tmp_path / "ref"))
    assert ref.returncode == 0, ref.stderr
    out = tmp_path / "cut"
    p = subprocess.Popen([*CAMKIT, *args, "--shard-dir", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=os.environ)  # fmt: skip
    _kill_when(p, lambda: out.is_dir() and len(list(out.glob("*.npz"))) >= 40)
    done = len(list(out.glob("*.npz")))
    assert 40 <= done < 600 and not (out / "index.json").exists()
    assert not list(out.glob(".*tmp*"))
    again = run(*args, "--shard-dir", str(out))
    assert again.returncode == 0, again.stderr
    assert f"{600 - done} maps written, {done} already there" in again.stdout
    names = sorted(q.name for q in (tmp_path / "ref").glob("*.npz"))
    assert names == sorted(q.name for q in out.glob("*.npz"))
    assert all((tmp_path / "ref" / f).read_bytes() == (out / f).read_bytes() for f in names)


@pytest.mark.parametrize("amp", ["bf16", "off"])
def test_mixed_precision_option_trains(fake_fmnist: Path, tmp_path: Path, amp: str) -> None:
    cfg = RunConfig.from_dict({
        "data": {"root": str(fake_fmnist), "n_train": 32, "n_val": 16, "n_test": 16},
        "train": {"epochs": 1, "batch_size": 16, "out": str(tmp_path), "exp_id": amp, "amp": amp, "test": False},
    })  # fmt: skip
    s = train_run(cfg)
    assert s["val"]["loss"] > 0 and torch.isfinite(torch.tensor(s["val"]["loss"]))
    rec = json.loads((tmp_path / amp / "metrics.jsonl").read_text().splitlines()[0])
    assert rec["images_per_s"] > 0
    with pytest.raises(Exception, match="train.amp=fp8: choose auto, bf16, fp16 or off"):
        RunConfig.from_dict({"train": {"amp": "fp8"}}).train.validate()
