"""The WSSS flow on the multi-object benchmark, through the command line: multi-label and
ReCAM training, CAM/NWC/ReCAM/LPCAM extraction, prototypes, seed evaluation. The commands run
in this process (``run_here``), but for ``prototypes``, whose test is its console-script path."""

import json
from pathlib import Path

import pytest

from cli_helpers import assert_one_line_error, run, run_here

DATA = ["--dataset", "fashion-multi", "--n-train", "96", "--n-val", "24", "--n-test", "24"]


@pytest.fixture(scope="module")
def wsss(tmp_path_factory: pytest.TempPathFactory, fake_fmnist: Path) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("wsss")
    cache = str(out / "cache")
    common = [
        *DATA,
        "--data-root",
        str(fake_fmnist),
        "--epochs",
        "1",
        "--batch-size",
        "32",
        "--out",
        str(out),
    ]
    p = run_here("train", *common, "--exp-id", "cam", env_cache=cache)
    assert p.returncode == 0, p.stderr
    assert "val mAP" in p.stdout and "test mAP" in p.stdout
    p = run_here("train", *common, "--exp-id", "tap", "--head", "tap", env_cache=cache)
    assert p.returncode == 0, p.stderr
    p = run_here(
        "train", *common, "--exp-id", "recam", "--mode", "recam", "--recam-norm", "sigmoid",
        "--init", str(out / "cam" / "best.safetensors"), env_cache=cache,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    return {"out": out, "cache": Path(cache), "root": fake_fmnist}


def test_train_configs(wsss: dict[str, Path]) -> None:
    out = wsss["out"]
    assert json.loads((out / "tap" / "config.json").read_text())["model"]["head"] == "tap"
    cfg = json.loads((out / "recam" / "config.json").read_text())
    assert cfg["model"]["fc2"] is True and cfg["mode"] == "recam" and cfg["train"]["recam_norm"] == "sigmoid"
    hist = [json.loads(x) for x in (out / "cam" / "metrics.jsonl").read_text().splitlines()]
    assert "val_map" in hist[0] and "val_f1" in hist[0]


def test_extract_prototypes_lpcam_evaluate(wsss: dict[str, Path]) -> None:
    out, cache = wsss["out"], str(wsss["cache"])
    p = run_here(
        "extract",
        "--run",
        str(out / "cam"),
        "--method",
        "cam,nwc-cam",
        "--out",
        str(out / "m_{method}.npz"),
        env_cache=cache,
    )
    assert p.returncode == 0, p.stderr
    assert "(10, 8, 8)" in p.stdout  # every class present, one map each
    protos = out / "protos.safetensors"
    p = run("prototypes", "--run", str(out / "cam"), "--k", "2", "--out", str(protos), env_cache=cache)
    assert p.returncode == 0, p.stderr
    assert protos.is_file() and "wrote" in p.stdout
    p = run_here(
        "extract", "--run", str(out / "cam"), "--method", "lpcam,lpcam-f", "--prototypes", str(protos),
        "--out", str(out / "lp_{method}.npz"), env_cache=cache,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    p = run_here(
        "extract", "--run", str(out / "recam"), "--method", "recam", "--recam-weights", "sum",
        "--out", str(out / "recam.npz"), env_cache=cache,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    for f in ("m_cam.npz", "lp_lpcam.npz", "recam.npz"):
        res_file = out / f"{f}.json"
        p = run_here(
            "evaluate",
            "--maps",
            str(out / f),
            "--bg-threshold",
            "0.3",
            "--out",
            str(res_file),
            env_cache=cache,
        )
        assert p.returncode == 0, p.stderr
        assert "seed mIoU at bg t=0.30" in p.stdout and "PaS" in p.stdout
        r = json.loads(res_file.read_text())
        s = r["seeds"]
        assert 0 <= s["miou"] <= s["peak_miou"] <= 1 and s["bg_threshold"] == 0.3
        assert set(r["peak_iou"]) == {"max", "percentile"}
    p = run_here(
        "visualize",
        "--maps",
        str(out / "lp_lpcam.npz"),
        "--num",
        "3",
        "--out",
        str(out / "vis"),
        env_cache=cache,
    )
    assert p.returncode == 0, p.stderr
    assert (out / "vis" / "grid.png").stat().st_size > 1000
    assert len(list((out / "vis" / "overlays").glob("*.png"))) >= 3  # one per (image, class present)
    p = run_here("report", str(out / "cam"), "--method", "cam,lpcam", "--prototypes", str(protos), "--num", "2",
            "--out", str(out / "r.html"), env_cache=cache)  # fmt: skip
    assert p.returncode == 0, p.stderr
    page = (out / "r.html").read_text()
    assert "Seed scores" in page and "lpcam" in page


def test_wsss_bad_inputs(wsss: dict[str, Path]) -> None:
    out, cache = wsss["out"], str(wsss["cache"])
    p = run_here(
        "extract",
        "--run",
        str(out / "cam"),
        "--method",
        "recam",
        "--out",
        str(out / "x.npz"),
        env_cache=cache,
    )
    assert_one_line_error(p, "FC2", "--mode recam")
    p = run_here(
        "extract", "--run", str(out / "cam"), "--method", "lpcam", "--prototypes", str(out / "nope.safetensors"),
        "--out", str(out / "x.npz"), env_cache=cache,
    )  # fmt: skip
    assert_one_line_error(p, "--prototypes", "not found")
    p = run_here(
        "extract",
        "--run",
        str(out / "cam"),
        "--method",
        "lpcam",
        "--out",
        str(out / "x.npz"),
        env_cache=cache,
    )
    assert_one_line_error(p, "--prototypes")
    p = run_here(
        "extract",
        "--run",
        str(out / "cam"),
        "--method",
        "cam",
        "--target",
        "pred",
        "--out",
        str(out / "x.npz"),
        env_cache=cache,
    )
    assert_one_line_error(p, "--target")
    p = run_here(
        "train", *DATA, "--data-root", str(wsss["root"]), "--mode", "seg", "--out", str(out), "--exp-id", "segml",
        "--epochs", "1", env_cache=cache,
    )  # fmt: skip
    assert_one_line_error(p, "--mode seg", "multi-label")
    assert not (out / "x.npz").exists()
