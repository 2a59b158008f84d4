"""FEM: a hand-computed case and pytorch-grad-cam's FEM on the same ResNet-18."""

import numpy as np
import pytest
import torch

from camkit.methods import get_method
from camkit.methods.fem import fem_map
from peer_helpers import CLASSES, pgc_normalize, pgc_targets, resnet_and_input


def test_fem_by_hand() -> None:
    # channel 0: values 0,0,0,4 -> mean 1, std sqrt(3) ~ 1.73; with k=1 the threshold is 2.73,
    # one of four positions above it -> w0 = 1/4. channel 1 constant -> nothing above -> w1 = 0.
    a = torch.tensor([[[[0.0, 0.0], [0.0, 4.0]], [[1.0, 1.0], [1.0, 1.0]]]])
    torch.testing.assert_close(fem_map(a, k=1.0), 0.25 * a[:, 0])
    # 3-D activations (N, C, d, h, w) take the same path
    torch.testing.assert_close(fem_map(a[:, :, None], k=1.0), 0.25 * a[:, 0, None])


def test_fem_matches_pytorch_grad_cam() -> None:
    pgc = pytest.importorskip("pytorch_grad_cam")
    model, x = resnet_and_input()
    theirs = pgc.FEM(model=model, target_layers=[model.layer3], k=2)(input_tensor=x, targets=pgc_targets())
    ours = get_method("fem")(model, "layer3", k=2)(x, CLASSES)
    np.testing.assert_allclose(pgc_normalize(ours.low[0]), theirs, atol=1e-5)
