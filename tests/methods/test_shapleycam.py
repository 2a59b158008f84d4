"""Shapley-CAM: a closed form on a quadratic head, and pytorch-grad-cam's ShapleyCAM (with its
ReST target, ClassifierOutputReST) on a ResNet-18."""

import numpy as np
import pytest
import torch
from torch import nn

from camkit.methods import get_method
from peer_helpers import CLASSES, pgc_normalize, resnet_and_input


class Square(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * x


def test_shapley_on_a_quadratic_head() -> None:
    # y = w · GAP(z²) with z = conv(x): g = 2 w z / hw, h = H z = 2 w z / hw, so g - h/2 = w z / hw
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(2, 3, 1), Square(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 2)
    )
    x = torch.rand(1, 2, 4, 4)
    r = get_method("shapley-cam")(model.eval(), "0", score="logit")(x, 1)
    z = model[0](x)[0].detach()
    w = (model[4].weight[1].detach()[:, None, None] * z / 16).mean((1, 2))
    torch.testing.assert_close(r.low[0][0], torch.relu((w[:, None, None] * z).sum(0)))


@pytest.mark.parametrize("rest", [True, False])
def test_shapley_matches_pytorch_grad_cam(rest: bool) -> None:
    pgc = pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputReST, ClassifierOutputTarget

    # in float64: the Hessian-vector product amplifies float32 rounding (the two float32 maps
    # differ by up to 3e-5 after normalization; in float64 by 1e-7)
    model, x = resnet_and_input()
    model, x = model.double(), x[:, :, :64, :64].double()  # layer3: 4×4
    tg = ClassifierOutputReST if rest else ClassifierOutputTarget
    theirs = pgc.ShapleyCAM(model=model, target_layers=[model.layer3])(
        input_tensor=x, targets=[tg(c) for c in CLASSES]
    )
    ours = get_method("shapley-cam")(model, "layer3", score="rest" if rest else "logit")(x, CLASSES)
    np.testing.assert_allclose(pgc_normalize(ours.low[0].float(), (64, 64)), theirs, atol=1e-5)
    if not rest:  # a ReLU network after layer3: no curvature, Grad-CAM's map
        grad = get_method("grad-cam")(model, "layer3")(x, CLASSES)
        torch.testing.assert_close(ours.low[0], grad.low[0])


def test_shapley_several_targets_per_sample_match_single_runs() -> None:
    model, x = resnet_and_input()
    both = get_method("shapley-cam")(model, "layer3")(x[:1], [[3, 7]])
    for n, c in enumerate([3, 7]):
        one = get_method("shapley-cam")(model, "layer3")(x[:1], c)
        torch.testing.assert_close(both.low[0][n], one.low[0][0], atol=1e-6, rtol=1e-5)
