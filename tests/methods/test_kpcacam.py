"""KPCA-CAM: the linear kernel is Eigen-CAM's component; the others match pytorch-grad-cam
(scikit-learn's KernelPCA), whose sign convention camkit adopts, to 1e-5."""

import numpy as np
import pytest
import torch

from camkit.core.errors import CamkitError
from camkit.methods import get_method
from camkit.methods.eigencam import first_component
from camkit.methods.kpcacam import kernel_first_component
from peer_helpers import CLASSES, pgc_normalize, pgc_targets, resnet_and_input


def test_linear_kernel_is_principal_component_analysis() -> None:
    torch.manual_seed(0)
    a = torch.randn(3, 5, 4, 4)
    ours = kernel_first_component(a, "linear")
    pca = first_component(a)  # same component, PCA scores = √λ v up to the sign
    torch.testing.assert_close(ours.abs(), pca.abs(), atol=1e-5, rtol=0)
    # sign: the largest-magnitude score is positive
    flat = ours.flatten(1)
    assert (flat.gather(1, flat.abs().argmax(1, keepdim=True)) > 0).all()


@pytest.mark.parametrize("kernel", ["sigmoid", "rbf", "poly", "cosine"])
def test_kpcacam_matches_pytorch_grad_cam(kernel: str) -> None:
    pgc = pytest.importorskip("pytorch_grad_cam")
    model, x = resnet_and_input()
    gamma = None if kernel == "sigmoid" else 1e-3
    peer = pgc.KPCA_CAM(model=model, target_layers=[model.layer3], kernel=kernel, gamma=gamma)
    theirs = peer(input_tensor=x, targets=pgc_targets())
    ours = get_method("kpca-cam")(model, "layer3", kernel=kernel, gamma=gamma)(x, CLASSES)
    np.testing.assert_allclose(pgc_normalize(ours.low[0]), theirs, atol=1e-5)


def test_unknown_kernel() -> None:
    model, _ = resnet_and_input()
    with pytest.raises(CamkitError, match="kernel=laplace: use one of sigmoid"):
        get_method("kpca-cam")(model, "layer3", kernel="laplace")
