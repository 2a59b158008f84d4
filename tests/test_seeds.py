import pytest
import torch
from torch.utils.data import Dataset

from camkit.core.errors import CamkitError
from camkit.core.mapfile import MapSet
from camkit.metrics.iou import default_thresholds
from camkit.metrics.segmentation import confusion_matrix, scores_from_confusion
from camkit.wsss.seeds import SeedSweep, class_peak_iou, class_scores, score_seeds, seed_masks


def test_seed_masks_by_hand() -> None:
    # 1 image, 3 classes, 1x3 pixels; class 1 absent
    scores = torch.tensor([[[[0.9, 0.2, 0.5]], [[1.0, 1.0, 1.0]], [[0.1, 0.3, 0.5]]]])
    present = torch.tensor([[True, False, True]])
    got = seed_masks(scores, present, 0.25)
    # pixel 0: class 0 (0.9); pixel 1: best present 0.3 (class 2) > 0.25; pixel 2: tie 0.5/0.5 -> first, class 0
    assert got.tolist() == [[[1, 3, 1]]]
    assert seed_masks(scores, present, 0.5).tolist() == [[[1, 0, 0]]]  # 0.5 is not > 0.5: background


def test_sweep_equals_brute_force() -> None:
    g = torch.Generator().manual_seed(0)
    k, thr = 4, default_thresholds(0.05)
    scores = torch.rand(6, k, 9, 9, generator=g).round(decimals=2)  # ties with the thresholds happen
    present = torch.rand(6, k, generator=g) > 0.4
    present[0] = False  # an image with no class: all background
    gt = torch.randint(0, k + 1, (6, 9, 9), generator=g)
    gt[1, 0, :3] = 255  # ignored pixels
    sweep = SeedSweep(k, thr)
    sweep.update(scores[:3], present[:3], gt[:3])
    sweep.update(scores[3:], present[3:], gt[3:])
    conf = sweep.confusion()
    for i, t in enumerate(thr.tolist()):
        want = confusion_matrix(seed_masks(scores, present, t), gt, k + 1)
        assert torch.equal(conf[i], want), f"threshold {t}"


class _Masks(Dataset):
    def __init__(self, masks: torch.Tensor) -> None:
        self.masks = masks

    def __len__(self) -> int:
        return len(self.masks)

    def __getitem__(self, i: int) -> dict:
        return {"mask": self.masks[i]}


def _mapset(maps: torch.Tensor, present: torch.Tensor) -> MapSet:
    n, k = present.shape
    return MapSet(
        maps, present, torch.zeros(n, k), present.float(), present, [str(i) for i in range(n)], (4, 4)
    )


def test_score_seeds_finds_the_best_threshold() -> None:
    # one image, one class (id 0 -> mask value 1) on the left half; the map is 1 there, 0.4 elsewhere
    mask = torch.zeros(1, 4, 4, dtype=torch.uint8)
    mask[0, :, :2] = 1
    maps = torch.full((1, 2, 4, 4), 0.4)
    maps[0, 0, :, :2] = 1.0
    maps[0, 1] = 0.0
    ms = _mapset(maps, torch.tensor([[True, False]]))
    res = score_seeds(ms, _Masks(mask), norm="relu-max")
    assert res["peak_miou"] == pytest.approx(1.0)
    assert 0.4 <= res["peak_bg_threshold"] < 1.0
    low = score_seeds(ms, _Masks(mask), bg_threshold=0.2)
    # everything is class 1: bg IoU 0, class IoU 8/16 -> mIoU 0.25; FP share 0.5, recall 1, precision 0.5
    assert low["miou"] == pytest.approx(0.25)
    assert (low["fp"], low["fn"], low["precision"], low["recall"]) == pytest.approx((0.5, 0.0, 0.5, 1.0))
    with pytest.raises(CamkitError, match="bg_threshold=2.0: must be between 0 and 1"):
        score_seeds(ms, _Masks(mask), bg_threshold=2.0)


def test_score_seeds_matches_brute_force_on_random_maps() -> None:
    g = torch.Generator().manual_seed(1)
    maps = torch.randn(5, 3, 4, 4, generator=g)
    present = torch.rand(5, 3, generator=g) > 0.3
    masks = torch.randint(0, 4, (5, 8, 8), generator=g).to(torch.uint8)
    res = score_seeds(_mapset(maps * present[:, :, None, None], present), _Masks(masks), bg_threshold=0.3)
    scores = class_scores(maps, (8, 8), "relu-max")
    want = scores_from_confusion(confusion_matrix(seed_masks(scores, present, 0.3), masks.long(), 4))
    assert res["miou"] == pytest.approx(want["miou"])
    assert res["fp"] == pytest.approx(want["fp"]) and res["recall"] == pytest.approx(want["recall"])


def test_class_peak_iou_max_and_percentile() -> None:
    # class 0 object: left two columns; map: one hot spot of 10, the rest of the object 2, background 1
    mask = torch.zeros(1, 4, 4, dtype=torch.uint8)
    mask[0, :, :2] = 1
    m = torch.ones(1, 1, 4, 4)
    m[0, 0, :, :2] = 2.0
    m[0, 0, 0, 0] = 10.0
    ms = _mapset(m, torch.tensor([[True]]))
    by_max = class_peak_iou(ms, _Masks(mask), "max")
    # with ref = max (10) the object (2/10 = 0.2) is separated from the background (0.1) for θ in (0.1, 0.2]
    assert by_max["peak_iou"] == pytest.approx(1.0)
    assert 0.1 < by_max["peak_theta"] <= 0.2
    pas = class_peak_iou(ms, _Masks(mask), "percentile")
    assert pas["peak_iou"] == pytest.approx(1.0)
    # the 98th percentile of the 16 values sits between 2 and 10, so θ_peak is larger than with max
    assert pas["peak_theta"] > by_max["peak_theta"]
