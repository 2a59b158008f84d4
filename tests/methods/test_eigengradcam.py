"""EigenGrad-CAM against pytorch-grad-cam (up to the component's sign, which SVD leaves free)."""

import numpy as np
import pytest
import torch

from camkit.methods import get_method
from camkit.methods.eigencam import first_component
from peer_helpers import CLASSES, pgc_normalize, pgc_targets, resnet_and_input


def test_eigengradcam_matches_pytorch_grad_cam_up_to_sign() -> None:
    pgc = pytest.importorskip("pytorch_grad_cam")
    model, x = resnet_and_input()
    theirs = pgc.EigenGradCAM(model=model, target_layers=[model.layer3])(
        input_tensor=x, targets=pgc_targets()
    )
    ours = get_method("eigengrad-cam")(model, "layer3")(x, CLASSES)
    # our (pre-ReLU) projection of A ⊙ g, from the same activations and gradients
    acts = {}
    h = model.layer3.register_forward_hook(lambda m, i, o: acts.__setitem__("a", o))
    out = model(x)
    h.remove()
    g = torch.autograd.grad(out[[0, 1], CLASSES].sum(), acts["a"])[0]
    p = first_component((acts["a"] * g).detach())
    torch.testing.assert_close(ours.low[0], torch.relu(p))
    for i in range(len(CLASSES)):  # each map matches with one of the two signs
        cands = [pgc_normalize(s * p[i : i + 1]) for s in (1, -1)]
        assert min(np.abs(c - theirs[i : i + 1]).max() for c in cands) < 1e-5
    # the sign camkit picks makes the map correlate positively with HiResCAM's sum_k A_k g_k
    hires = (acts["a"] * g).sum(1).detach().flatten(1)
    corr = ((p.flatten(1) - p.flatten(1).mean(1, keepdim=True)) * (hires - hires.mean(1, keepdim=True))).sum(
        1
    )
    assert (corr > 0).all()
