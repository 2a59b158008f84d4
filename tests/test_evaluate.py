"""score_maps on hand-made map sets: one pass gives the sweep, the bg/fg scores and WSOL metrics."""

import numpy as np
import pytest
import torch

from camkit.core.errors import CamkitError
from camkit.core.mapfile import MapSet
from camkit.data.base import ArrayDataset
from camkit.metrics.iou import iou
from camkit.metrics.segmentation import confusion_matrix, scores_from_confusion
from camkit.pipeline.evaluate import normalized_maps, score_maps


def _setup(n: int = 6, size: int = 16) -> tuple[MapSet, ArrayDataset]:
    g = torch.Generator().manual_seed(0)
    raw = torch.rand(n, 4, 4, generator=g)
    masks = normalized_maps(raw, (size, size)) > 0.6
    masks[0] = False  # an image with an empty ground truth
    images = (torch.rand(n, size, size, generator=g) * 255).to(torch.uint8).numpy()
    ds = ArrayDataset(images, np.zeros(n, dtype=np.int64), masks.numpy(), size)
    zeros = torch.zeros(n, dtype=torch.long)
    ms = MapSet(raw, zeros, torch.ones(n), zeros, zeros, [str(i) for i in range(n)], (size, size))
    return ms, ds


def test_score_maps_matches_direct_computation() -> None:
    ms, ds = _setup()
    r = score_maps(ms, ds, threshold=0.5, wsol=True)
    maps = normalized_maps(ms.maps, (16, 16))
    gt = torch.stack([ds[i]["mask"] for i in range(len(ds))]).bool()
    per = iou(maps >= 0.5, gt)
    assert r["miou"] == pytest.approx(float(per.mean()))
    assert r["per_image_iou"] == pytest.approx(per.tolist(), abs=1e-6)
    direct = scores_from_confusion(confusion_matrix((maps >= 0.5).long(), gt.long(), 2))
    for k in ("miou", "fp", "fn", "precision", "recall"):
        assert r["segmentation"][k] == pytest.approx(direct[k])
    assert r["peak_iou"] >= r["miou"]
    assert 0 <= r["pxap"] <= 100 and 0 <= r["max_box_acc"] <= 100
    # the empty-ground-truth image is left out of the box metrics, not scored as a miss
    assert r["images"] == 6


def test_score_maps_errors() -> None:
    ms, ds = _setup()
    with pytest.raises(CamkitError, match="threshold=1.5"):
        score_maps(ms, ds, threshold=1.5)
    short = MapSet(
        ms.maps[:3], ms.targets[:3], ms.scores[:3], ms.labels[:3], ms.preds[:3], ms.ids[:3], ms.image_size
    )
    with pytest.raises(CamkitError, match="3 maps but the split has 6 images"):
        score_maps(short, ds)


def test_score_maps_result_fields_and_dict_keys() -> None:
    ms, ds = _setup()
    base = ["threshold", "miou", "peak_iou", "peak_threshold", "images", "thresholds", "miou_curve",
            "per_image_iou", "image_index", "segmentation"]  # fmt: skip
    plain = score_maps(ms, ds)
    assert list(plain.to_dict()) == base and plain.wsol is None
    r = score_maps(ms, ds, wsol=True)
    assert r.wsol is not None and r.wsol.pxap == r["pxap"] and r.miou == r["miou"]
    assert list(r.to_dict()) == base + [
        "pxap", "pr_curve", "max_box_acc", "max_box_acc_threshold", "gt_known_loc", "top1_loc",
        "max_box_acc_v2", "max_box_acc_v2_per_iou",
    ]  # fmt: skip
    r["accuracy"] = 1.0  # the CLI's extra keys come last
    assert list(r.to_dict())[-1] == "accuracy" and r["accuracy"] == 1.0
