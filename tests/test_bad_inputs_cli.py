"""The bad-input matrix, command-line side (issue 19's probes): each case exits with status
2 and one line on stderr naming the option or file, no traceback, and leaves no run folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from camkit.models.camnet import CAMNet, ModelConfig
from camkit.models.checkpoint import save_checkpoint
from camkit.train.config import RunConfig
from cli_helpers import assert_one_line_error, run, run_here

TINY = ["--n-train", "8", "--n-val", "4", "--n-test", "4", "--epochs", "1", "--image-size", "32"]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder (config.json, best.safetensors, last.pt) made without training, its
    copy holding another run's weights (3 classes), one with a damaged config.json and one with
    an unreadable resume state; two images that share a stem; other architectures' weights."""
    root = tmp_path_factory.mktemp("bad-cli")
    cfg = RunConfig()
    cfg.data.image_size, cfg.data.n_train, cfg.data.n_val, cfg.data.n_test = 32, 8, 4, 4
    cfg.train.out, cfg.train.exp_id = str(root / "runs"), "a"
    torch.manual_seed(0)
    for name, classes in (("a", 10), ("mix", 3), ("badcfg", 10), ("corrupt", 10)):
        run = root / "runs" / name
        run.mkdir(parents=True)
        (run / "config.json").write_text(json.dumps(cfg.to_dict()))
        save_checkpoint(
            run / "best.safetensors", CAMNet(ModelConfig(num_classes=classes)), list("abcdefghij")[:classes]
        )
        torch.save({"epoch": 1}, run / "last.pt")
    (root / "runs" / "badcfg" / "config.json").write_text('{"data": {')
    (root / "runs" / "corrupt" / "last.pt").write_bytes(__import__("pickle").dumps({"a": np.zeros(3)}))
    for sub, value in (("x", 0), ("y", 200)):
        (root / "dup" / sub).mkdir(parents=True)
        Image.fromarray(np.full((40, 40, 3), value, np.uint8)).save(root / "dup" / sub / "img.png")
    for arch in ("resnet50", "resnet34"):  # random weights, half precision: only names and shapes matter
        import torchvision.models as tvm

        state = {k: v.half() for k, v in tvm.get_model(arch, weights=None).state_dict().items()}
        torch.save(state, root / f"{arch}.pth")
    configs = {"three": {"train": {"epochs": "three"}}, "one-and-half": {"train": {"epochs": 1.5}},
               "fast": {"train": {"lr": "fast"}}, "list": {"data": {"image_size": [32, 32]}},
               "string-n": {"data": {"n_train": "256"}}, "true": {"train": {"epochs": True}}, "flat": {"epochs": 3}}  # fmt: skip
    for name, d in configs.items():
        (root / f"{name}.json").write_text(json.dumps(d))
    (root / "binary.json").write_bytes(bytes(range(256)))
    (root / "cfgdir").mkdir()
    return root


