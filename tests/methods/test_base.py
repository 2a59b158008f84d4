"""Method behaviour shared by all: hooks, targets, model state, closed forms, bad input."""

import gc
import math

import pytest
import torch
from torch import nn

from camkit.core.errors import CamkitError
from camkit.core.registry import Registry
from camkit.methods import CAM, METHODS, GradCAM, LayerCAM, expand_targets, get_method
from camkit.models import CAMNet, ModelConfig


class TinyGAP(nn.Module):
    """1x1 conv features -> GAP -> linear: every map has a closed form."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Conv2d(2, 3, 1, bias=False)
        self.fc = nn.Linear(3, 2)
        with torch.no_grad():
            self.features.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]).view(3, 2, 1, 1))
            self.fc.weight.copy_(torch.tensor([[2.0, -1.0, 0.5], [-1.0, 1.0, 0.0]]))
            self.fc.bias.copy_(torch.tensor([0.1, -0.2]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean(dim=(2, 3)))


X = torch.tensor([[[[1.0, 2.0], [0.0, 4.0]], [[3.0, 0.0], [1.0, 2.0]]]])  # (1, 2, 2, 2)
A = torch.stack([X[0, 0], X[0, 1], X[0, 0] + X[0, 1]])  # the 3 feature maps
W0 = torch.tensor([2.0, -1.0, 0.5])


def test_closed_forms_on_a_tiny_linear_model() -> None:
    model = TinyGAP()
    cam = get_method("cam")(model, "features")(X, 0).low[0][0]
    torch.testing.assert_close(cam, torch.einsum("k,khw->hw", W0, A))
    nwc = get_method("nwc-cam")(model, "features")(X, 0).low[0][0]
    torch.testing.assert_close(nwc, torch.einsum("k,khw->hw", W0.clamp(min=0), A))
    soft = get_method("softmax-cam")(model, "features")(X, 0).low[0][0]
    e = [math.exp(v) for v in W0.tolist()]
    torch.testing.assert_close(soft, torch.einsum("k,khw->hw", torch.tensor(e) / sum(e), A))
    # Grad-CAM: d logit / d A_k(i, j) = w_k / hw, so alpha_k = w_k / 4 and M = ReLU(CAM / 4)
    grad = get_method("grad-cam")(model, "features")(X, 0).low[0][0]
    torch.testing.assert_close(grad, torch.relu(cam / 4))
    # HiResCAM equals CAM / hw for a GAP-linear head, signed
    hires = get_method("hirescam")(model, "features")(X, 0).low[0][0]
    torch.testing.assert_close(hires, cam / 4)
    # the CAM's spatial mean plus the bias is the logit
    torch.testing.assert_close(cam.mean() + model.fc.bias[0], model(X)[0, 0])


def test_targets_forms() -> None:
    logits = torch.tensor([[0.1, 0.9, 0.5], [0.7, 0.2, 0.3]])
    s, c = expand_targets(None, logits)
    assert s.tolist() == [0, 1] and c.tolist() == [1, 0]
    s, c = expand_targets("top2", logits)
    assert s.tolist() == [0, 0, 1, 1] and c.tolist() == [1, 2, 0, 2]
    s, c = expand_targets([2, 1], logits)
    assert c.tolist() == [2, 1]
    s, c = expand_targets(torch.tensor([[1, 0, 1], [0, 1, 0]]), logits)
    assert s.tolist() == [0, 0, 1] and c.tolist() == [0, 2, 1]
    s, c = expand_targets([[0], [1, 2]], logits)
    assert s.tolist() == [0, 1, 1] and c.tolist() == [0, 1, 2]
    with pytest.raises(CamkitError, match=r"targets=3: class id out of range 0..2"):
        expand_targets(3, logits)
    with pytest.raises(CamkitError, match="one per image"):
        expand_targets([0, 1, 2], logits)


def test_several_targets_per_sample_match_single_target_runs() -> None:
    torch.manual_seed(0)
    model = CAMNet(ModelConfig(layer="layer1", num_classes=5)).eval()
    x = torch.rand(2, 3, 32, 32)
    r = GradCAM(model)(x, "top3")
    for n in range(6):
        single = GradCAM(model)(x[r.sample[n] : r.sample[n] + 1], int(r.target[n]))
        torch.testing.assert_close(r.low[0][n], single.low[0][0], atol=1e-6, rtol=1e-5)


def test_model_state_is_left_alone() -> None:
    model = CAMNet(ModelConfig(layer="layer1", num_classes=4, freeze_backbone=True))
    model.train()
    flags = [p.requires_grad for p in model.parameters()]
    modes = [m.training for m in model.modules()]
    x = torch.rand(2, 3, 32, 32)
    for name in ("cam", "grad-cam", "layercam", "score-cam", "ablation-cam"):
        get_method(name)(model, "backbone.layer1", batch_size=64)(x)
        assert [p.requires_grad for p in model.parameters()] == flags, name
        assert [m.training for m in model.modules()] == modes, name
        assert all(p.grad is None for p in model.parameters()), name


def test_hooks_are_removed_even_on_error_and_two_extractors_coexist() -> None:
    model = CAMNet(ModelConfig(layer="layer1", num_classes=4)).eval()
    layer = model.backbone.layer1
    x = torch.rand(1, 3, 32, 32)
    with CAM(model) as a, GradCAM(model, "backbone.layer1") as b:
        assert len(model.backbone._forward_hooks) == 1 and len(layer._forward_hooks) == 1
        ra, rb = a(x, 0), b(x, 0)
        assert ra.maps.shape == rb.maps.shape == (1, 32, 32)
    assert not model.backbone._forward_hooks and not layer._forward_hooks
    with pytest.raises(CamkitError), GradCAM(model, "backbone.layer1") as m:
        m(x, 9)  # class out of range
    assert not layer._forward_hooks
    GradCAM(model, "backbone.layer1")(x)  # a bare call installs and removes its hooks
    assert not layer._forward_hooks


def test_activation_methods_work_under_no_grad_and_gradient_ones_too() -> None:
    model = CAMNet(ModelConfig(layer="layer1", num_classes=4)).eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        a = CAM(model)(x)
        g = GradCAM(model)(x)
    assert not a.maps.requires_grad and g.maps.abs().sum() > 0


def test_differentiable_maps_when_asked() -> None:
    model = CAMNet(ModelConfig(layer="layer1", num_classes=4)).eval()
    x = torch.rand(2, 3, 32, 32)
    r = CAM(model)(x, differentiable=True)
    r.maps.sum().backward()
    assert model.classifier.weight.grad is not None and model.classifier.weight.grad.abs().sum() > 0
    model.zero_grad()
    g = GradCAM(model)(x, differentiable=True)
    assert g.maps.requires_grad
    g.maps.sum().backward()  # second-order: through the gradients themselves
    assert model.classifier.weight.grad is not None
    assert not CAM(model)(x).maps.requires_grad


def test_no_memory_growth_in_a_long_loop() -> None:
    """10,000 calls: no hooks pile up, no tensors are kept alive between calls."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)
    ).eval()
    x = torch.rand(2, 3, 8, 8)
    method = GradCAM(model, "1")

    def live_tensors() -> int:
        gc.collect()
        return sum(1 for o in gc.get_objects() if torch.is_tensor(o))

    with method:
        for _ in range(100):
            method(x)
        base = live_tensors()
        for _ in range(10_000):
            method(x)
        assert live_tensors() <= base + 2
    assert not model[1]._forward_hooks


