"""WSOL metrics on wsolevaluation's published cases and hand-computed values."""

import numpy as np
import pytest
import torch

from camkit.core.errors import CamkitError
from camkit.metrics.wsol import BoxAccuracy, PxAP, box_iou, boxes_from_scoremap, cam_thresholds

T5 = np.arange(0, 1, 0.2)


def test_boxes_unimodal_published_case() -> None:
    s = torch.tensor(
        [
            [0.0, 0.0, 0.0, 0.0, 0.0],
            [0.0, 0.4, 0.4, 0.4, 0.6],
            [0.0, 0.4, 1.0, 0.8, 0.6],
            [0.0, 0.4, 0.4, 0.4, 0.6],
        ]
    )
    boxes = [b[0].tolist() for b in boxes_from_scoremap(s, T5)]
    assert boxes == [[1, 1, 4, 3], [1, 1, 4, 3], [2, 1, 4, 3], [2, 2, 4, 3], [2, 2, 3, 3]]


def test_boxes_multimodal_published_case() -> None:
    s = torch.tensor(
        [
            [0.4, 0.0, 0.2, 0.2, 0.2],
            [0.4, 0.4, 0.0, 0.4, 0.0],
            [0.0, 0.0, 0.0, 0.4, 0.0],
            [1.0, 0.6, 0.8, 0.2, 0.2],
        ]
    )
    boxes = [b[0].tolist() for b in boxes_from_scoremap(s, T5)]
    assert boxes == [[0, 0, 4, 3], [0, 0, 2, 2], [0, 3, 3, 3], [2, 3, 3, 3], [0, 3, 1, 3]]
    # all contours (MaxBoxAccV2) at t = 0.2: the three separate blobs above 0.2*255
    multi = boxes_from_scoremap(s, np.array([0.2]), multi_contour=True)[0]
    assert len(multi) >= 2 and [0, 0, 2, 2] in multi.tolist()


def test_boxes_degenerate_and_nan() -> None:
    assert [b.tolist() for b in boxes_from_scoremap(torch.zeros(3, 3), T5)] == [[[0, 0, 0, 0]]] * 5
    with pytest.raises(CamkitError, match="NaN"):
        boxes_from_scoremap(torch.full((3, 3), float("nan")), T5)


def test_box_iou_published_cases() -> None:
    assert box_iou(np.zeros((3, 4), int), np.zeros((5, 4), int)).eq(1.0).all()  # 1-pixel boxes at the origin
    assert torch.equal(
        box_iou([[1, 1, 3, 3], [4, 4, 5, 5]], [[1, 1, 3, 3], [4, 4, 5, 5]]), torch.eye(2, dtype=torch.float64)
    )
    assert float(box_iou([[1, 2, 5, 6]], [[3, 1, 4, 5]])) == pytest.approx(8 / 27, abs=1e-9)
    with pytest.raises(CamkitError, match="x1 >= x0"):
        box_iou([[1, 1, 0, 0]], [[1, 1, 2, 2]])


def test_cam_thresholds_match_numpy_arange() -> None:
    assert np.array_equal(cam_thresholds(0.01), np.arange(0, 1, 0.01)) and len(cam_thresholds(0.01)) == 100


def test_max_box_acc_hand_computed() -> None:
    """wsolevaluation's box is (x, y, x+w, y+h): one pixel past the blob's last column and row
    (clipped at the border), and IoU counts pixels inclusively."""
    a = torch.zeros(8, 8)
    a[2:5, 2:6] = 1.0  # blob: columns 2..5, rows 2..4
    b = torch.zeros(8, 8)
    b[0:2, 0:2] = 1.0  # a blob far from its ground truth
    assert boxes_from_scoremap(a, np.array([0.5]))[0].tolist() == [[2, 2, 6, 5]]
    assert boxes_from_scoremap(b, np.array([0.5]))[0].tolist() == [[0, 0, 2, 2]]
    gt = [np.array([[2, 2, 5, 4]]), np.array([[5, 5, 7, 7]])]
    # image a: IoU = (4 x 3) / (5 x 4) = 0.6 -> a hit at 0.3 and 0.5, a miss at 0.7; image b: 0
    acc = BoxAccuracy(step=0.25, iou_thresholds=(30, 50, 70), multi_contour=True)
    acc.update(torch.stack([a, b]), gt, correct=torch.tensor([True, False]))
    r = acc.compute()
    assert [r["per_iou"][d]["max_box_acc"] for d in (30, 50, 70)] == [50.0, 50.0, 0.0]
    assert r["max_box_acc"] == pytest.approx(100 / 3)
    assert r["per_iou"][50]["top1_loc"] == 50.0
    wrong = BoxAccuracy(step=0.25)
    wrong.update(torch.stack([a, b]), gt, correct=torch.tensor([False, False]))
    assert wrong.compute()["per_iou"][50]["top1_loc"] == 0.0


def _pxap(scores: torch.Tensor, mask: torch.Tensor) -> float:
    p = PxAP()
    p.update(scores[None], mask[None])
    return p.compute()


def test_pxap_constant_map_is_the_positive_share() -> None:
    mask = torch.zeros(20, 30, dtype=torch.uint8)
    mask[:7, :11] = 1  # P = 77, N = 523
    mask[15:, :] = 255  # ignored
    n_pos, n_neg = 77, 600 - 77 - 150
    for v in (0.0, 0.5, 1.0):
        assert _pxap(torch.full((20, 30), v), mask) == pytest.approx(100 * n_pos / (n_pos + n_neg), abs=0.1)


def test_pxap_perfect_and_inverted_maps() -> None:
    mask = torch.zeros(10, 10, dtype=torch.uint8)
    mask[2:6, 3:8] = 1
    assert _pxap(mask.float(), mask) == pytest.approx(100.0)
    assert _pxap(1.0 - mask.float(), mask) < 25.0
    with pytest.raises(CamkitError, match="every mask is empty"):
        _pxap(torch.rand(4, 4), torch.zeros(4, 4, dtype=torch.uint8))


def test_pxap_agrees_with_sklearn_and_torchmetrics_on_binned_scores() -> None:
    """On scores already on the threshold grid, PxAP is the step-wise average precision."""
    from sklearn.metrics import average_precision_score

    g = torch.Generator().manual_seed(0)
    mask = (torch.rand(40, 40, generator=g) > 0.7).to(torch.uint8)
    # scores in the middle of the threshold bins: every distinct score is one bin
    scores = (torch.rand(40, 40, generator=g) * 0.6 + mask * 0.39).mul(100).floor().add(0.5).div(100).double()
    ref = 100 * average_precision_score(mask.flatten().numpy(), scores.flatten().double().numpy())
    assert _pxap(scores, mask) == pytest.approx(ref, abs=1e-6)
    tm = pytest.importorskip("torchmetrics")
    ref_tm = 100 * float(
        tm.functional.classification.binary_average_precision(scores.flatten(), mask.flatten().long())
    )
    assert _pxap(scores, mask) == pytest.approx(ref_tm, abs=1e-4)
