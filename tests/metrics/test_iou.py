import pytest
import torch

from camkit.core.errors import CamkitError
from camkit.core.ops import minmax, upsample
from camkit.metrics import IoUSweep, default_thresholds, iou, iou_curve, sweep_counts
from camkit.metrics.iou import iou_from_counts


def _m(rows: list[str]) -> torch.Tensor:
    return torch.tensor([[c == "#" for c in r] for r in rows])


def test_iou_hand_made_masks() -> None:
    a = _m(["##..", "##..", "....", "...."])  # 4 px
    b = _m([".##.", ".##.", "....", "...."])  # 4 px, overlap 2
    c = _m(["....", "....", "..##", "..##"])  # disjoint from a
    got = iou(torch.stack([a, a, a]), torch.stack([b, a, c]))
    torch.testing.assert_close(got, torch.tensor([2 / 6, 1.0, 0.0]))


def test_iou_empty_conventions() -> None:
    e = torch.zeros(1, 3, 3, dtype=torch.bool)
    f = torch.ones(1, 3, 3, dtype=torch.bool)
    assert iou(e, e).item() == 1.0  # nothing to find, nothing found
    assert iou(f, e).item() == 0.0
    assert iou(e, f).item() == 0.0


def test_sweep_counts_hand_computed() -> None:
    maps = torch.tensor([[[0.0, 0.25], [0.5, 1.0]]])
    gt = torch.tensor([[[False, True], [True, False]]])
    thr = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0], dtype=torch.float64)
    inter, pred, area = sweep_counts(maps, gt, thr)
    assert pred.tolist() == [[4, 3, 2, 1, 1]]
    assert inter.tolist() == [[2, 2, 1, 0, 0]]
    assert area.tolist() == [[2] * 5]
    torch.testing.assert_close(
        iou_curve(maps, gt, thr), torch.tensor([[2 / 4, 2 / 3, 1 / 3, 0.0, 0.0]], dtype=torch.float64)
    )


def test_sweep_equals_per_threshold_loop() -> None:
    g = torch.Generator().manual_seed(0)
    maps = torch.rand(7, 13, 11, generator=g)
    maps[0] = 0.29  # values that sit exactly on grid thresholds must compare as >=
    maps[1, :5] = 0.5
    gt = torch.rand(7, 13, 11, generator=g) > 0.6
    gt[2] = False
    thr = default_thresholds(0.01)
    curve = iou_curve(maps, gt, thr)
    for k, t in enumerate(thr.tolist()):
        torch.testing.assert_close(curve[:, k].float(), iou(maps >= t, gt))


def test_streaming_sweep_finds_peak() -> None:
    gt = torch.zeros(2, 4, 4, dtype=torch.bool)
    gt[:, :2, :2] = True
    maps = torch.zeros(2, 4, 4)
    maps[:, :2, :2] = 0.7
    maps[:, 2:, 2:] = 0.4
    s = IoUSweep()
    s.update(maps[:1], gt[:1])
    s.update(maps[1:], gt[1:])
    r = s.compute()
    assert r.peak_iou == r["peak_iou"] == pytest.approx(1.0) and r.images == 2
    assert 0.4 < r["peak_threshold"] <= 0.7
    assert s.miou_at(0.3) == pytest.approx(4 / 8)
    assert s.miou_at(0.0) == pytest.approx(4 / 16)


def test_errors_and_no_nan() -> None:
    with pytest.raises(CamkitError, match="sizes differ"):
        iou(torch.zeros(1, 2, 2, dtype=torch.bool), torch.zeros(1, 3, 3, dtype=torch.bool))
    with pytest.raises(CamkitError, match="NaN"):
        sweep_counts(
            torch.full((1, 2, 2), float("nan")), torch.zeros(1, 2, 2, dtype=torch.bool), default_thresholds()
        )
    const = minmax(torch.full((2, 3, 3), 5.0))
    assert torch.equal(const, torch.zeros(2, 3, 3))


def test_minmax_and_upsample() -> None:
    m = torch.tensor([[[1.0, 3.0], [5.0, 9.0]]])
    torch.testing.assert_close(minmax(m), torch.tensor([[[0.0, 0.25], [0.5, 1.0]]]))
    up = upsample(minmax(m), 8)
    assert up.shape == (1, 8, 8)
    assert float(up.min()) >= 0.0 and float(up.max()) <= 1.0
    assert upsample(m, (2, 2)) is m


def test_iou_from_counts_conventions() -> None:
    tp, fp, fn = torch.tensor([2, 0, 0, 3]), torch.tensor([1, 0, 4, 0]), torch.tensor([1, 0, 0, 0])
    assert iou_from_counts(tp, fp, fn).tolist() == [0.5, 1.0, 0.0, 1.0]  # empty union: 1 by default
    assert iou_from_counts(tp, fp, fn, empty=0.0).tolist() == [0.5, 0.0, 0.0, 1.0]
    assert iou_from_counts(tp, fp, fn).dtype == torch.float32  # integer counts: torch's default float
    assert iou_from_counts(tp.double(), fp.double(), fn.double()).dtype == torch.float64


def test_iou_from_counts_matches_the_old_formulas() -> None:
    g = torch.Generator().manual_seed(0)
    maps, gt = torch.rand(6, 9, 11, generator=g), torch.rand(6, 9, 11, generator=g) > 0.6
    gt[0] = False
    maps[1] = 0.0
    thr = default_thresholds(0.05)
    inter, pred, area = sweep_counts(maps, gt, thr)
    union = pred + area - inter
    old = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union, dtype=torch.float64))
    assert torch.equal(iou_curve(maps, gt, thr), old)
    p = maps >= 0.5
    u = (p | gt).flatten(1).sum(1).float()
    old_iou = torch.where(u > 0, (p & gt).flatten(1).sum(1).float() / u.clamp_min(1), torch.ones_like(u))
    assert torch.equal(iou(p, gt), old_iou)
