"""Augmentation smoothing: pytorch-grad-cam's aug_smooth (ttach flips × scales × factors) on
the same ResNet-18, and a flip-equivariant model where smoothing changes nothing."""

import numpy as np
import pytest
import torch
from torch import nn

from camkit.core.ops import minmax
from camkit.methods import get_method
from camkit.methods.augsmooth import AugSmooth
from peer_helpers import CLASSES, pgc_targets, resnet_and_input


def test_matches_pytorch_grad_cam_aug_smooth() -> None:
    pgc = pytest.importorskip("pytorch_grad_cam")
    tta = pytest.importorskip("ttach")
    model, x = resnet_and_input()
    peer = pgc.GradCAM(model=model, target_layers=[model.layer3])
    peer.tta_transforms = tta.Compose(
        [
            tta.HorizontalFlip(),
            tta.Scale([2], interpolation="bilinear", align_corners=False),
            tta.Multiply([0.9, 1.1]),
        ]
    )
    theirs = peer(input_tensor=x, targets=pgc_targets(), aug_smooth=True)
    with AugSmooth(get_method("grad-cam")(model, "layer3"), scales=(2.0,), factors=(0.9, 1.1)) as m:
        ours = m(x, CLASSES)
    assert ours.maps.shape == (2, 96, 96) and ours.target.tolist() == CLASSES
    np.testing.assert_allclose(ours.maps.numpy(), theirs, atol=1e-5)


class FlipSymmetric(nn.Module):
    """A model whose features of flip(x) are the flipped features of x: every map is equivariant."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Conv2d(3, 4, 1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.features(x)).mean((2, 3)))


def test_flip_equivariant_model_is_unchanged_by_flip_smoothing() -> None:
    torch.manual_seed(0)
    model, x = FlipSymmetric().eval(), torch.rand(2, 3, 8, 8)
    plain = get_method("grad-cam")(model, "features")(x, [0, 1])
    smooth = AugSmooth(get_method("grad-cam")(model, "features"), factors=())(x, [0, 1])
    torch.testing.assert_close(smooth.maps, minmax(plain.maps))
    assert smooth.sample.tolist() == [0, 1] and smooth.target.tolist() == [0, 1]
