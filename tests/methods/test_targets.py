"""Targets beyond a class id, and Hugging Face models: checked against pytorch-grad-cam's own
targets (SemanticSegmentationTarget, FasterRCNNBoxScoreTarget, SimilarityToConceptTarget) on
the same random-weight models, layers and inputs, after its normalization; regression and
class targets against closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from camkit.methods import get_method
from camkit.methods.targets import (
    BoxScoreTarget,
    ClassTarget,
    EmbeddingSimilarityTarget,
    RegressionTarget,
    SegmentationRegionTarget,
)

pgc = pytest.importorskip("pytorch_grad_cam")
from pytorch_grad_cam.utils.model_targets import (  # noqa: E402
    FasterRCNNBoxScoreTarget,
    SemanticSegmentationTarget,
)
from test_peers import pgc_normalize  # noqa: E402


class SimilarityToConceptTarget:
    """pytorch-grad-cam's tutorial target (not in its package): cosine to a concept embedding."""

    def __init__(self, features: torch.Tensor) -> None:
        self.features = features

    def __call__(self, model_output: torch.Tensor) -> torch.Tensor:
        return torch.nn.CosineSimilarity(dim=0)(model_output, self.features)


class Picks(nn.Module):
    """Returns one part of a model's output as a tensor (what pytorch-grad-cam needs)."""

    def __init__(self, model: nn.Module, pick) -> None:
        super().__init__()
        self.model, self.pick = model, pick

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pick(self.model(x))


def test_segmentation_region_target_matches_pytorch_grad_cam() -> None:
    torch.manual_seed(0)
    seg = torchvision.models.segmentation.lraspp_mobilenet_v3_large(
        weights=None, weights_backbone=None, num_classes=3
    ).eval()
    x = torch.rand(2, 3, 64, 64)
    mask = torch.zeros(64, 64)
    mask[10:30, 20:50] = 1
    m = get_method("grad-cam")(seg)  # auto: the backbone's last block, not the head
    ours = m(x, SegmentationRegionTarget(1, mask))
    layer = m.layers[0][1]
    assert m.layers[0][0].startswith("backbone.")
    peer = pgc.GradCAM(model=Picks(seg, lambda o: o["out"]), target_layers=[layer])
    theirs = peer(input_tensor=x, targets=[SemanticSegmentationTarget(1, mask.numpy())] * 2)
    np.testing.assert_allclose(pgc_normalize(ours.low[0], (64, 64)), theirs, atol=1e-5)
    # the score is the masked logit sum
    with torch.no_grad():
        expect = (seg(x)["out"][:, 1] * mask).sum((1, 2))
    torch.testing.assert_close(ours.score, expect, rtol=1e-5, atol=1e-4)


def _detector(name: str) -> nn.Module:
    torch.manual_seed(0)
    thresh = {"box_score_thresh": 0.0} if "rcnn" in name else {"score_thresh": 0.0}
    return torchvision.models.get_model(
        name, weights=None, weights_backbone=None, num_classes=4, min_size=128, max_size=128, **thresh
    ).eval()


def _box_target_check(det: nn.Module, layer: str) -> None:
    x = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        out = det(x)[0]
    labels, boxes = out["labels"][:2].tolist(), out["boxes"][:2]
    ours = get_method("grad-cam")(det, layer)(x, BoxScoreTarget(labels, boxes))
    assert float(ours.score[0]) > 1.0  # a box matched itself: IoU 1 + its score
    module = dict(det.named_modules())[layer]
    peer = pgc.GradCAM(model=det, target_layers=[module])
    theirs = peer(input_tensor=x, targets=[FasterRCNNBoxScoreTarget(labels, boxes.numpy())])
    np.testing.assert_allclose(pgc_normalize(ours.low[0], (128, 128)), theirs, atol=1e-5)


def test_box_score_target_on_faster_rcnn_matches_pytorch_grad_cam() -> None:
    _box_target_check(_detector("fasterrcnn_mobilenet_v3_large_320_fpn"), "backbone.body.13")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["retinanet_resnet50_fpn", "fcos_resnet50_fpn"])
