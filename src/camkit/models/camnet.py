"""CAMNet: backbone -> pooling head -> linear classifier.

The three parts follow one contract (after timm's ``forward_features`` / ``forward_head``):

* ``forward_features(x)``: (B, 3, H, W) images in [0, 1] -> (B, C, h, w) feature maps.
  Input normalization lives inside the model, so checkpoints carry it.
* ``head``: (B, C, h, w) -> (B, C) pooled vector (GAP by default).
* ``classifier``: (B, C) -> (B, K) logits.

``forward`` returns all three as a :class:`CAMNetOutput`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import torch
from torch import nn

from camkit.core.options import option
from camkit.models.backbones import backbone_names, build_backbone, get_spec
from camkit.models.heads import build_head


@dataclass
class ModelConfig:
    """Everything needed to rebuild a CAMNet (stored in every checkpoint)."""

    backbone: str = option("resnet18", help=f"backbone family: {', '.join(backbone_names())}")
    layer: str | None = option(
        None,
        default_text="the family's default cut, layer2 for ResNets",
        help="cut the backbone after this layer",
    )
    num_classes: int = option(10, default_text="from the dataset", help="number of classes of the classifier")
    head: str = option("gap", choices=("gap", "tap"), help="pooling head: gap or tap (Bae et al.)")
    pretrained: bool = option(False, negatable=True, help="start from ImageNet weights")
    weights: str | None = option(None, help="a local backbone state-dict file (.pth or .safetensors)")
    freeze_backbone: bool = option(False, help="train only the classifier")
    output_stride: int | None = option(
        None,
        help="ResNets: stop downsampling at this stride (8 or 16; IRN uses 16); efficientnet_lite0: dilate to it",
    )
    tap_theta: float = option(
        0.05, help="tap: θ_tap, the threshold as a share of each channel's max (0 on ReLU features = GAP)"
    )
    fc2: bool = option(False, cli=False, help="ReCAM: a second classifier (FC2) on the CAM-masked features")

    def __post_init__(self) -> None:
        if self.layer and self.layer.startswith("backbone."):  # as extract's layer names it
            self.layer = self.layer.removeprefix("backbone.")

    def arch(self) -> dict[str, object]:
        """The fields that define the parameter shapes (what a checkpoint must match)."""
        spec = get_spec(self.backbone)
        return {
            "backbone": self.backbone,
            "layer": self.layer or spec.default_layer,
            "num_classes": self.num_classes,
            "head": self.head,
            "fc2": self.fc2,
            "output_stride": self.output_stride,
        }


class CAMNetOutput(NamedTuple):
    logits: torch.Tensor  # (B, K)
    features: torch.Tensor  # (B, C, h, w)
    pooled: torch.Tensor  # (B, C)


class CAMNet(nn.Module):
    """Backbone truncated at ``layer`` + pooling head + linear classifier."""

    mean: torch.Tensor  # (1, 3, 1, 1) buffer
    std: torch.Tensor  # (1, 3, 1, 1) buffer

    def __init__(self, config: ModelConfig | None = None, **kwargs: Any) -> None:
        super().__init__()
        config = config or ModelConfig(**kwargs)
        self.config = config
        spec = get_spec(config.backbone)
        self.backbone = build_backbone(
            config.backbone, config.layer, config.pretrained, config.weights, config.output_stride
        )
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(spec.std).view(1, 3, 1, 1), persistent=False)
        with torch.no_grad():
            was = self.backbone.training
            self.backbone.eval()
            self.num_features = int(self.backbone(torch.zeros(1, 3, 64, 64)).shape[1])
            self.backbone.train(was)
        self.head = build_head(config.head, config.tap_theta)
        self.classifier = nn.Linear(self.num_features, config.num_classes)
        # ReCAM's FC2 (a 1x1 conv without bias in the authors' code): trained on masked features
        self.classifier2 = (
            nn.Linear(self.num_features, config.num_classes, bias=False) if config.fc2 else None
        )
        if config.freeze_backbone:
            self.backbone.requires_grad_(False)

    def train(self, mode: bool = True) -> CAMNet:
        super().train(mode)
        if self.config.freeze_backbone:  # a frozen backbone keeps its BatchNorm statistics too
            self.backbone.eval()
        return self

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, C, h, w)."""
        return self.backbone((x - self.mean) / self.std)

    def forward_head(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, h, w) -> (logits (B, K), pooled (B, C))."""
        pooled = self.head(f)
        return self.classifier(pooled), pooled

    def forward(self, x: torch.Tensor) -> CAMNetOutput:
        f = self.forward_features(x)
        logits, pooled = self.forward_head(f)
        return CAMNetOutput(logits, f, pooled)

    def describe(self) -> dict[str, object]:
        return {"config": asdict(self.config), "num_features": self.num_features}
