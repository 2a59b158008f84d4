"""Eigen smoothing against pytorch-grad-cam's eigen_smooth=True (up to the component's sign)."""

import numpy as np
import pytest
import torch

from camkit.methods import get_method
from camkit.methods.eigencam import first_component
from camkit.methods.eigensmooth import eigen_smoothed
from peer_helpers import CLASSES, pgc_normalize, pgc_targets, resnet_and_input


@pytest.mark.parametrize(
    "name,peer_name", [("grad-cam", "GradCAM"), ("grad-cam++", "GradCAMPlusPlus"), ("xgrad-cam", "XGradCAM")]
)
def test_matches_pytorch_grad_cam_eigen_smooth(name: str, peer_name: str) -> None:
    pgc = pytest.importorskip("pytorch_grad_cam")
    model, x = resnet_and_input()
    theirs = getattr(pgc, peer_name)(model=model, target_layers=[model.layer3])(
        input_tensor=x, targets=pgc_targets(), eigen_smooth=True
    )
    cls = get_method(name)
    ours = eigen_smoothed(cls)(model, "layer3")(x, CLASSES)
    # the signed component, to compare with either sign of the peer's
    acts = {}
    h = model.layer3.register_forward_hook(lambda m, i, o: acts.__setitem__("a", o))
    out = model(x)
    h.remove()
    a = acts["a"]
    g = torch.autograd.grad(out[[0, 1], CLASSES].sum(), a)[0]
    w = cls(model, "layer3").channel_weights(a.detach(), g)
    p = first_component(a.detach() * w[:, :, None, None])
    torch.testing.assert_close(ours.low[0], torch.relu(p), atol=1e-6, rtol=1e-5)
    for i in range(2):
        cands = [pgc_normalize(s * p[i : i + 1]) for s in (1, -1)]
        assert min(np.abs(c - theirs[i : i + 1]).max() for c in cands) < 1e-5
    # the smoothed map differs from the plain one (the test can tell them apart)
    plain = cls(model, "layer3")(x, CLASSES).low[0]
    assert (ours.low[0] - plain).abs().max() > 1e-3
