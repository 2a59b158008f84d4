import pytest
import torch

from camkit.metrics.classification import MultiLabelMetrics, average_precision


def test_average_precision_by_hand() -> None:
    # scores ranked: pos, neg, pos, neg -> AP = (1/1 + 2/3) / 2
    s = torch.tensor([[0.9], [0.8], [0.7], [0.1]])
    t = torch.tensor([[1], [0], [1], [0]])
    assert average_precision(s, t)[0].item() == pytest.approx((1 + 2 / 3) / 2)
    assert torch.isnan(average_precision(s, torch.zeros_like(t))[0])


def test_average_precision_matches_sklearn_with_ties() -> None:
    skm = pytest.importorskip("sklearn.metrics")
    g = torch.Generator().manual_seed(0)
    s = (torch.rand(200, 5, generator=g) * 10).round() / 10  # many ties
    t = (torch.rand(200, 5, generator=g) < 0.3).int()
    ours = average_precision(s, t)
    for c in range(5):
        assert ours[c].item() == pytest.approx(skm.average_precision_score(t[:, c].numpy(), s[:, c].numpy()))


def test_multilabel_metrics() -> None:
    m = MultiLabelMetrics()
    logits = torch.tensor([[2.0, -1.0, 1.0], [-1.0, 3.0, -2.0]])
    m.update(logits, torch.tensor([[1, 0, 1], [1, 1, 0]]))
    r = m.compute()
    assert r["exact_match"] == 0.5
    assert r["f1"] == pytest.approx(2 * 3 / (3 + 4))
