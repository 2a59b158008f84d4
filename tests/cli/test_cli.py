"""The command line, run as a user would run it: a subprocess of the console script (``run``) for
one test of each command, the same ``main`` in this process (``run_here``) for the others."""

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import assert_one_line_error, run, run_here


def _smaller(demo_config):  # type: ignore[no-untyped-def]
    """The demo's own settings with a sixth of its canvases (the same code path, same image size)."""

    def config(*args, **kwargs):  # type: ignore[no-untyped-def]
        cfg = demo_config(*args, **kwargs)
        cfg.data = dataclasses.replace(cfg.data, n_train=128, n_val=32, n_test=32)
        return cfg

    return config


@pytest.fixture(scope="module", params=["small", pytest.param("quick", marks=pytest.mark.slow)])
def quick_demo(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, real_fmnist: Path
) -> Path:
    """``camkit demo --quick``: at its own size in a subprocess (slow), or in this process on a
    sixth of its canvases (the default suite); the tests below run on either."""
    out = tmp_path_factory.mktemp("demo")
    if request.param == "quick":
        p = run("demo", "--quick", "--out", str(out), env_cache=os.environ.get("CAMKIT_CACHE"))
    else:
        import camkit.apps.demo as demo_mod

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(demo_mod, "demo_config", _smaller(demo_mod.demo_config))
            p = run_here("demo", "--quick", "--out", str(out))
    assert p.returncode == 0, p.stderr
    assert "CAM" in p.stdout and "whole_image" in p.stdout and "centre_box" in p.stdout
    return out


