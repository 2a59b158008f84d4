"""Models by name (timm:, torchvision:, hf:), weights files, and ``camkit explain`` with them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from camkit.core.errors import OptionError
from camkit.models.zoo import load_model
from cli_helpers import assert_one_line_error, run_here


def test_timm_model_with_a_weights_file(tmp_path: Path) -> None:
    pytest.importorskip("timm")
    from safetensors.torch import save_file

    a = load_model("timm:vit_tiny_patch16_224", num_classes=7)
    assert a.weights == "random" and a.image_size == 224 and a.class_names == [str(i) for i in range(7)]
    assert not a.model.training
    # a DDP-style prefix is dropped; the loaded weights are the file's
    save_file(
        {"module." + k: v.contiguous() for k, v in a.model.state_dict().items()}, tmp_path / "w.safetensors"
    )
    b = load_model("timm:vit_tiny_patch16_224", tmp_path / "w.safetensors", num_classes=7)
    assert b.weights == "file"
    for (k, v), w in zip(a.model.state_dict().items(), b.model.state_dict().values(), strict=True):
        assert torch.equal(v, w), k
    with pytest.raises(
        OptionError, match=r"^weights=.*w.safetensors: do not fit the model: head.weight is \(7, 192\)"
    ):
        load_model("timm:vit_tiny_patch16_224", tmp_path / "w.safetensors", num_classes=5)
    with pytest.raises(
        OptionError,
        match=r"^model=timm:vit_tiny_patch16_2244: not a timm model; close matches: vit_tiny_patch16_224",
    ):
        load_model("timm:vit_tiny_patch16_2244")


def test_torchvision_models_never_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty cache: random weights
    r = load_model("torchvision:resnet18")
    assert r.weights == "random" and len(r.class_names) == 1000 and r.class_names[0] == "tench"
    det = load_model("torchvision:fasterrcnn_mobilenet_v3_large_320_fpn", num_classes=3)  # backbone too
    assert det.weights == "random"
    torch.save(r.model.state_dict(), tmp_path / "r18.pth")
    again = load_model("torchvision:resnet18", tmp_path / "r18.pth")
    assert torch.equal(again.model.fc.weight, r.model.fc.weight)
    with pytest.raises(OptionError, match=r"^weights=.*nope.pt: file not found"):
        load_model("torchvision:resnet18", tmp_path / "nope.pt")
    with pytest.raises(OptionError, match="^model=resnet9: use efficientnet_lite0"):
        load_model("resnet9")
    with pytest.raises(OptionError, match="^model=tf:x: the prefix must be"):
        load_model("tf:x")


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tf = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = tf.ViTConfig(image_size=32, patch_size=4, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=64, id2label={0: "cat", 1: "dog", 2: "cup"}, label2id={"cat": 0, "dog": 1, "cup": 2})  # fmt: skip
    d = tmp_path_factory.mktemp("hf") / "tiny-vit"
    tf.ViTForImageClassification(cfg).save_pretrained(d)
    return d


def test_hugging_face_folder(hf_dir: Path) -> None:
    r = load_model(f"hf:{hf_dir}")
    assert r.class_names == ["cat", "dog", "cup"] and r.image_size == 32 and not r.model.training
    with pytest.raises(OptionError, match=r"^model=hf:/nowhere/x: no Hugging Face image classifier there"):
        load_model("hf:/nowhere/x")


def test_explain_a_hugging_face_model_and_the_default_model(hf_dir: Path, tmp_path: Path) -> None:
    Image.fromarray((torch.rand(40, 48, 3) * 255).byte().numpy()).save(tmp_path / "a.png")
    p = run_here("explain", str(tmp_path / "a.png"), "--model", f"hf:{hf_dir}", "--method", "grad-cam,layercam",
                 "--topk", "2", "--out", str(tmp_path / "o"))  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "grad-cam: target layer vit." in p.stdout and ".1.layernorm_before" in p.stdout
    pred = json.loads((tmp_path / "o" / "predictions.json").read_text())
    assert pred["layers"]["layercam"][0].endswith(".1.layernorm_before")
    assert pred["top_k"][0][0]["name"] in ("cat", "dog", "cup")
    # no --model: the offline EfficientNet-Lite0
    p = run_here("explain", str(tmp_path / "a.png"), "--method", "grad-cam", "--out", str(tmp_path / "d"))
    assert p.returncode == 0, p.stderr
    assert "grad-cam: target layer backbone" in p.stdout
    assert_one_line_error(
        run_here("explain", str(tmp_path / "a.png"), "--model", f"hf:{hf_dir}", "--layout", "tokens:x"),
        "--layout tokens:x",
    )
    assert_one_line_error(
        run_here("explain", str(tmp_path / "a.png"), "--model", "timm:nope_net"), "--model timm:nope_net"
    )
