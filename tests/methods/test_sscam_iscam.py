"""SS-CAM and IS-CAM against torchcam (same seed for SS-CAM's noise), and closed forms."""

import pytest
import torch
from torch import nn

from camkit.methods import get_method
from peer_helpers import CLASSES, resnet_and_input, tc_normalize

torchcam = pytest.importorskip("torchcam")


def setup_small() -> tuple[nn.Module, torch.Tensor]:
    model, x = resnet_and_input()
    return model, x[:, :, :32, :32].contiguous()  # layer4: 1×1 grid, 512 channels; layer3: 2×2


@pytest.mark.parametrize(
    "name,cls,kw",
    [("ss-cam", "SSCAM", {"num_samples": 2, "std": 0.5}), ("is-cam", "ISCAM", {"num_samples": 3})],
)
def test_matches_torchcam(name: str, cls: str, kw: dict) -> None:
    model, x = setup_small()
    ext = getattr(torchcam.methods, cls)(model, "layer3", batch_size=256, input_shape=(3, 32, 32), **kw)
    with ext:
        with torch.no_grad():
            scores = model(x)
        torch.manual_seed(7)
        theirs = ext(class_idx=CLASSES, scores=scores)[0]
    ours = get_method(name)(
        model, "layer3", batch_size=256, **kw, **({"seed": 7} if name == "ss-cam" else {})
    )(x, CLASSES)
    torch.testing.assert_close(tc_normalize(ours.low[0]), theirs, atol=1e-5, rtol=0)


def test_sscam_seed_and_global_generator() -> None:
    model, x = setup_small()
    x = x[:1]
    m = get_method("ss-cam")(model, "layer3", num_samples=1, seed=3, batch_size=256)
    first = m(x, 3).low[0]
    torch.testing.assert_close(m(x, 3).low[0], first)
    torch.manual_seed(3)  # seed=None draws from the global generator: the same stream
    g = get_method("ss-cam")(model, "layer3", num_samples=1, batch_size=256)(x, 3).low[0]
    torch.testing.assert_close(g, first)


class Lin(nn.Module):
    """y = <v, x> summed over pixels: every score is linear in the input."""

    def __init__(self) -> None:
        super().__init__()
        self.feat = nn.Identity()
        self.v = torch.tensor([1.0, -2.0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = (self.feat(x) * self.v[None, :, None, None]).sum((1, 2, 3))
        return torch.stack([y, -y], 1)


def test_iscam_closed_form_on_a_linear_model() -> None:
    # scores are linear: s_k = mean_i κ_i · y(x ⊙ H_k), κ_i = 1/3, 1/3 + 2/3, 1 + 3/3 -> mean 10/9
    x = torch.tensor([[[[1.0, 2.0], [3.0, 0.0]], [[0.5, 0.0], [1.0, 2.0]]]])
    r = get_method("is-cam")(Lin(), "feat", num_samples=3)(x, 0).low[0][0]
    h = (x[0] - x[0].amin((1, 2), keepdim=True)) / (
        x[0].amax((1, 2), keepdim=True) - x[0].amin((1, 2), keepdim=True) + 1e-8
    )
    s = (
        torch.stack([(h[k] * x[0] * torch.tensor([1.0, -2.0])[:, None, None]).sum() for k in range(2)])
        * 10
        / 9
    )
    torch.testing.assert_close(r, torch.relu((torch.softmax(s, 0)[:, None, None] * x[0]).sum(0)))
