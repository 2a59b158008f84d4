import pytest
import torch

from camkit.core.errors import CamkitError
from camkit.models.camnet import CAMNet, ModelConfig
from camkit.models.heads import GAP, TAP, build_head


def test_tap_equals_gap_at_theta_zero_on_relu_features() -> None:
    f = torch.relu(torch.randn(4, 16, 7, 7, generator=torch.Generator().manual_seed(0)))
    assert (f == 0).any()  # exact zeros present: a strict '>' would drop them and differ
    torch.testing.assert_close(TAP(0.0)(f), GAP()(f), rtol=0, atol=1e-6)


def test_tap_equals_gap_at_theta_zero_through_a_model() -> None:
    torch.manual_seed(0)
    gap = CAMNet(ModelConfig(backbone="resnet18", num_classes=5)).eval()
    tap = CAMNet(ModelConfig(backbone="resnet18", num_classes=5, head="tap", tap_theta=0.0)).eval()
    tap.load_state_dict(gap.state_dict())
    x = torch.rand(2, 3, 64, 64)
    torch.testing.assert_close(tap(x).logits, gap(x).logits, rtol=0, atol=1e-5)


def test_tap_hand_computed() -> None:
    # channel 0: max 10, theta 0.5 -> tau 5: values >= 5 are 10 and 6 -> mean 8
    # channel 1: max 4 -> tau 2: values 4, 2 -> mean 3 (2 >= 2 counts)
    f = torch.tensor([[[[10.0, 6.0], [1.0, 0.0]], [[4.0, 2.0], [1.0, 0.0]]]])
    out = TAP(0.5)(f)
    torch.testing.assert_close(out, torch.tensor([[8.0, 3.0]]))
    assert GAP()(f)[0, 0].item() == pytest.approx(17 / 4)


def test_tap_gradient_reaches_only_passing_activations() -> None:
    f = torch.tensor([[[[10.0, 6.0], [1.0, 0.0]]]], requires_grad=True)
    TAP(0.5)(f).sum().backward()
    torch.testing.assert_close(f.grad, torch.tensor([[[[0.5, 0.5], [0.0, 0.0]]]]))


def test_tap_all_negative_channel_pools_to_zero() -> None:
    f = -torch.ones(1, 1, 3, 3) - torch.arange(9.0).view(1, 1, 3, 3)
    assert TAP(0.05)(f).item() == 0.0


def test_bad_heads() -> None:
    with pytest.raises(CamkitError, match=r"tap_theta=1.0: must be in \[0, 1\)"):
        TAP(1.0)
    with pytest.raises(CamkitError, match="head=max: unknown pooling head"):
        build_head("max")


@pytest.mark.parametrize(
    ("backbone", "layer", "stride", "side"),
    [
        ("resnet18", "layer3", 8, 8),
        ("resnet18", "layer4", 16, 4),
        ("resnet50", "layer4", 16, 4),
        ("resnet18", "layer2", 8, 8),
    ],
)
def test_output_stride(backbone: str, layer: str, stride: int, side: int) -> None:
    m = CAMNet(ModelConfig(backbone=backbone, layer=layer, output_stride=stride, num_classes=3)).eval()
    with torch.no_grad():
        out = m(torch.rand(1, 3, 64, 64))
    assert out.features.shape[-2:] == (side, side)
    assert m.config.arch()["output_stride"] == stride


def test_output_stride_needs_a_resnet() -> None:
    with pytest.raises(CamkitError, match="output_stride: only ResNets support it"):
        CAMNet(ModelConfig(backbone="vgg16", output_stride=8))
