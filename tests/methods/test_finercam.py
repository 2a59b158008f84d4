"""Finer-CAM: alpha = 0 is Grad-CAM; pytorch-grad-cam's FinerCAM on a ResNet-18."""

import numpy as np
import pytest
import torch

from camkit.methods import get_method
from camkit.methods.finercam import finer_score
from peer_helpers import pgc_normalize, resnet_and_input


def test_score_by_hand() -> None:
    logits = torch.tensor([[0.0, 1.0, 3.0, 2.5]])
    # target 2: |y - 3| ranks 2 (0), 3 (0.5), 1 (2), 0 (3); ranks (1,) -> class 3
    p = logits.softmax(1)[0]
    s = finer_score(logits, torch.tensor([2]), (1,), 0.5)
    torch.testing.assert_close(s, (p[3] * (3.0 - 0.5 * 2.5) / (p[3] + 1e-9))[None])
    s2 = finer_score(logits, torch.tensor([2]), (1, 2), 1.0)
    expected = (p[3] * 0.5 + p[1] * 2.0) / (p[3] + p[1] + 1e-9)
    torch.testing.assert_close(s2, expected[None])


def test_alpha_zero_is_grad_cam() -> None:
    model, x = resnet_and_input()
    ours = get_method("finer-cam")(model, "layer3", alpha=0.0)(x, [3, 7]).low[0]
    grad = get_method("grad-cam")(model, "layer3")(x, [3, 7]).low[0]
    torch.testing.assert_close(ours, grad, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("target_idx", [None, 4])
def test_finercam_matches_pytorch_grad_cam(target_idx: int | None) -> None:
    pgc = pytest.importorskip("pytorch_grad_cam")
    model, x = resnet_and_input()
    theirs = pgc.FinerCAM(model=model, target_layers=[model.layer3])(
        input_tensor=x, targets=None, target_idx=target_idx
    )
    ours = get_method("finer-cam")(model, "layer3")(x, "pred" if target_idx is None else target_idx)
    np.testing.assert_allclose(pgc_normalize(ours.low[0]), theirs, atol=1e-5)
