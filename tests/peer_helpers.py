"""Shared by the peer cross-checks of the methods: one small CNN, its input, and each peer's
own post-processing, so our raw maps can be compared with the peer's after the same steps."""

from __future__ import annotations

import numpy as np
import torch
import torchvision

CLASSES = [3, 7]
SIZE = 96


def resnet_and_input(seed: int = 0, batch: int = 2) -> tuple[torch.nn.Module, torch.Tensor]:
    """A random ResNet-18 (10 classes) in eval mode with trained-looking BatchNorm statistics,
    and a (batch, 3, 96, 96) input; layer3 gives a 6×6 grid."""
    torch.manual_seed(seed)
    model = torchvision.models.resnet18(weights=None, num_classes=10).eval()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.1, 0.1)
    return model, torch.rand(batch, 3, SIZE, SIZE)


def pgc_normalize(low: torch.Tensor, size: tuple[int, int] = (SIZE, SIZE)) -> np.ndarray:
    """pytorch-grad-cam's post-processing of one layer: ReLU, scale + resize, then scale again."""
    from pytorch_grad_cam.utils.image import scale_cam_image

    cam = np.maximum(low.detach().numpy(), 0)
    return scale_cam_image(scale_cam_image(cam, size)[:, None].mean(axis=1))


def tc_normalize(low: torch.Tensor) -> torch.Tensor:
    """torchcam's: ReLU, then min-max per map with eps 1e-8 at feature resolution."""
    c = torch.relu(low.detach()).clone()
    c -= c.flatten(1).amin(1)[:, None, None]
    return c / (c.flatten(1).amax(1)[:, None, None] + 1e-8)


def pgc_targets(classes: list[int] = CLASSES) -> list:
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    return [ClassifierOutputTarget(c) for c in classes]
