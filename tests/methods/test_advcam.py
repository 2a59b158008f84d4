"""AdvCAM against an independent, per-image, hand-written climb on a tiny GAP-linear model."""

import pytest
import torch
from torch import nn

from camkit.core.errors import CamkitError
from camkit.methods import CAM, get_method
from camkit.methods.advcam import AdvCAM, advcam_objective


class Tiny(nn.Module):
    """conv -> ReLU -> GAP -> linear: a CAM-capable classifier with 3 classes."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 5, 3, padding=1))
        self.fc = nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean((2, 3)))


def _model() -> Tiny:
    torch.manual_seed(0)
    return Tiny().eval()


def hand_advcam(
    model: Tiny, x: torch.Tensor, c: int, steps: int, xi: float, lam: float, tau: float
) -> torch.Tensor:
    """The climb for one image (3, H, W) and class c, written out from the paper's formula."""
    wc = model.fc.weight[c].detach()

    def cam_of(img: torch.Tensor) -> torch.Tensor:
        return (model.features(img[None])[0] * wc[:, None, None]).sum(0)

    a0 = torch.relu(cam_of(x)).detach()
    total = cam_of(x).detach()
    xt = x.clone()
    for _ in range(steps):
        xt = xt.detach().requires_grad_(True)
        feats = model.features(xt[None])
        logits = model.fc(feats.mean((2, 3)))[0]
        cam = (feats[0] * wc[:, None, None]).sum(0)
        a = torch.relu(cam)
        mask = (a / a.max() > tau).float()
        loss = logits[c] - (logits.sum() - logits[c]) - lam * (mask * (a - a0).abs()).sum()
        loss.backward()
        g = xt.grad
        assert g is not None
        moved = xt.detach() + xi * g / (g.abs().max() + 1e-12)
        xt = torch.clamp(moved, xt.detach().min().item(), xt.detach().max().item())
        total = total + cam_of(xt).detach()
    return total


def test_zero_steps_is_cam_exactly() -> None:
    model, x = _model(), torch.rand(2, 3, 8, 8)
    a = AdvCAM(model, "features", adv_steps=0)
    with a, CAM(model, "features") as b:
        ra, rb = a(x, [[0, 2], [1]]), b(x, [[0, 2], [1]])
    assert torch.equal(ra.low[0], rb.low[0]) and torch.equal(ra.maps, rb.maps)
    assert a.passes == {"forward": 1, "backward": 0}


@pytest.mark.parametrize("steps", [1, 3])
def test_matches_hand_written_climb(steps: int) -> None:
    """One step checks the climbing direction, scaling and clamp; three steps also the
    restriction term (zero at the first step, where x^t = x^0)."""
    model, x = _model(), torch.rand(2, 3, 8, 8)
    m = AdvCAM(model, "features", adv_steps=steps, adv_xi=0.3, adv_lam=7.0, adv_threshold=0.5)
    with m:
        r = m(x, [2, 0])
    for n, (i, c) in enumerate([(0, 2), (1, 0)]):
        want = hand_advcam(model, x[i], c, steps, 0.3, 7.0, 0.5)
        torch.testing.assert_close(r.low[0][n], want, rtol=1e-5, atol=1e-5)
    assert m.passes == {"forward": steps + 2, "backward": steps}


def test_climb_raises_the_target_logit() -> None:
    model, x = _model(), torch.rand(1, 3, 8, 8)
    with AdvCAM(model, "features", adv_steps=1, adv_xi=0.05, adv_lam=0.0) as m:
        r = m(x, 1)
    # sum of CAMs of x^0 and x^1, so CAM(x^1) = r - CAM(x^0); its mean is logit - bias
    with CAM(model, "features") as b:
        cam0 = b(x, 1).low[0]
    b1 = model.fc.bias[1]
    y1_after = (r.low[0] - cam0).mean() + b1
    assert float(y1_after.detach()) > float((cam0.mean() + b1).detach())


def test_restriction_term_acts_only_inside_the_mask() -> None:
    """dL/dCAM: zero outside M = 1[ReLU(CAM)/max > tau]; -lam * sign(A - A0) inside (CAM > 0)."""
    torch.manual_seed(1)
    cam = torch.randn(2, 6, 6, requires_grad=True)
    cam0 = torch.randn(2, 6, 6)
    logits = torch.randn(2, 4)
    loss = advcam_objective(logits, torch.tensor([1, 3]), cam, cam0, 7.0, 0.5).sum()
    (g,) = torch.autograd.grad(loss, cam)
    a = cam.detach().relu()
    mask = a / a.flatten(1).amax(1)[:, None, None] > 0.5
    assert mask.any() and (~mask).any()
    assert torch.equal(g[~mask], torch.zeros_like(g[~mask]))
    want = -7.0 * torch.sign(a - cam0.relu())
    torch.testing.assert_close(g[mask], want[mask])
    # with lam = 0 only the logits matter: no gradient to the CAM at all
    (g0,) = torch.autograd.grad(
        advcam_objective(logits, torch.tensor([1, 3]), cam, cam0, 0.0, 0.5).sum(), cam
    )
    assert torch.equal(g0, torch.zeros_like(g0))


def test_batched_equals_per_image() -> None:
    model, x = _model(), torch.rand(3, 3, 8, 8)
    targets = [[0, 2], [1], [0, 1, 2]]
    with AdvCAM(model, "features", adv_steps=2, adv_xi=0.2) as m:
        r = m(x, targets)
        n = 0
        for i, cls in enumerate(targets):
            for c in cls:
                one = m(x[i : i + 1], c)
                torch.testing.assert_close(r.maps[n], one.maps[0], rtol=1e-5, atol=1e-5)
                assert int(r.sample[n]) == i and int(r.target[n]) == c
                n += 1


def test_registered_and_works_on_camnet() -> None:
    from camkit.models import CAMNet, ModelConfig

    torch.manual_seed(0)
    model = CAMNet(ModelConfig(num_classes=3)).eval()
    x = torch.rand(2, 3, 32, 32)
    cls = get_method("advcam")
    assert cls is AdvCAM
    m = AdvCAM(model, adv_steps=2)
    with m:
        r = m(x, [0, 2])
    assert r.maps.shape == (2, 32, 32) and torch.isfinite(r.maps).all()
    assert m.passes["backward"] == 2


@pytest.mark.parametrize(
    "kw",
    [
        {"adv_steps": -1},
        {"adv_steps": 2.5},
        {"adv_xi": 0.0},
        {"adv_xi": -0.1},
        {"adv_lam": -1.0},
        {"adv_threshold": 1.5},
    ],
)
def test_bad_options_are_one_line_errors(kw: dict[str, float]) -> None:
    with pytest.raises(CamkitError) as e:
        AdvCAM(_model(), "features", **kw)  # type: ignore[arg-type]
    assert "\n" not in str(e.value) and next(iter(kw)) in str(e.value)
