"""ROAD: the imputer by hand and against pytorch-grad-cam's scipy solver; MoRF/LeRF/combined
against pytorch-grad-cam's metrics on the same model, maps and percentiles."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from camkit.core.errors import CamkitError
from camkit.metrics.road import noisy_linear_impute, road, road_keep_masks


def test_one_removed_pixel_is_its_neighbours_weighted_mean() -> None:
    x = torch.arange(9.0).view(1, 1, 3, 3)
    keep = torch.ones(1, 3, 3, dtype=torch.bool)
    keep[0, 1, 1] = False
    out = noisy_linear_impute(x, keep, noise=0.0, tol=1e-7)
    edges, corners = 1 + 3 + 5 + 7, 0 + 2 + 6 + 8
    assert out[0, 0, 1, 1].item() == pytest.approx(edges / 6 + corners / 12, abs=1e-5)
    # a corner pixel: 3 in-image neighbours of weights 1/6, 1/6, 1/12, renormalized by their sum 5/12
    keep = torch.ones(1, 3, 3, dtype=torch.bool)
    keep[0, 0, 0] = False
    out = noisy_linear_impute(x, keep, noise=0.0, tol=1e-7)
    assert out[0, 0, 0, 0].item() == pytest.approx((1 / 6 + 3 / 6 + 4 / 12) / (5 / 12), abs=1e-5)
    assert torch.equal(out.flatten()[1:], x.flatten()[1:])


@pytest.mark.parametrize(("h", "w", "q"), [(20, 28, 0.3), (40, 36, 0.8)])
def test_imputer_matches_pytorch_grad_cam(h: int, w: int, q: float) -> None:
    road_ref = pytest.importorskip("pytorch_grad_cam.metrics.road")
    g = torch.Generator().manual_seed(1)
    x = torch.rand(3, h, w, generator=g)
    cam = F.interpolate(torch.rand(1, 1, 4, 5, generator=g), size=(h, w), mode="bilinear")[0, 0]
    keep = cam < cam.quantile(q)
    ref = road_ref.NoisyLinearImputer(noise=0.0)(x, keep.float())
    mine = noisy_linear_impute(x[None], keep[None], noise=0.0, tol=1e-6)[0]
    torch.testing.assert_close(mine, ref, atol=2e-5, rtol=0)


def test_noise_only_on_removed_pixels_and_seeded() -> None:
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    keep = torch.rand(2, 32, 32, generator=torch.Generator().manual_seed(1)) > 0.5
    clean = noisy_linear_impute(x, keep, noise=0.0)
    a = noisy_linear_impute(x, keep, noise=0.01, generator=torch.Generator().manual_seed(3))
    b = noisy_linear_impute(x, keep, noise=0.01, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    diff = (a - clean).permute(1, 0, 2, 3)  # (C, N, H, W)
    assert torch.equal(diff[:, keep], torch.zeros_like(diff[:, keep]))
    assert diff[:, ~keep].std().item() == pytest.approx(0.01, rel=0.1)


def test_keep_masks_follow_the_reference_percentiles() -> None:
    maps = torch.arange(10.0).view(1, 2, 5)  # distinct values 0..9
    k = road_keep_masks(maps, [20, 80])
    # MoRF keeps map < np.percentile(map, p); LeRF keeps 1 - map < np.percentile(1 - map, p)
    for j, p in enumerate([20, 80]):
        m = maps.numpy()[0]
        assert (k[0, j].numpy() == (m < np.percentile(m, p))).all()
        assert (k[0, 2 + j].numpy() == ((1 - m) < np.percentile(1 - m, p))).all()
    assert int(k[0, 0].sum()) == 2 and int(k[0, 2].sum()) == 2  # MoRF 20 removes the top 8, LeRF the bottom 8


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))


@pytest.mark.parametrize("score", ["prob", "logit"])
def test_road_matches_pytorch_grad_cam(score: str) -> None:
    pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam.metrics.perturbation_confidence import (
        PerturbationConfidenceMetric,
        RemoveLeastRelevantFirst,
        RemoveMostRelevantFirst,
    )
    from pytorch_grad_cam.metrics.road import NoisyLinearImputer
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget, ClassifierOutputTarget

    model = TinyNet().eval()
    g = torch.Generator().manual_seed(2)
    x = torch.rand(3, 3, 24, 32, generator=g)
    cams = F.interpolate(torch.rand(3, 1, 3, 4, generator=g), size=(24, 32), mode="bilinear")[:, 0]
    targets = torch.tensor([0, 3, 4])
    pct = [20, 50, 80]
    target_cls = ClassifierOutputSoftmaxTarget if score == "prob" else ClassifierOutputTarget
    tg = [target_cls(int(t)) for t in targets]
    r = road(model, x, cams, targets, pct, score=score, noise=0.0, tol=1e-6)
    for order, mine in ((RemoveMostRelevantFirst, r.morf), (RemoveLeastRelevantFirst, r.lerf)):
        for j, p in enumerate(pct):  # the deterministic part: the reference's imputer without noise
            ref = PerturbationConfidenceMetric(order(p, NoisyLinearImputer(noise=0.0)))(
                x, cams.numpy(), tg, model
            )
            np.testing.assert_allclose((mine[:, j] - r.original).numpy(), ref, atol=1e-5)
    morf = torch.stack([r.morf[:, j] - r.original for j in range(3)]).mean(0)
    lerf = torch.stack([r.lerf[:, j] - r.original for j in range(3)]).mean(0)
    torch.testing.assert_close(r.combined, (lerf - morf) / 2)


def test_road_with_noise_is_seeded_and_batches_agree() -> None:
    model = TinyNet().eval()
    g = torch.Generator().manual_seed(4)
    x = torch.rand(4, 3, 16, 16, generator=g)
    cams = torch.rand(4, 16, 16, generator=g)
    t = torch.tensor([0, 1, 2, 3])
    a = road(model, x, cams, t, [25, 75], seed=7, batch_size=4)
    b = road(model, x, cams, t, [25, 75], seed=7, batch_size=4)
    torch.testing.assert_close(a.combined, b.combined)
    clean1 = road(model, x, cams, t, [25, 75], noise=0.0, batch_size=4, tol=1e-6)
    clean2 = road(model, x, cams, t, [25, 75], noise=0.0, batch_size=64, tol=1e-6)
    torch.testing.assert_close(clean1.morf, clean2.morf, atol=1e-5, rtol=0)


@pytest.mark.parametrize("bad", [[0], [100], [-5, 50], [50, 120.0], []])
def test_percentiles_outside_0_100_are_one_line_errors(bad: list[float]) -> None:
    with pytest.raises(CamkitError, match="percentiles"):
        road(TinyNet(), torch.rand(1, 3, 8, 8), torch.rand(1, 8, 8), torch.tensor([0]), bad)


def test_maps_of_another_size_are_refused() -> None:
    with pytest.raises(CamkitError, match="upsample the maps"):
        road(TinyNet(), torch.rand(1, 3, 8, 8), torch.rand(1, 4, 4), torch.tensor([0]))
    with pytest.raises(CamkitError, match="score"):
        road(TinyNet(), torch.rand(1, 3, 8, 8), torch.rand(1, 8, 8), torch.tensor([0]), score="acc")
