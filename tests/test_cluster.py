import numpy as np
import pytest
import torch

from camkit.wsss.cluster import cosine_inertia, spherical_kmeans


def _blobs(n: int = 3000, d: int = 16, k: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    dirs = torch.nn.functional.normalize(torch.randn(k, d, generator=g), dim=1)
    lab = torch.randint(k, (n,), generator=g)
    scale = torch.rand(n, 1, generator=g) * 5 + 0.5  # magnitudes must not matter to cosine
    x = (dirs[lab] + 0.05 * torch.randn(n, d, generator=g)) * scale
    return x, lab


def test_stable_for_a_seed() -> None:
    x, _ = _blobs()
    a, b = spherical_kmeans(x, 5, seed=3), spherical_kmeans(x, 5, seed=3)
    assert torch.equal(a.labels, b.labels) and torch.equal(a.centers, b.centers)
    assert a.inertia == b.inertia and a.converged


def test_recovers_separated_clusters() -> None:
    x, lab = _blobs()
    r = spherical_kmeans(x, 5, seed=0, n_init=3)
    # every true cluster maps to one found cluster
    for c in range(5):
        assert torch.unique(r.labels[lab == c]).numel() == 1
    assert torch.unique(r.labels).numel() == 5
    torch.testing.assert_close(r.centers.norm(dim=1), torch.ones(5))
    # means keep the raw scale (magnitudes 0.5-5.5) and point along the centers
    assert (r.means.norm(dim=1) > 2).all()
    assert (torch.nn.functional.cosine_similarity(r.means, r.centers) > 0.99).all()
    assert r.inertia == pytest.approx(cosine_inertia(x, r.centers), rel=1e-5)


def test_inertia_by_hand() -> None:
    x = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
    r = spherical_kmeans(x, 2, seed=0)
    assert r.inertia == pytest.approx(0.0, abs=1e-6)
    assert cosine_inertia(x, torch.tensor([[1.0, 1.0]])) == pytest.approx(3 * (1 - 2**-0.5), rel=1e-6)


def test_zero_vectors_dropped_and_k_capped() -> None:
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0], [0.0, 1.0]])
    r = spherical_kmeans(x, 5, seed=0)
    assert r.dropped == 2 and r.centers.shape[0] == 2
    assert r.labels[0] == -1 and r.labels[2] == -1 and r.labels[1] != r.labels[3]


def test_non_convergence_is_reported_not_looped(caplog: pytest.LogCaptureFixture) -> None:
    x = torch.randn(2000, 8, generator=torch.Generator().manual_seed(1))  # no structure: slow to settle
    r = spherical_kmeans(x, 20, seed=0, max_iter=1, name="class 3 bg")
    assert not r.converged and r.iterations == 1
    assert "class 3 bg: not converged" in caplog.text


def test_at_least_as_good_as_kmeans_pytorch() -> None:
    kp = pytest.importorskip("kmeans_pytorch")
    x, _ = _blobs(n=4000, d=32, k=8, seed=2)
    np.random.seed(0)  # kmeans_pytorch seeds from numpy's global generator; this seed terminates
    _, centers = kp.kmeans(X=x, num_clusters=8, distance="cosine", device=torch.device("cpu"))
    ours = spherical_kmeans(x, 8, seed=0, n_init=3)
    assert ours.inertia <= cosine_inertia(x, centers) * 1.001
