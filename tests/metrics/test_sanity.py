"""Sanity checks: Spearman against scipy, SSIM against scikit-image, MPRT and random logit
against Quantus 0.6 on the same model, explanation function and inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from camkit.core.errors import CamkitError
from camkit.metrics.sanity import mprt, random_logit, randomizable_modules, spearman, ssim


def test_spearman_matches_scipy_with_ties() -> None:
    from scipy.stats import spearmanr

    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 5, (4, 6, 7), generator=g).float()  # many ties
    b = a + torch.randint(0, 3, (4, 6, 7), generator=g).float()
    r = spearman(a, b)
    for i in range(4):
        assert r.scores[i].item() == pytest.approx(spearmanr(a[i].flatten(), b[i].flatten())[0], abs=1e-6)
    const = spearman(a, torch.ones_like(a))
    assert const.skipped == 4 and const.mean is None and not torch.isnan(const.scores).any()
    assert spearman(a[:1], -a[:1]).scores.item() == pytest.approx(-1.0)


def test_ssim_matches_scikit_image() -> None:
    from skimage.metrics import structural_similarity

    g = torch.Generator().manual_seed(1)
    a = torch.rand(3, 20, 24, generator=g)
    b = (a + 0.3 * torch.rand(3, 20, 24, generator=g)).clamp(0, 1)
    mine = ssim(a, b)
    mine_fixed = ssim(a, b, data_range=1.0)
    for i in range(3):
        x, y = a[i].double().numpy(), b[i].double().numpy()
        joint = float(max(x.max(), y.max()) - min(x.min(), y.min()))
        assert mine[i].item() == pytest.approx(structural_similarity(x, y, data_range=joint), abs=1e-6)
        assert mine_fixed[i].item() == pytest.approx(structural_similarity(x, y, data_range=1.0), abs=1e-6)
    assert ssim(torch.zeros(1, 8, 8), torch.zeros(1, 8, 8)).item() == pytest.approx(1.0)
    with pytest.raises(CamkitError, match="win_size"):
        ssim(torch.rand(1, 5, 9), torch.rand(1, 5, 9))


class CAMNet(nn.Module):
    def __init__(self, k: int = 4) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.conv2 = nn.Conv2d(6, 8, 3, padding=1)
        self.fc = nn.Linear(8, k)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv2(torch.relu(self.conv1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean((2, 3)))


def cam(model: nn.Module, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """|Σ_k w_{t,k} A_k|, (B, H, W): a CAM kept nonnegative without ReLU's constant maps."""
    with torch.no_grad():
        a = model.features(x)  # type: ignore[operator]
        return torch.einsum("bkhw,bk->bhw", a, model.fc.weight[t]).abs()  # type: ignore[index]


def quantus_cam(model: nn.Module, inputs: np.ndarray, targets: np.ndarray, **_: object) -> np.ndarray:
    return cam(model, torch.from_numpy(inputs), torch.from_numpy(np.asarray(targets)).long())[:, None].numpy()


@pytest.fixture(scope="module")
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    x = F.interpolate(torch.rand(5, 3, 6, 6, generator=g), size=(16, 16), mode="bilinear")
    return x, torch.tensor([0, 1, 2, 3, 1])


def test_mprt_matches_quantus(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    quantus = pytest.importorskip("quantus")
    x, y = batch
    model = CAMNet().eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert randomizable_modules(model) == ["fc", "conv2", "conv1"]
    r = mprt(model, x, y, cam, seed=42)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # the model is untouched
    metric = quantus.MPRT(disable_warnings=True, layer_order="top_down", seed=42)
    theirs = metric(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=None,
                    explain_func=quantus_cam, device="cpu")  # fmt: skip
    assert list(theirs) == ["original", "fc", "conv2", "conv1"]
    for step, name in zip(r.similarity, ["fc", "conv2", "conv1"], strict=True):
        ours = step.spearman.scores.numpy()
        np.testing.assert_allclose(ours, np.nan_to_num(np.asarray(theirs[name])), atol=1e-5)
    assert r.steps == [["fc"], ["conv2"], ["conv1"]]


def test_mprt_groups_and_bad_names(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, y = batch
    model = CAMNet().eval()
    r = mprt(model, x, y, cam, steps=[["fc", "conv2", "conv1"]])
    full = mprt(model, x, y, cam)
    torch.testing.assert_close(r.similarity[0].ssim, full.similarity[-1].ssim)  # all at once = the last step
    with pytest.raises(CamkitError, match="no module"):
        mprt(model, x, y, cam, steps=[["head"]])


def test_random_logit_matches_quantus(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    quantus = pytest.importorskip("quantus")
    x, _ = batch
    y = torch.tensor([0, 1, 1, 0, 1])
    model = CAMNet(k=2).eval()  # two classes: the other class is 1 - y whatever the draw
    r = random_logit(model, x, y, cam, num_classes=2)
    assert torch.equal(r.off_targets, 1 - y)
    metric = quantus.RandomLogit(num_classes=2, disable_warnings=True,
                                 similarity_func=quantus.similarity_func.correlation_spearman)  # fmt: skip
    theirs = metric(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=None,
                    explain_func=quantus_cam, device="cpu")  # fmt: skip
    np.testing.assert_allclose(
        r.similarity.spearman.scores.numpy(), np.asarray(theirs, dtype=float), atol=1e-5
    )


def test_random_logit_draws_other_classes() -> None:
    model = CAMNet(k=4).eval()
    x = torch.rand(40, 3, 8, 8)
    y = torch.randint(0, 4, (40,), generator=torch.Generator().manual_seed(0))
    r = random_logit(model, x, y, cam, num_classes=4, seed=1)
    assert (r.off_targets != y).all() and set(r.off_targets.tolist()) == {0, 1, 2, 3}
    with pytest.raises(CamkitError, match="num_classes"):
        random_logit(model, x, y, cam, num_classes=1)
