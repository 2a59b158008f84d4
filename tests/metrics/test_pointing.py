"""Pointing games and relevance mass/rank: hand-computed cases, bad input, and Quantus 0.6."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from camkit.core.errors import CamkitError
from camkit.metrics.masked import boxes_to_masks
from camkit.metrics.pointing import (
    PointingGame,
    energy_pointing_game,
    energy_pointing_game_boxes,
    pointing_game,
    pointing_game_boxes,
)
from camkit.metrics.relevance import relevance_mass_accuracy, relevance_rank_accuracy


def peak_map(h: int, w: int, y: int, x: int) -> torch.Tensor:
    m = torch.zeros(h, w)
    m[y, x] = 1.0
    return m


def test_peak_just_inside_and_just_outside_15px() -> None:
    mask = torch.zeros(1, 64, 64, dtype=torch.bool)
    mask[0, 10, 10] = True  # one object pixel
    peaks = [(10, 24), (10, 25), (19, 21), (19, 22), (10, 10)]  # distance 14, 15, √202, √225=15, 0
    maps = torch.stack([peak_map(64, 64, y, x) for y, x in peaks])
    r = pointing_game(maps, mask.expand(5, 64, 64))
    assert r.scores.tolist() == [1.0, 0.0, 1.0, 0.0, 1.0]
    assert r.skipped == 0 and r.mean == pytest.approx(3 / 5)
    # tolerance 0: only a peak on the object hits; a larger tolerance reaches further
    assert pointing_game(maps, mask.expand(5, 64, 64), tolerance=0).scores.tolist() == [0, 0, 0, 0, 1]
    assert pointing_game(maps, mask.expand(5, 64, 64), tolerance=15.01).scores.tolist() == [1, 1, 1, 1, 1]


def test_ties_take_the_first_peak_and_empty_masks_are_skipped() -> None:
    maps = torch.zeros(2, 40, 40)
    maps[:, 0, 0] = 1.0
    maps[:, 39, 39] = 1.0  # tie: row-major first is (0, 0)
    masks = torch.zeros(2, 40, 40, dtype=torch.bool)
    masks[0, 35:, 35:] = True  # near the second peak only
    r = pointing_game(maps, masks)
    assert r.scores.tolist() == [0.0, 0.0] and r.valid.tolist() == [True, False]
    assert r.skipped == 1 and r.mean == 0.0 and not torch.isnan(r.scores).any()
    none = pointing_game(maps, torch.zeros(2, 40, 40))
    assert none.skipped == 2 and none.mean is None


def test_non_square_box_is_not_transposed() -> None:
    # a 12 x 20 map whose energy lies in rows 1..3, columns 2..15 (a wide box)
    maps = torch.zeros(1, 12, 20)
    maps[0, 1:4, 2:16] = 1.0
    maps[0, 10, 0] = 2.0  # and 2 units of energy outside: share 42 / 44
    box = torch.tensor([[2, 1, 15, 3]])  # x0, y0, x1, y1 inclusive
    r = energy_pointing_game_boxes(maps, box)
    assert r.scores.item() == pytest.approx(42 / 44)
    mask = boxes_to_masks(box, (12, 20))
    assert int(mask.sum()) == 3 * 14 and bool(mask[0, 1:4, 2:16].all())
    # indexing the box transposed (rows x0..x1, columns y0..y1) puts it elsewhere:
    transposed = torch.zeros(1, 12, 20, dtype=torch.bool)
    transposed[0, 2:12, 1:4] = True
    assert energy_pointing_game(maps, transposed).scores.item() != pytest.approx(42 / 44)
    # the peak (10, 0) is 7 rows below the box: a miss at 7 px, a hit at 8 px
    assert pointing_game_boxes(maps, box, tolerance=7).scores.item() == 0.0
    assert pointing_game_boxes(maps, [box[0:1]], tolerance=8).scores.item() == 1.0


def test_energy_ignores_negative_values_and_skips_energyless_maps() -> None:
    maps = torch.tensor([[[1.0, -5.0], [3.0, 0.0]], [[-1.0, -1.0], [-1.0, -1.0]]])
    masks = torch.tensor([[[1, 1], [0, 0]], [[1, 0], [0, 0]]])
    r = energy_pointing_game(maps, masks)
    assert r.scores.tolist() == [pytest.approx(0.25), 0.0]
    assert r.valid.tolist() == [True, False] and r.skipped == 1


def test_relevance_mass_and_rank_hand_computed() -> None:
    maps = torch.tensor([[[4.0, 3.0, 0.0], [2.0, 1.0, 0.0]]])
    masks = torch.tensor([[[1, 0, 0], [0, 1, 1]]])  # K = 3: top-3 are 4, 3, 2 -> only 4 inside
    assert relevance_mass_accuracy(maps, masks).scores.item() == pytest.approx(5 / 10)
    assert relevance_rank_accuracy(maps, masks).scores.item() == pytest.approx(1 / 3)
    empty = relevance_rank_accuracy(maps, torch.zeros_like(masks))
    assert empty.skipped == 1 and empty.mean is None


def test_bad_input_is_one_line() -> None:
    with pytest.raises(CamkitError, match="differ in size"):
        pointing_game(torch.rand(2, 8, 8), torch.ones(2, 8, 9))
    with pytest.raises(CamkitError, match="differ in size"):
        relevance_mass_accuracy(torch.rand(2, 8, 8), torch.ones(1, 8, 8))
    with pytest.raises(CamkitError, match="tolerance"):
        pointing_game(torch.rand(1, 8, 8), torch.ones(1, 8, 8), tolerance=-1)
    with pytest.raises(CamkitError, match="NaN"):
        energy_pointing_game(torch.full((1, 4, 4), float("nan")), torch.ones(1, 4, 4))


def test_pointing_game_per_class_accumulator() -> None:
    pg = PointingGame(tolerance=0)
    masks = torch.zeros(4, 8, 8, dtype=torch.bool)
    masks[:, :4] = True  # top half
    maps = torch.stack([peak_map(8, 8, y, 0) for y in (0, 7, 1, 2)])
    pg.update(maps, masks, torch.tensor([0, 0, 1, 1]))
    pg.update(maps[:1], torch.zeros(1, 8, 8), torch.tensor([2]))
    r = pg.compute()
    assert r.per_class == {0: 0.5, 1: 1.0} and r.accuracy == pytest.approx(0.75)
    assert r.overall == pytest.approx(3 / 4) and r.skipped == 1 and r.scored == 4


# --- Quantus 0.6 on the same inputs ---------------------------------------------------------


@pytest.fixture(scope="module")
def quantus_inputs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    g = torch.Generator().manual_seed(0)
    a = torch.rand(6, 1, 16, 24, generator=g)  # distinct values: no ties
    s = torch.zeros(6, 1, 16, 24)
    for i in range(6):
        y0, x0 = int(torch.randint(0, 8, (1,), generator=g)), int(torch.randint(0, 12, (1,), generator=g))
        s[i, 0, y0 : y0 + 5 + i, x0 : x0 + 3 + 2 * i] = 1
    x = torch.rand(6, 3, 16, 24, generator=g)
    return x.numpy(), a.numpy(), s.numpy()


def _quantus(metric: object, x: np.ndarray, a: np.ndarray, s: np.ndarray) -> np.ndarray:
    y = np.zeros(len(x), dtype=int)
    return np.asarray(metric(model=None, x_batch=x, y_batch=y, a_batch=a, s_batch=s), dtype=float)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("name", "ours"),
    [
        ("PointingGame", lambda a, s: pointing_game(a, s, tolerance=0)),
        ("RelevanceMassAccuracy", relevance_mass_accuracy),
        ("RelevanceRankAccuracy", relevance_rank_accuracy),
    ],
)
def test_against_quantus(name: str, ours: object, quantus_inputs: tuple) -> None:
    quantus = pytest.importorskip("quantus")
    x, a, s = quantus_inputs
    theirs = _quantus(getattr(quantus, name)(disable_warnings=True), x, a, s)
    mine = ours(torch.from_numpy(a[:, 0]), torch.from_numpy(s[:, 0]))  # type: ignore[operator]
    np.testing.assert_allclose(mine.scores.numpy(), theirs, rtol=1e-6, atol=1e-6)


def test_public_names() -> None:
    import camkit.metrics as M

    maps, masks = torch.zeros(1, 30, 30), torch.zeros(1, 30, 30)
    maps[0, 0, 0], masks[0, 0, 14] = 1.0, 1
    assert M.pointing_game(maps, masks, tolerance=15).scores.item() == 1.0
    assert M.energy_pointing_game(maps, masks).scores.item() == 0.0
