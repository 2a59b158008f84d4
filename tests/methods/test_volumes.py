"""3-D inputs (B, C, D, H, W): a tiny 3-D conv net whose maps have closed forms; maps come back
as (N, D, H, W), upsampled trilinearly."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from camkit.methods import get_method


class Tiny3D(nn.Module):
    """conv3d (2 -> 3 channels, kernel 1, stride 2) -> GAP -> linear: dy_c/dA_k = w_ck / dhw."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Conv3d(2, 3, 1, stride=2)
        self.fc = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean((2, 3, 4)))


@pytest.fixture(scope="module")
def case() -> tuple[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor]:
    model = Tiny3D().eval()
    x = torch.rand(2, 2, 4, 6, 8)  # features: (2, 3, 2, 3, 4)
    a = model.features(x).detach()
    cam = torch.einsum("nkdhw,nk->ndhw", a, model.fc.weight.detach()[[0, 1]])  # class 0 for x0, 1 for x1
    return model, x, a, cam


def up(m: torch.Tensor) -> torch.Tensor:
    return F.interpolate(m[:, None], size=(4, 6, 8), mode="trilinear", align_corners=False)[:, 0]


@pytest.mark.parametrize(
    "name,expected",
    [
        ("cam", lambda cam, a: cam),
        ("grad-cam", lambda cam, a: torch.relu(cam / 24)),
        ("hirescam", lambda cam, a: cam / 24),
        ("layercam", None),
        ("xgrad-cam", lambda cam, a: torch.relu(cam / 24)),  # sum_ij A/sum(A) · w/dhw = w/dhw
        ("fem", None),
        ("grad-cam++", None),
    ],
)
def test_closed_forms_on_volumes(case, name: str, expected) -> None:
    model, x, a, cam = case
    r = get_method(name)(model, "features")(x, [0, 1])
    assert r.low[0].shape == (2, 2, 3, 4) and r.maps.shape == (2, 4, 6, 8)
    if name == "layercam":  # ReLU(sum_k ReLU(w_k/dhw) A_k)
        w = model.fc.weight.detach()[[0, 1]]
        exp = torch.relu(torch.einsum("nkdhw,nk->ndhw", a, torch.relu(w) / 24))
    elif (
        name == "grad-cam++"
    ):  # g = w/dhw everywhere: alpha = g²/(2g² + sum(A) g³), w = dhw · alpha · ReLU(g)
        g = model.fc.weight.detach()[[0, 1]] / 24
        alpha = g**2 / (2 * g**2 + a.sum((2, 3, 4)) * g**3 + 1e-6)
        exp = torch.relu(torch.einsum("nkdhw,nk->ndhw", a, 24 * alpha * torch.relu(g)))
    elif name == "fem":
        flat = a.flatten(2)
        wk = (flat > (flat.mean(2) + 2 * flat.std(2, correction=0))[..., None]).float().mean(2)
        exp = torch.relu(torch.einsum("nkdhw,nk->ndhw", a, wk))
    else:
        exp = expected(cam, a)
    torch.testing.assert_close(r.low[0], exp, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(r.maps, up(exp), atol=1e-6, rtol=1e-5)


def test_fullgrad_and_eigen_on_volumes(case) -> None:
    model, x, a, _ = case
    assert get_method("fullgrad")(model)(x, [0, 1]).maps.shape == (2, 4, 6, 8)
    for name in ("kpca-cam", "eigengrad-cam"):
        r = get_method(name)(model, "features")(x, [0, 1])
        assert r.low[0].shape == (2, 2, 3, 4) and r.maps.shape == (2, 4, 6, 8)
    e = get_method("eigen-cam")(model, "features")(x, [0, 1])
    assert e.low[0].shape == (2, 2, 3, 4)
    # a 3-channel activation whose channels are all the same map: the first component is that map, centred
    v = a[:, :1].repeat(1, 3, 1, 1, 1)
    from camkit.methods.eigencam import first_component

    p = first_component(v)
    centred = v[:, 0] - v[:, 0].mean((1, 2, 3), keepdim=True)
    torch.testing.assert_close(p, centred * 3**0.5, atol=1e-5, rtol=1e-4)
