import math

import torch

from camkit.methods.cam import all_class_maps, class_activation_map
from camkit.models import CAMNet, ModelConfig

F = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [0.0, -1.0]]]])  # (1, 2, 2, 2)
W = torch.tensor([[2.0, -1.0], [0.5, 0.5]])  # (K=2, C=2)


def test_cam_matches_hand_computation() -> None:
    # class 0: 2*f0 - f1
    expected = torch.tensor([[[2.0, 3.0], [6.0, 9.0]]])
    torch.testing.assert_close(class_activation_map(F, W, torch.tensor([0])), expected)
    # class 1: (f0 + f1) / 2
    expected1 = torch.tensor([[[0.5, 1.5], [1.5, 1.5]]])
    torch.testing.assert_close(class_activation_map(F, W, torch.tensor([1])), expected1)


def test_softmax_cam_matches_hand_computation() -> None:
    a = math.exp(2.0) / (math.exp(2.0) + math.exp(-1.0))
    b = 1.0 - a
    expected = torch.tensor([[[a * 1 + b * 0, a * 2 + b * 1], [a * 3 + b * 0, a * 4 - b * 1]]])
    got = class_activation_map(F, W, torch.tensor([0]), softmax_weights=True)
    torch.testing.assert_close(got, expected)
    # equal weights -> softmax gives 1/2 each
    torch.testing.assert_close(
        class_activation_map(F, W, torch.tensor([1]), softmax_weights=True),
        torch.tensor([[[0.5, 1.5], [1.5, 1.5]]]),
    )


def test_batched_targets_and_all_classes_agree() -> None:
    f = torch.randn(3, 4, 5, 5)
    w = torch.randn(6, 4)
    cls = torch.tensor([5, 0, 2])
    allm = all_class_maps(f, w)
    torch.testing.assert_close(class_activation_map(f, w, cls), allm[torch.arange(3), cls])


def test_cam_mean_plus_bias_is_the_logit() -> None:
    """Zhou et al.: with GAP, the spatial mean of M_c plus b_c is exactly logit c."""
    torch.manual_seed(0)
    model = CAMNet(ModelConfig(num_classes=4)).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 64, 64))
        maps = all_class_maps(out.features, model.classifier.weight)
    torch.testing.assert_close(
        maps.mean(dim=(2, 3)) + model.classifier.bias, out.logits, rtol=1e-5, atol=1e-5
    )


def test_cam_is_differentiable() -> None:
    f = torch.randn(2, 3, 4, 4, requires_grad=True)
    w = torch.randn(5, 3, requires_grad=True)
    class_activation_map(f, w, torch.tensor([1, 4]), softmax_weights=True).sum().backward()
    assert (
        f.grad is not None and w.grad is not None and w.grad[1].abs().sum() > 0 and w.grad[0].abs().sum() == 0
    )