def test_box_score_target_on_one_stage_detectors(name: str) -> None:
    _box_target_check(_detector(name), "backbone.body.layer3")


def test_class_and_regression_targets_against_closed_forms() -> None:
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=5).eval()
    x = torch.rand(2, 3, 64, 64)
    ref = get_method("hirescam")(model, "layer3")(x, 2)
    by_class = get_method("hirescam")(model, "layer3")(x, ClassTarget(2))
    torch.testing.assert_close(by_class.low[0], ref.low[0])
    torch.testing.assert_close(by_class.score, ref.logits[:, 2])  # the raw score, not softmax
    # HiResCAM is linear in the score: explaining -y gives minus the map of y
    down = get_method("hirescam")(model, "layer3")(x, RegressionTarget(2, sign=-1.0))
    torch.testing.assert_close(down.low[0], -ref.low[0])
    # one target per image (pytorch-grad-cam style lists)
    per = get_method("hirescam")(model, "layer3")(x, [ClassTarget(1), ClassTarget(4)])
    torch.testing.assert_close(per.low[0], get_method("hirescam")(model, "layer3")(x, [1, 4]).low[0])


def test_hugging_face_vit_auto_layer_matches_pytorch_grad_cam() -> None:
    tf = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = tf.ViTConfig(image_size=32, patch_size=4, hidden_size=32, num_hidden_layers=2,
                       num_attention_heads=2, intermediate_size=64, num_labels=10)  # fmt: skip
    model = tf.ViTForImageClassification(cfg).eval()
    x = torch.rand(2, 3, 32, 32)
    m = get_method("grad-cam")(model)  # ImageClassifierOutput: .logits read as the logits
    ours = m(x, [3, 7])
    assert m.layers[0][0].endswith(".1.layernorm_before")  # the last block's, before attention

    def reshape(t: torch.Tensor) -> torch.Tensor:
        return t[:, 1:].reshape(t.size(0), 8, 8, t.size(2)).permute(0, 3, 1, 2)

    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    peer = pgc.GradCAM(
        model=Picks(model, lambda o: o.logits), target_layers=[m.layers[0][1]], reshape_transform=reshape
    )
    theirs = peer(input_tensor=x, targets=[ClassifierOutputTarget(3), ClassifierOutputTarget(7)])
    np.testing.assert_allclose(pgc_normalize(ours.low[0], (32, 32)), theirs, atol=1e-5)


def test_clip_vision_tower_embedding_similarity_matches_pytorch_grad_cam() -> None:
    tf = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = tf.CLIPVisionConfig(image_size=32, patch_size=4, hidden_size=32, num_hidden_layers=2,
                              num_attention_heads=2, intermediate_size=64, projection_dim=16)  # fmt: skip
    model = tf.CLIPVisionModelWithProjection(cfg).eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        concept = model(torch.rand(1, 3, 32, 32)).image_embeds[0]
    m = get_method("grad-cam")(model)
    ours = m(x, EmbeddingSimilarityTarget(concept))
    assert m.layers[0][0].endswith("encoder.layers.1.layer_norm1")
    with torch.no_grad():
        expect = torch.cosine_similarity(model(x).image_embeds, concept[None], dim=1)
    torch.testing.assert_close(ours.score, expect)

    def reshape(t: torch.Tensor) -> torch.Tensor:
        return t[:, 1:].reshape(t.size(0), 8, 8, t.size(2)).permute(0, 3, 1, 2)

    peer = pgc.GradCAM(
        model=Picks(model, lambda o: o.image_embeds),
        target_layers=[m.layers[0][1]],
        reshape_transform=reshape,
    )
    theirs = peer(input_tensor=x, targets=[SimilarityToConceptTarget(concept)] * 2)
    np.testing.assert_allclose(pgc_normalize(ours.low[0], (32, 32)), theirs, atol=1e-5)