def test_bad_layers() -> None:
    model = CAMNet(ModelConfig(layer="layer1", num_classes=4)).eval()
    with pytest.raises(
        CamkitError,
        match=r"layers=backbone\.layr1: not a layer of the model; close matches: backbone\.layer1",
    ):
        GradCAM(model, "backbone.layr1")
    # a layer that exists but does not run in forward
    model.extra = nn.Conv2d(3, 3, 1)
    with pytest.raises(CamkitError, match=r"layers=extra: this layer did not run"):
        GradCAM(model, "extra")(torch.rand(1, 3, 32, 32))

    class TwoHeads(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Conv2d(3, 4, 1)
            self.b = nn.Conv2d(3, 4, 1)
            self.fc = nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.b(x)  # computed, but the logits do not depend on it
            return self.fc(self.a(x).mean(dim=(2, 3)))

    with pytest.raises(CamkitError, match=r"layers=b: the output does not depend on this layer"):
        GradCAM(TwoHeads(), "b")(torch.rand(1, 3, 4, 4))


def test_layercam_fusion_weights_and_tanh() -> None:
    model = CAMNet(ModelConfig(layer="layer2", num_classes=4)).eval()
    x = torch.rand(1, 3, 32, 32)
    r = LayerCAM(model, ["backbone.layer1", "backbone.layer2"], layer_weights=[0.7, 0.3], layer_norm="tanh")(
        x, 0
    )
    from camkit.core.ops import tanh_max, upsample

    expect = 0.7 * upsample(tanh_max(r.low[0]), 32) + 0.3 * upsample(tanh_max(r.low[1]), 32)
    torch.testing.assert_close(r.maps, expect)
    with pytest.raises(CamkitError, match="2 weights for 1 layers"):
        LayerCAM(model, ["backbone.layer1"], layer_weights=[0.5, 0.5])


def test_registry_refuses_duplicates_and_names_close_matches() -> None:
    reg = Registry("method", option="method")
    reg.register("x")(type("A", (), {}))
    with pytest.raises(ValueError, match="already registered"):
        reg.register("x")(type("B", (), {}))
    with pytest.raises(CamkitError, match="gradcam: unknown method; choose one of grad-cam"):
        get_method("gradcam")
    assert {
        "cam",
        "softmax-cam",
        "nwc-cam",
        "grad-cam",
        "grad-cam++",
        "xgrad-cam",
        "hirescam",
        "layercam",
        "score-cam",
        "ablation-cam",
        "eigen-cam",
    } <= set(METHODS.names())


def test_ablation_cam_shared_prefix_equals_full_forwards() -> None:
    """The one-prefix shortcut gives the same weights as ablating in full forwards,
    also inside a residual block whose skip connection crosses the target layer."""
    torch.manual_seed(0)
    model = CAMNet(ModelConfig(layer="layer2", num_classes=5)).eval()
    x = torch.rand(2, 3, 32, 32)
    for layer in ("backbone.layer2", "backbone.layer2.0.conv1"):
        fast = get_method("ablation-cam")(model, layer, batch_size=16)(x, [1, 3])
        module = dict(model.named_modules())[layer]
        with torch.no_grad():
            acts = {}
            h = module.register_forward_hook(lambda m, i, o, acts=acts: acts.__setitem__("a", o))
            logits = model(x).logits
            h.remove()
            a = acts["a"]
            for n, cls in enumerate((1, 3)):
                drops = []
                for k in range(a.shape[1]):

                    def zero(m, i, o, k=k):
                        o = o.clone()
                        o[:, k] = 0
                        return o

                    h = module.register_forward_hook(zero)
                    drops.append(model(x[n : n + 1]).logits[0, cls])
                    h.remove()
                w = (logits[n, cls] - torch.stack(drops)) / logits[n, cls]
                expect = torch.relu(torch.einsum("k,khw->hw", w, a[n]))
                torch.testing.assert_close(fast.low[0][n], expect, atol=1e-5, rtol=1e-4)


def test_docs_method_table_is_in_sync_with_the_registry() -> None:
    from pathlib import Path

    from camkit.methods.registry import method_table

    doc = (Path(__file__).parents[2] / "docs" / "methods.md").read_text()
    assert method_table() in doc, "regenerate the table in docs/methods.md with `camkit methods`"


def test_score_cam_dead_channels_share_one_forward_exactly() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 6, 3, padding=1)
    with torch.no_grad():
        conv.bias[:3] = -100.0  # three dead channels after the ReLU
    model = nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 4)).eval()
    x = torch.rand(1, 3, 8, 8)
    calls = []
    h = model.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    r = get_method("score-cam")(model, "1", batch_size=16)(x, 2)
    h.remove()
    with torch.no_grad():
        a = torch.relu(conv(x))[0]
        lo, hi = a.flatten(1).amin(1), a.flatten(1).amax(1)
        live = hi > lo
        assert 1 <= int(live.sum()) <= 3
        # the forward, one shared zero-mask forward, then the live channels in one batch
        assert calls == [1, 1, int(live.sum())]
        masks = (a - lo[:, None, None]) / (hi - lo + 1e-8)[:, None, None]
        s = model(x * masks[:, None]).select(1, 2)
        expect = torch.relu(torch.einsum("k,khw->hw", torch.softmax(s, 0), a))
    torch.testing.assert_close(r.low[0][0], expect, atol=1e-5, rtol=1e-4)


def test_compute_is_the_one_abstract_hook() -> None:
    from camkit.methods.base import CAMMethod

    class NoCompute(CAMMethod):
        pass

    with pytest.raises(TypeError, match="compute"):
        NoCompute(TinyGAP(), "features")  # type: ignore[abstract]

    class Mean(CAMMethod):
        def compute(self, x, acts, logits, sample, target, create_graph):  # type: ignore[no-untyped-def]
            return [a[sample].mean(1) for a in acts]  # (N, h, w) per layer

    r = Mean(TinyGAP(), "features")(X, 0)
    torch.testing.assert_close(r.low[0][0], A.mean(0))
    assert r.maps.shape == (1, 2, 2)
