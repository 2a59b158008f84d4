"""FullGrad: a closed form on a one-conv model and pytorch-grad-cam's FullGrad on a ResNet-18."""

import numpy as np
import pytest
import torch
from torch import nn

from camkit.core.errors import CamkitError
from camkit.methods import get_method
from camkit.methods.fullgrad import bias_layers
from peer_helpers import CLASSES, pgc_normalize, pgc_targets, resnet_and_input


def test_fullgrad_on_a_linear_model() -> None:
    # y = fc(GAP(conv1x1(x))): d y / d z = w_fc / hw everywhere, d y / d x_i = (w_fc · W_conv)_i / hw
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 2)).eval()
    x = torch.rand(1, 2, 4, 4)
    ours = get_method("fullgrad")(model)(x, 0).low[0][0]
    w = model[3].weight[0].detach()
    gx = (w @ model[0].weight.detach().view(3, 2)) / 16  # (2,), constant over positions

    def scale(t: torch.Tensor) -> torch.Tensor:
        t = t - t.amin((1, 2), keepdim=True)
        return t / (t.amax((1, 2), keepdim=True) + 1e-7)

    expected = scale((x[0] * gx[:, None, None]).abs()).sum(0)
    # the bias term |b_c w_c / 16| is constant per channel: min-max makes it 0
    torch.testing.assert_close(ours, expected)
    assert bias_layers(model) == ["0"]


def test_fullgrad_matches_pytorch_grad_cam() -> None:
    pgc = pytest.importorskip("pytorch_grad_cam")
    model, x = resnet_and_input()
    theirs = pgc.FullGrad(model=model, target_layers=[])(input_tensor=x, targets=pgc_targets())
    model.zero_grad(set_to_none=True)  # the peer calls backward(); camkit must not fill .grad
    r = get_method("fullgrad")(model)(x, CLASSES)
    assert r.maps.shape == (2, 96, 96)
    np.testing.assert_allclose(pgc_normalize(r.low[0]), theirs, atol=1e-5)
    assert not any(p.grad is not None for p in model.parameters())


def test_fullgrad_layer_without_bias() -> None:
    model, x = resnet_and_input()
    with pytest.raises(CamkitError, match="needs layers with a bias"):
        get_method("fullgrad")(model, "conv1")(x, CLASSES)
