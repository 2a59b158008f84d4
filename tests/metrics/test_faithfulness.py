import math

import pytest
import torch
from torch import nn

from camkit.core.errors import CamkitError
from camkit.metrics.faithfulness import average_drop_increase, deletion_insertion


class Linear2(nn.Module):
    """logit_0 = sum(x · W) over pixels (channel-summed), logit_1 = 0: p_0 = sigmoid(<x, W>)."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = (x.sum(1) * self.w).flatten(1).sum(1)
        return torch.stack([s, torch.zeros_like(s)], 1)


def sig(v: float) -> float:
    return 1 / (1 + math.exp(-v))


def test_deletion_one_step_closed_form() -> None:
    w = torch.tensor([[1.0, -1.0], [0.5, 0.0]])
    x = torch.ones(1, 3, 2, 2) / 3  # channel sum 1 per pixel: <x, W> = 0.5
    m = Linear2(w)
    r = deletion_insertion(m, x, w[None], torch.tensor([0]), steps=1)
    torch.testing.assert_close(r["curve"], torch.tensor([[sig(0.5), sig(0.0)]]))
    assert float(r["auc"]) == pytest.approx((sig(0.5) + 0.5) / 2)
    # two steps of 2 pixels: the two most salient (1.0 and 0.5) go first -> <x, W> = -1.0
    r = deletion_insertion(m, x, w[None], torch.tensor([0]), steps=2)
    torch.testing.assert_close(r["curve"], torch.tensor([[sig(0.5), sig(-1.0), sig(0.0)]]))


def test_faithful_map_beats_its_reverse() -> None:
    g = torch.Generator().manual_seed(0)
    w = torch.randn(8, 8, generator=g)
    x = torch.rand(2, 3, 8, 8, generator=g)
    m = Linear2(w)
    t = torch.tensor([0, 0])
    good, bad = w.expand(2, 8, 8), -w.expand(2, 8, 8)
    d_good = deletion_insertion(m, x, good, t, steps=16)["auc"]
    d_bad = deletion_insertion(m, x, bad, t, steps=16)["auc"]
    i_good = deletion_insertion(m, x, good, t, "insertion", steps=16, substrate=torch.zeros_like(x))["auc"]
    i_bad = deletion_insertion(m, x, bad, t, "insertion", steps=16, substrate=torch.zeros_like(x))["auc"]
    assert (d_good < d_bad).all() and (i_good > i_bad).all()


def test_average_drop_and_increase_hand_computed() -> None:
    w = torch.ones(2, 2)
    m = Linear2(w)
    x = torch.full((2, 3, 2, 2), 1 / 3)  # <x, W> = 4 per image -> Y = sig(4)
    maps = torch.stack([torch.full((2, 2), 0.5), torch.ones(2, 2)])  # O = sig(2), sig(4)
    r = average_drop_increase(m, x, maps, torch.tensor([0, 0]))
    assert r["average_drop"] == pytest.approx(100 * ((sig(4) - sig(2)) / sig(4)) / 2, rel=1e-5)
    assert r["increase_in_confidence"] == 0.0
    r = average_drop_increase(Linear2(-w), x, maps, torch.tensor([0, 0]))  # masking raises p_0 here
    assert r["increase_in_confidence"] == 50.0 and r["average_drop"] == 0.0
    with pytest.raises(CamkitError, match="in \\[0, 1\\]"):
        average_drop_increase(m, x, maps * 3, torch.tensor([0, 0]))


def test_on_pretrained_efficientnet_with_real_photos() -> None:
    """Grad-CAM on the offline ImageNet model: deleting its most salient pixels first hurts the
    prediction more, and inserting them first helps it more, than the reverse order, on real
    photos. (A pixel-wise random order is no baseline: scattered deletions wreck any image.)"""
    skimage = pytest.importorskip("skimage")
    import torch.nn.functional as F

    from camkit.core.ops import minmax
    from camkit.methods import get_method
    from camkit.models.pretrained import imagenet_model

    model = imagenet_model("efficientnet_lite0")
    imgs = [skimage.data.chelsea(), skimage.data.coffee(), skimage.data.astronaut()]
    x = torch.cat(
        [
            F.interpolate(
                torch.from_numpy(i).permute(2, 0, 1)[None].float() / 255,
                size=(224, 224),
                mode="bilinear",
                antialias=True,
            )
            for i in imgs
        ]
    )
    r = get_method("grad-cam")(model, "backbone.head")(x, "pred")
    maps = minmax(r.maps)
    d_cam = deletion_insertion(model, x, maps, r.target, steps=10)["auc"]
    d_rev = deletion_insertion(model, x, 1 - maps, r.target, steps=10)["auc"]
    i_cam = deletion_insertion(model, x, maps, r.target, "insertion", steps=10)["auc"]
    i_rev = deletion_insertion(model, x, 1 - maps, r.target, "insertion", steps=10)["auc"]
    assert float(d_cam.mean()) < float(d_rev.mean()) and float(i_cam.mean()) > float(i_rev.mean())
    ad = average_drop_increase(model, x, maps, r.target)
    assert 0.0 <= ad["average_drop"] <= 100.0 and 0.0 <= ad["increase_in_confidence"] <= 100.0
