"""Backbones, pooling heads and the CAMNet classifier."""

from camkit.models.backbones import BACKBONES, backbone_names, build_backbone, layer_names
from camkit.models.camnet import CAMNet, CAMNetOutput, ModelConfig
from camkit.models.heads import GAP, HEADS, build_head

__all__ = [
    "BACKBONES",
    "GAP",
    "HEADS",
    "CAMNet",
    "CAMNetOutput",
    "ModelConfig",
    "backbone_names",
    "build_backbone",
    "build_head",
    "layer_names",
]