@pytest.fixture(scope="module")
def demo_maps(quick_demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``camkit extract`` of the demo run with its defaults, once for the tests that read the maps."""
    maps = tmp_path_factory.mktemp("demo-maps") / "m.npz"
    assert run_here("extract", "--run", str(quick_demo / "run"), "--out", str(maps)).returncode == 0
    return maps


def test_demo_quick_writes_metrics_and_overlays(quick_demo: Path) -> None:
    m = json.loads((quick_demo / "metrics.json").read_text())
    for key in ("accuracy", "miou", "peak_iou", "peak_threshold", "baselines"):
        assert key in m
    assert set(m["baselines"]) == {"whole_image", "centre_box"}
    # plain CAM beside the method chosen on val; the top-level numbers stay plain CAM's
    rows = m["methods"]
    assert set(rows) == {"cam", "nwc-cam"} and "miou" in rows["cam"] and "miou" in rows[m["best_method"]]
    assert m["best_method"] == max(rows, key=lambda k: rows[k]["val_peak_iou"])
    assert rows["cam"]["peak_iou"] == m["peak_iou"] and rows["cam"]["miou"] == m["miou"]
    assert {"canvases", "train", "extract", "score"} <= set(m["timings_s"]) and m["cpu_time_s"] > 0
    assert 0.0 <= m["accuracy"] <= 1.0 and 0.0 <= m["miou"] <= m["peak_iou"] <= 1.0
    assert 0.0 <= m["peak_threshold"] <= 1.0
    # the whole-image baseline is object area / canvas area: small objects, small IoU
    assert 0.02 < m["baselines"]["whole_image"]["miou"] < 0.4
    assert (quick_demo / "visuals" / "grid.png").stat().st_size > 1000
    assert len(list((quick_demo / "visuals" / "overlays").glob("*.png"))) == 8
    assert (quick_demo / "run" / "best.safetensors").is_file()
    # a second demo into the same folder refuses, and keeps what is there
    before = (quick_demo / "run" / "best.safetensors").read_bytes()
    assert_one_line_error(run("demo", "--quick", "--out", str(quick_demo)), "--out", "--force")
    assert (quick_demo / "run" / "best.safetensors").read_bytes() == before


def test_extract_evaluate_visualize_round_trip(quick_demo: Path, tmp_path: Path) -> None:
    run_dir = quick_demo / "run"
    maps = tmp_path / "maps_{method}.npz"
    p = run(
        "extract", "--run", str(run_dir), "--split", "test", "--method", "cam,softmax-cam", "--out", str(maps)
    )
    assert p.returncode == 0, p.stderr
    cam, soft = tmp_path / "maps_cam.npz", tmp_path / "maps_softmax-cam.npz"
    z = np.load(cam)
    assert z["maps"].shape[1:] == (8, 8) and len(z["image_id"]) == len(z["targets"]) == len(z["scores"])
    assert not np.allclose(z["maps"], np.load(soft)["maps"])
    p = run("evaluate", "--maps", str(cam), "--out", str(tmp_path / "ev.json"))
    assert p.returncode == 0, p.stderr
    ev = json.loads((tmp_path / "ev.json").read_text())
    # the demo scored the same maps; its peak must match
    demo = json.loads((quick_demo / "metrics.json").read_text())
    assert ev["peak_iou"] == pytest.approx(demo["peak_iou"], abs=1e-6)
    p = run(
        "visualize", "--maps", str(cam), "--out", str(tmp_path / "vis"), "--num", "4", "--threshold", "0.5"
    )
    assert p.returncode == 0, p.stderr
    assert len(list((tmp_path / "vis" / "overlays").glob("*.png"))) == 4
    assert len(list((tmp_path / "vis" / "masks").glob("*.png"))) == 4


def test_failed_extract_keeps_existing_output(quick_demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "maps.npz"
    out.write_bytes(b"precious")
    assert_one_line_error(
        run_here("extract", "--run", str(quick_demo / "run"), "--method", "nope", "--out", str(out)),
        "--method nope",
    )
    assert out.read_bytes() == b"precious"


def test_bad_input_gives_one_line_errors(tmp_path: Path, image_tree) -> None:
    assert_one_line_error(
        run_here("train", "--dataset", "folder", "--data-root", str(tmp_path / "nope")),
        str(tmp_path / "nope"),
        "not found",
    )
    # tiny splits: train builds its data before its model, and the default 8000 canvases take a while
    tiny = ["--n-train", "8", "--n-val", "4", "--n-test", "4"]
    assert_one_line_error(
        run_here("train", *tiny, "--backbone", "resnet19"), "--backbone resnet19", "resnet18"
    )
    assert_one_line_error(run_here("train", *tiny, "--layer", "layer9"), "--layer layer9", "layer2")
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    assert_one_line_error(
        run_here(
            "extract", "--checkpoint", str(tmp_path / "junk.safetensors"), "--out", str(tmp_path / "m.npz")
        ),
        "junk.safetensors",
    )
    assert_one_line_error(
        run_here("evaluate", "--maps", str(tmp_path / "none.npz")), "--maps", "camkit extract"
    )
    assert_one_line_error(
        run_here("train", "--data-root", str(tmp_path)), "train-images-idx3-ubyte.gz is missing"
    )


def test_help_lists_commands() -> None:
    p = run("--help")
    assert p.returncode == 0
    for c in ("train", "cv", "extract", "evaluate", "visualize", "demo"):
        assert c in p.stdout
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="console_scripts") if e.name == "camkit"]
    assert ep.value == "camkit.cli.main:main"


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    skimage = pytest.importorskip("skimage")
    from PIL import Image

    d = tmp_path_factory.mktemp("photos")
    Image.fromarray(skimage.data.chelsea()).save(d / "cat.png")
    Image.fromarray(skimage.data.coffee()).save(d / "coffee.png")
    return d


def test_extract_pretrained_model_on_photos(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "m_{method}.npz"
    p = run_here("extract", "--model", "efficientnet_lite0", "--images", str(photos), "--method", "grad-cam,layercam",
            "--layer", "backbone.block15,backbone.head", "--layer-weights", "0.5,0.5", "--target", "pred", "--out", str(out))  # fmt: skip
    assert p.returncode == 0, p.stderr
    z = np.load(tmp_path / "m_grad-cam.npz")
    assert list(z["image_id"]) == ["cat", "coffee"]
    assert 281 <= int(z["targets"][0]) <= 285  # a domestic cat class
    fused = np.load(tmp_path / "m_layercam.npz")["maps"]
    assert fused.shape == (2, 224, 224)  # several layers: fused at input size


def test_extract_bad_input(photos: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    base = ["extract", "--model", "efficientnet_lite0", "--out", str(tmp_path / "x.npz")]
    assert_one_line_error(run_here(*base, "--images", str(empty)), "--images", "no images found")
    assert_one_line_error(
        run_here(*base, "--images", str(photos), "--layer", "backbone.blok3"),
        "--layer backbone.blok3",
        "backbone.block3",
    )
    assert_one_line_error(
        run_here(*base, "--images", str(photos), "--target", "1000"), "--target 1000", "0..999"
    )
    assert_one_line_error(
        run_here(*base, "--images", str(photos), "--method", "gradcam"), "--method gradcam", "grad-cam"
    )


def test_evaluate_reports_wsol_metrics_and_plots(demo_maps: Path, tmp_path: Path) -> None:
    maps = demo_maps
    p = run_here(
        "evaluate",
        "--maps",
        str(maps),
        "--out",
        str(tmp_path / "ev.json"),
        "--plots",
        str(tmp_path / "plots"),
    )
    assert p.returncode == 0, p.stderr
    for row in ("PxAP", "MaxBoxAcc", "MaxBoxAccV2", "top-1 loc", "peak IoU"):
        assert row in p.stdout
    ev = json.loads((tmp_path / "ev.json").read_text())
    for key in ("pxap", "max_box_acc", "max_box_acc_v2", "gt_known_loc", "top1_loc", "accuracy"):
        assert isinstance(ev[key], float) and 0.0 <= ev[key] <= 100.0, key
    assert ev["top1_loc"] <= ev["gt_known_loc"]
    assert "NaN" not in (tmp_path / "ev.json").read_text()
    for png in ("iou_curve.png", "pr_curve.png"):
        assert (tmp_path / "plots" / png).stat().st_size > 5000


def test_evaluate_constant_and_nan_maps(demo_maps: Path, tmp_path: Path) -> None:
    maps = demo_maps
    z = dict(np.load(maps))
    z["maps"] = np.zeros_like(z["maps"])  # all-constant maps: scores, no NaN
    np.savez(tmp_path / "const.npz", **z)
    p = run_here("evaluate", "--maps", str(tmp_path / "const.npz"), "--out", str(tmp_path / "c.json"))
    assert p.returncode == 0, p.stderr
    assert "NaN" not in (tmp_path / "c.json").read_text()
    z["maps"][0, 0, 0] = np.nan
    np.savez(tmp_path / "nan.npz", **z)
    assert_one_line_error(run_here("evaluate", "--maps", str(tmp_path / "nan.npz")), "NaN")


def test_evaluate_mask_folders(tmp_path: Path) -> None:
    from PIL import Image

    (tmp_path / "pred").mkdir()
    (tmp_path / "gt").mkdir()
    a = np.zeros((4, 4), np.uint8)
    a[:2, :2] = 255  # 4 px
    b = np.zeros((4, 4), np.uint8)
    b[:2, :3] = 255  # 6 px, overlap 4
    Image.fromarray(a).save(tmp_path / "pred" / "img1.png")
    Image.fromarray(b).save(tmp_path / "gt" / "img1.png")
    p = run_here("evaluate", "--pred-masks", str(tmp_path / "pred"), "--gt-masks", str(tmp_path / "gt"))
    assert p.returncode == 0, p.stderr
    assert "img1\t0.6667" in p.stdout
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(tmp_path / "gt" / "img1.png")
    assert_one_line_error(
        run_here("evaluate", "--pred-masks", str(tmp_path / "pred"), "--gt-masks", str(tmp_path / "gt")),
        "img1.png",
        "4x4",
    )


def test_faithfulness_command_on_photos(photos: Path, tmp_path: Path) -> None:
    p = run("faithfulness", "--model", "efficientnet_lite0", "--images", str(photos), "--method", "grad-cam",
            "--layer", "backbone.head", "--steps", "4", "--out", str(tmp_path / "f.json"))  # fmt: skip
    assert p.returncode == 0, p.stderr
    r = json.loads((tmp_path / "f.json").read_text())["methods"]["grad-cam"]
    assert 0.0 <= r["deletion_auc"] <= 1.0 and 0.0 <= r["insertion_auc"] <= 1.0
    assert 0.0 <= r["average_drop"] <= 100.0 and 0.0 <= r["increase_in_confidence"] <= 100.0


def test_errors_from_dataloader_workers_stay_one_line(image_tree, tmp_path: Path) -> None:
    root, _ = image_tree
    (root / "train" / "dog" / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    p = run("train", "--dataset", "folder", "--data-root", str(root), "--image-size", "16", "--layer", "layer1",
            "--epochs", "1", "--workers", "1", "--val-fraction", "0.1", "--out", str(tmp_path))  # fmt: skip
    assert_one_line_error(p, "broken.jpg: cannot read this image")
