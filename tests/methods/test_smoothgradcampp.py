"""SmoothGrad-CAM++: torchcam's weights with the same noise; Grad-CAM++ in the noiseless limit."""

import pytest
import torch

from camkit.core.errors import CamkitError
from camkit.methods import get_method
from peer_helpers import CLASSES, resnet_and_input, tc_normalize


def test_weights_match_torchcam_with_the_same_noise() -> None:
    torchcam = pytest.importorskip("torchcam")
    model, x = resnet_and_input()
    ext = torchcam.methods.SmoothGradCAMpp(model, "layer3", num_samples=3, std=0.2, input_shape=(3, 96, 96))
    with ext:
        acts = {}
        h = model.layer3.register_forward_hook(lambda m, i, o: acts.__setitem__("a", o.detach()))
        model(x)
        h.remove()
        torch.manual_seed(5)
        w = ext._get_weights(CLASSES)[0]  # torchcam's weights; its map would use the last noisy activations
    theirs = tc_normalize(torch.einsum("nchw,nc->nhw", acts["a"], w))
    ours = get_method("smoothgrad-cam++")(model, "layer3", num_samples=3, std=0.2, seed=5, grad="last")(
        x, CLASSES
    )
    torch.testing.assert_close(tc_normalize(ours.low[0]), theirs, atol=1e-5, rtol=0)


def test_noiseless_limit_is_grad_cam_plus_plus_with_torchcams_denominator() -> None:
    model, x = resnet_and_input()
    ours = get_method("smoothgrad-cam++")(model, "layer3", num_samples=2, std=1e-9, seed=0)(x, CLASSES).low[0]
    acts = {}
    h = model.layer3.register_forward_hook(lambda m, i, o: acts.__setitem__("a", o))
    out = model(x)
    h.remove()
    a = acts["a"]
    g = torch.autograd.grad(out[[0, 1], CLASSES].sum(), a)[0]
    a = a.detach()
    alpha = g**2 / (2 * g**2 + (a * g**3).sum((2, 3), keepdim=True) + 1e-8)
    expected = torch.relu(torch.einsum("nchw,nc->nhw", a, (alpha * torch.relu(g)).sum((2, 3))))
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-4)


def test_bad_grad_option() -> None:
    model, _ = resnet_and_input()
    with pytest.raises(CamkitError, match="grad=first"):
        get_method("smoothgrad-cam++")(model, "layer3", grad="first")
