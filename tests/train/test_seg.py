"""SEG mode: transforms, validity masks and the two-branch equivariance loss."""

import pytest
import torch
from torch import nn

from camkit.core.errors import CamkitError
from camkit.models import CAMNet, CAMNetOutput, ModelConfig
from camkit.train.seg import Transform, parse_transform, seg_loss, warp, warp_all


class OneByOne(nn.Module):
    """Only 1x1 convolutions, GAP and a linear layer: exactly equivariant to any pixel permutation."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Conv2d(3, 8, 1), nn.ReLU(), nn.Conv2d(8, 6, 1))
        self.classifier = nn.Linear(6, 4)

    def forward(self, x: torch.Tensor) -> CAMNetOutput:
        f = self.features(x)
        pooled = f.mean(dim=(2, 3))
        return CAMNetOutput(self.classifier(pooled), f, pooled)


def test_branch_shapes_match_the_lab() -> None:
    model = CAMNet(ModelConfig()).eval()
    x = torch.rand(2, 3, 224, 224)
    xs, _ = warp(x, parse_transform("scale:0.5"))
    assert xs.shape[-2:] == (112, 112)
    with torch.no_grad():
        assert model(x).features.shape[-2:] == (28, 28) and model(xs).features.shape[-2:] == (14, 14)


@pytest.mark.parametrize("spec", ["hflip", "vflip", "rot:90", "rot:180", "rot:270"])
def test_loss_is_zero_for_an_exactly_equivariant_model(spec: str) -> None:
    model = OneByOne()
    x = torch.rand(3, 3, 12, 12)
    y = torch.tensor([0, 1, 3])
    _, parts, _ = seg_loss(model, x, y, [parse_transform(spec)])
    assert parts["seg"] < 1e-10
    _, parts, _ = seg_loss(model, x, y, [parse_transform("hflip"), parse_transform("rot:90")])
    assert parts["seg"] < 1e-10
    # a model with a 3x3 convolution is not exactly equivariant: the loss sees it
    model.features[0] = nn.Conv2d(3, 8, 3, padding=1)
    _, parts, _ = seg_loss(model, x, y, [parse_transform("rot:90")])
    assert parts["seg"] > 1e-6


@pytest.mark.parametrize(
    "spec", ["hflip", "vflip", "rot:90", "rot:270", "rot:30", "shift:0.25,-0.125", "scale:0.5"]
)
def test_transforms_round_trip_with_their_inverse(spec: str) -> None:
    t = parse_transform(spec)
    x = torch.rand(2, 3, 16, 16)
    smooth = t.kind == "scale" or (t.kind == "rot" and t.a % 90 != 0)
    if smooth:  # bilinear resampling twice blurs noise; smooth content survives it
        x = torch.nn.functional.interpolate(
            torch.rand(2, 3, 4, 4), size=(16, 16), mode="bilinear", align_corners=False
        )
    y, _ = warp_all(x, [t])
    back, valid = warp_all(y, [t.inverse()], size=(16, 16) if t.kind == "scale" else None)
    _, v1 = warp_all(x, [t])
    v = valid & warp_all(v1.float(), [t.inverse()], size=(16, 16) if t.kind == "scale" else None)[0].ge(0.999)
    tol = 0.15 if smooth else 1e-5
    assert v.float().mean() > 0.3
    assert ((back - x).abs() * v).max() <= tol


def test_validity_mask_excludes_out_of_frame_pixels() -> None:
    x = torch.ones(1, 1, 10, 10)
    y, valid = warp(x, Transform("shift", 0.3, 0.0))  # content moves right by 3 pixels
    assert not valid[0, 0, :, :3].any() and valid[0, 0, :, 4:].all()
    assert torch.allclose(y[0, 0, :, 4:], torch.ones(10, 6))
    y, valid = warp(x, Transform("rot", 45))
    assert not valid[0, 0, 0, 0] and valid[0, 0, 5, 5]  # the corners leave the frame, the centre stays
    _, valid = warp(x, Transform("rot", 90))
    assert valid.all()


def test_gradients_reach_both_branches() -> None:
    model = CAMNet(ModelConfig(layer="layer1", num_classes=4))
    x = torch.rand(2, 3, 32, 32)
    y = torch.tensor([1, 2])
    grads = {}
    feats = []

    def keep(_m: nn.Module, _i: object, o: torch.Tensor) -> None:
        o.retain_grad()
        feats.append(o)

    h = model.backbone.register_forward_hook(keep)
    loss, parts, _ = seg_loss(model, x, y, [parse_transform("scale:0.5")], weight=1.0)
    h.remove()
    loss.backward()
    assert len(feats) == 2 and all(f.grad is not None and f.grad.abs().sum() > 0 for f in feats)
    grads["conv1"] = model.backbone.conv1.weight.grad
    assert grads["conv1"] is not None and parts["seg"] > 0


def test_bad_transform_specs() -> None:
    for bad in ("scale:0", "rot:x", "shift:1.5,0", "zoom"):
        with pytest.raises(CamkitError, match="^seg_transforms="):
            parse_transform(bad)
