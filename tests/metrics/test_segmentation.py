import pytest
import torch

from camkit.core.errors import CamkitError
from camkit.metrics.classification import Accuracy, confusion, topk_correct
from camkit.metrics.segmentation import SegmentationConfusion, confusion_matrix, scores_from_confusion


def test_confusion_and_scores_hand_computed() -> None:
    gt = torch.tensor([[[0, 0, 1, 1], [0, 2, 2, 255]]])
    pr = torch.tensor([[[0, 1, 1, 1], [2, 2, 0, 0]]])
    conf = confusion_matrix(pr, gt, 3)
    # rows = gt: class 0 -> (0:1, 1:1, 2:1); class 1 -> (1:2); class 2 -> (2:1, 0:1); the 255 pixel is skipped
    assert conf.tolist() == [[1, 1, 1], [0, 2, 0], [1, 0, 1]]
    s = scores_from_confusion(conf)
    iou = s["per_class"]["iou"]
    assert iou == pytest.approx([1 / 4, 2 / 3, 1 / 3])
    assert s["miou"] == pytest.approx((1 / 4 + 2 / 3 + 1 / 3) / 3)
    # foreground classes only: class 1 fp=1 fn=0 union=3; class 2 fp=1 fn=1 union=3
    assert s["fp"] == pytest.approx((1 / 3 + 1 / 3) / 2)
    assert s["fn"] == pytest.approx((0 + 1 / 3) / 2)
    assert s["precision"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert s["recall"] == pytest.approx((1.0 + 1 / 2) / 2)
    for c in range(3):
        assert iou[c] + s["per_class"]["fp"][c] + s["per_class"]["fn"][c] == pytest.approx(1.0)


def test_absent_classes_give_no_nan_and_errors() -> None:
    gt = torch.zeros(1, 2, 2, dtype=torch.long)
    s = scores_from_confusion(confusion_matrix(gt, gt, 4))
    assert s["miou"] == 1.0 and s["fp"] == 0.0 and s["per_class"]["present"] == [True, False, False, False]
    with pytest.raises(CamkitError, match="mask class 7 out of range"):
        confusion_matrix(gt, torch.full((1, 2, 2), 7), 4)


def test_streaming_matches_torchmetrics() -> None:
    tm = pytest.importorskip("torchmetrics")
    g = torch.Generator().manual_seed(0)
    acc = SegmentationConfusion(5)
    ref = tm.classification.MulticlassJaccardIndex(num_classes=5, average="macro")
    refcm = tm.classification.MulticlassConfusionMatrix(num_classes=5)
    for _ in range(3):
        gt = torch.randint(0, 5, (2, 9, 7), generator=g)
        pr = torch.where(
            torch.rand(2, 9, 7, generator=g) < 0.6, gt, torch.randint(0, 5, (2, 9, 7), generator=g)
        )
        acc.update(pr, gt)
        ref.update(pr, gt)
        refcm.update(pr, gt)
    assert torch.equal(acc.conf, refcm.compute())
    assert acc.compute()["miou"] == pytest.approx(float(ref.compute()), abs=1e-6)


def test_classification_topk_and_confusion_match_torchmetrics() -> None:
    tm = pytest.importorskip("torchmetrics")
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(50, 6, generator=g)
    labels = torch.randint(0, 6, (50,), generator=g)
    a = Accuracy((1, 3, 5))
    a.update(logits[:20], labels[:20])
    a.update(logits[20:], labels[20:])
    r = a.compute()
    for k in (1, 3, 5):
        ref = tm.functional.classification.multiclass_accuracy(
            logits, labels, num_classes=6, top_k=k, average="micro"
        )
        assert r[f"top{k}"] == pytest.approx(float(ref))
    cm = confusion(logits, labels, 6)
    assert torch.equal(
        cm, tm.functional.classification.multiclass_confusion_matrix(logits, labels, num_classes=6)
    )
    assert topk_correct(torch.tensor([[0.1, 0.9]]), torch.tensor([0]), (1, 2)) == {1: 0, 2: 1}