R = "{w}/runs"
TRAIN = ["train", *TINY, "--out", R]
CASES: dict[str, tuple[list[str], list[str]]] = {
    # tracebacks that became one line
    "extract-batch-size-0": (["extract", "--run", R + "/a", "--batch-size", "0", "--out", "{w}/m.npz"], ["--batch-size 0"]),
    "train-image-size-1": ([*TRAIN, "--exp-id", "t1", "--image-size", "1"], ["--image-size 1"]),
    "explain-image-size-1": (["explain", "{w}/dup", "--out", "{w}/e", "--run", R + "/a", "--image-size", "1"], ["--image-size 1"]),
    "explain-image-size-neg": (["explain", "{w}/dup", "--out", "{w}/e", "--run", R + "/a", "--image-size", "-5"], ["--image-size -5"]),
    "explain-image-size-0": (["explain", "{w}/dup", "--out", "{w}/e", "--run", R + "/a", "--image-size", "0"], ["--image-size 0"]),
    "config-epochs-three": ([*TRAIN, "--exp-id", "c", "--config", "{w}/three.json"], ["--config", "'epochs'"]),
    "config-epochs-1.5": ([*TRAIN, "--exp-id", "c", "--config", "{w}/one-and-half.json"], ["--config", "'epochs'"]),
    "config-lr-fast": ([*TRAIN, "--exp-id", "c", "--config", "{w}/fast.json"], ["--config", "'lr'"]),
    "config-image-size-list": ([*TRAIN, "--exp-id", "c", "--config", "{w}/list.json"], ["--config", "'image_size'"]),
    "config-n-train-string": ([*TRAIN, "--exp-id", "c", "--config", "{w}/string-n.json"], ["--config", "'n_train'"]),
    "config-epochs-true": ([*TRAIN, "--exp-id", "c", "--config", "{w}/true.json"], ["--config", "'epochs'"]),
    "config-flat-key": ([*TRAIN, "--exp-id", "c", "--config", "{w}/flat.json"], ["--config", '{"train": {"epochs": ...}}']),
    "config-binary": ([*TRAIN, "--exp-id", "c", "--config", "{w}/binary.json"], ["--config", "not a text file"]),
    "config-directory": ([*TRAIN, "--exp-id", "c", "--config", "{w}/cfgdir"], ["--config", "a folder"]),
    "run-corrupt-config": (["extract", "--run", R + "/badcfg", "--out", "{w}/m.npz"], ["badcfg/config.json"]),
    "layer-weights-words": (["extract", "--run", R + "/a", "--method", "cam", "--layer", "layer1,layer2",
                             "--layer-weights", "a,b", "--out", "{w}/m.npz"], ["--layer-weights a,b"]),  # fmt: skip
    "cmap-unknown": (["explain", "{w}/dup", "--out", "{w}/e", "--run", R + "/a", "--cmap", "nocmap"], ["--cmap nocmap"]),
    "visualize-num-0": (["visualize", "--maps", "{w}/m.npz", "--num", "0", "--out", "{w}/v"], ["--num 0"]),
    "visualize-num-neg": (["visualize", "--maps", "{w}/m.npz", "--num", "-3", "--out", "{w}/v"], ["--num -3"]),
    "report-num-0": (["report", R + "/a", "--num", "0"], ["--num 0"]),
    "evaluate-step-0": (["evaluate", "--maps", "{w}/m.npz", "--step", "0"], ["--step 0"]),
    "faithfulness-steps-0": (["faithfulness", "--run", R + "/a", "--steps", "0"], ["--steps 0"]),
    "explain-topk-0": (["explain", "{w}/dup", "--out", "{w}/e", "--run", R + "/a", "--topk", "0"], ["--topk 0"]),
    # values that were accepted silently
    "extract-method-empty": (["extract", "--run", R + "/a", "--method", "", "--out", "{w}/m.npz"], ["--method ''"]),
    "faithfulness-num-0": (["faithfulness", "--run", R + "/a", "--num", "0"], ["--num 0"]),
    "explain-model-and-run": (["explain", "{w}/dup", "--out", "{w}/e", "--model", "efficientnet_lite0", "--run", R + "/a"],
                              ["--model efficientnet_lite0", "--run"]),  # fmt: skip
    "explain-alpha-5": (["explain", "{w}/dup", "--out", "{w}/e", "--run", R + "/a", "--alpha", "5"], ["--alpha 5"]),
    "exp-id-empty": ([*TRAIN, "--exp-id", ""], ["--exp-id"]),
    # misleading messages
    "run-with-other-weights": (["report", R + "/mix"], ["mix/best.safetensors", "num_classes is 3, expected 10"]),
    "init-not-found": ([*TRAIN, "--exp-id", "i", "--init", "{w}/evil.pt"], ["--init", "evil.pt"]),
    "resume-other-layer": ([*TRAIN, "--exp-id", "a", "--resume", "--layer", "layer3"],
                           ["layer 'layer2' there, 'layer3' asked for"]),  # fmt: skip
    "resume-state-unreadable": ([*TRAIN, "--exp-id", "corrupt", "--resume"], ["corrupt/last.pt", "resume state"]),
    # weights of another architecture, refused by name; failed runs leave no folder
    "weights-resnet50": ([*TRAIN, "--exp-id", "w50", "--weights", "{w}/resnet50.pth"], ["--weights", "resnet50 weights"]),
    "weights-resnet34": ([*TRAIN, "--exp-id", "w34", "--weights", "{w}/resnet34.pth"], ["--weights", "resnet34 weights"]),
    "bad-layer": ([*TRAIN, "--exp-id", "l9", "--layer", "layer9"], ["--layer layer9"]),
    "n-train-0": ([*TRAIN, "--exp-id", "n0", "--n-train", "0"], ["--n-train 0"]),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_one_line_error(work: Path, case: str) -> None:
    argv, needles = CASES[case]
    before = sorted(p.name for p in (work / "runs").iterdir())
    p = run_here(*(a.replace("{w}", str(work)) for a in argv))
    assert_one_line_error(p, *needles)
    assert "Unpickler" not in p.stderr and "Warning" not in p.stderr
    assert sorted(p.name for p in (work / "runs").iterdir()) == before  # no debris


def test_unreadable_resume_state_prints_only_the_error(work: Path) -> None:
    """In a new process (pytest would catch the warning in this one): torch's warning about
    the foreign pickle, with its source line, no longer precedes the one-line error."""
    argv = [a.replace("{w}", str(work)) for a in CASES["resume-state-unreadable"][0]]
    p = run(*argv)
    assert_one_line_error(p, "corrupt/last.pt", "resume state")
    assert "Unpickler" not in p.stderr and "Warning" not in p.stderr


def test_explain_duplicate_stems_write_distinct_overlays(work: Path, tmp_path: Path) -> None:
    imgs = [str(work / "dup" / s / "img.png") for s in ("x", "y")]
    p = run_here(
        "explain", *imgs, "--run", str(work / "runs" / "a"), "--method", "cam", "--out", str(tmp_path / "e")
    )
    assert p.returncode == 0, p.stderr
    overlays = sorted((tmp_path / "e" / "overlays").iterdir())
    assert [o.name for o in overlays] == ["x_img_cam.png", "y_img_cam.png"]
    assert overlays[0].read_bytes() != overlays[1].read_bytes()


def test_raised_pixel_limit_error_names_pil_limit(
    work: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$CAMKIT_MAX_PIXELS above PIL's own hard limit: the one line names PIL's limit instead of
    claiming the image is larger than camkit's raised one."""
    Image.new("RGB", (64, 64)).save(tmp_path / "big.png")  # 4,096 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # PIL itself refuses above 2,000
    monkeypatch.setenv("CAMKIT_MAX_PIXELS", "5000")
    p = run_here(
        "explain", str(tmp_path / "big.png"), "--run", str(work / "runs" / "a"), "--out", str(tmp_path / "e")
    )
    assert_one_line_error(p, "big.png", "PIL's own hard limit of 2,000 pixels")
    assert "larger than the 5,000-pixel limit" not in p.stderr
