"""What a person meets in the first minutes: progress in a log, rates that never read 0,
one layer name for train and extract, no top-5 of 5 classes, outputs checked before the work
and printed after it."""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from camkit.cli.args import run_config
from camkit.cli.main import build_parser
from camkit.cli.progress import LogProgress, rate_text
from camkit.cli.train import top_k
from camkit.models.camnet import CAMNet, ModelConfig
from camkit.models.checkpoint import save_checkpoint
from camkit.train.config import RunConfig
from cli_helpers import assert_one_line_error, run_here


def test_rates_never_read_zero() -> None:
    assert rate_text(500, 2) == "250 images/s"
    assert rate_text(3, 10) == "0.3 images/s"
    assert rate_text(1, 40) == "40 s per image"  # score-cam on a photo: was "(0 images/s)"
    assert rate_text(0, 5) == "- images/s"


def test_log_progress_logs_at_a_steady_interval(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "camkit.progress")
    p = LogProgress(interval=0.05)
    p.start(4, "extract score-cam")
    time.sleep(0.3)  # one long step, no advance: the log still hears from it
    beats = [r.getMessage() for r in caplog.records]
    assert len(beats) >= 2 and all(b.startswith("extract score-cam: 0/4 (0%) after") for b in beats)
    p.advance(2)
    time.sleep(0.12)
    assert "2/4 (50%)" in caplog.records[-1].getMessage() and "s left" in caplog.records[-1].getMessage()
    p.close()
    n = len(caplog.records)
    time.sleep(0.12)
    assert len(caplog.records) == n  # the thread is gone


def test_one_layer_name_for_train_and_extract(tmp_path: Path, fake_fmnist: Path) -> None:
    args = build_parser("train").parse_args(["train", "--layer", "backbone.layer1"])
    assert run_config(args).model.layer == "layer1"
    assert ModelConfig(layer="backbone.layer1").arch() == ModelConfig(layer="layer1").arch()
    cfg = RunConfig()
    cfg.data.root, cfg.data.image_size, cfg.data.n_test = str(fake_fmnist), 32, 4
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(cfg.to_dict()))
    torch.manual_seed(0)
    save_checkpoint(run / "best.safetensors", CAMNet(ModelConfig()), [str(k) for k in range(10)])
    maps = []
    for layer in ("layer1", "backbone.layer1"):
        out = tmp_path / f"{layer}.npz"
        p = run_here(
            "extract", "--run", str(run), "--method", "grad-cam", "--layer", layer, "--out", str(out)
        )
        assert p.returncode == 0, p.stderr
        assert str(out) in p.stdout  # where the file went
        maps.append(np.load(out)["maps"])
    assert maps[0].shape == maps[1].shape and maps[0].shape[-1] == 8  # layer1: 1/4 of 32 px
    np.testing.assert_array_equal(maps[0], maps[1])


def test_no_top5_for_five_classes_or_fewer() -> None:
    scores = {"accuracy": 0.5, "top3": 0.9, "top5": 1.0}
    assert top_k(scores, 3) == ""
    assert top_k(scores, 5) == " top-3 0.9000"
    assert top_k(scores, 10) == " top-3 0.9000 top-5 1.0000"


def test_prototypes_checks_out_before_clustering(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    p = run_here(
        "prototypes",
        "--checkpoint",
        str(tmp_path / "none.safetensors"),
        "--out",
        str(tmp_path / "file" / "p.safetensors"),
    )
    assert_one_line_error(p, "--out", "cannot write there")  # not the missing checkpoint: --out first
    (tmp_path / "d").mkdir()
    assert_one_line_error(
        run_here("prototypes", "--checkpoint", "x", "--out", str(tmp_path / "d")), "--out", "a folder"
    )


def test_prototypes_split_help_says_train() -> None:
    """The help states the default that the command uses (and saves in the metadata)."""
    p = run_here("prototypes", "--help")
    assert re.search(r"--split SPLIT\s+split to use \(default:\s+train\)", p.stdout), p.stdout
    assert build_parser("prototypes").parse_args(["prototypes", "--out", "p"]).split == "train"


def test_evaluate_mask_folders_prints_where_it_wrote(tmp_path: Path) -> None:
    for d in ("pred", "gt"):
        (tmp_path / d).mkdir()
        m = np.zeros((8, 8), np.uint8)
        m[2:6, 2:6] = 255
        Image.fromarray(m).save(tmp_path / d / "a.png")
    out = tmp_path / "iou.json"
    p = run_here(
        "evaluate",
        "--pred-masks",
        str(tmp_path / "pred"),
        "--gt-masks",
        str(tmp_path / "gt"),
        "--out",
        str(out),
    )
    assert p.returncode == 0, p.stderr
    assert f"wrote {out}" in p.stdout and json.loads(out.read_text())["miou"] == 1.0


def test_raised_pixel_limit_does_not_contradict_pil(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """$CAMKIT_MAX_PIXELS above PIL's own hard limit (twice Image.MAX_IMAGE_PIXELS): the error
    names PIL's limit, not camkit's raised one that the image is within."""
    from camkit.core.errors import CamkitError
    from camkit.data.folders import read_image

    Image.new("RGB", (64, 64)).save(tmp_path / "big.png")  # 4,096 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # PIL refuses above 2,000
    monkeypatch.setenv("CAMKIT_MAX_PIXELS", "5000")
    with pytest.raises(
        CamkitError, match=r"big.png: .*PIL's own hard limit of 2,000 pixels.*\(5,000\) cannot lift"
    ):
        read_image(tmp_path / "big.png")
    monkeypatch.setenv("CAMKIT_MAX_PIXELS", "1500")  # camkit's own limit refuses first: its message
    with pytest.raises(CamkitError, match=r"larger than the 1,500-pixel limit"):
        read_image(tmp_path / "big.png")
