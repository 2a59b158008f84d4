"""Any model: token and NHWC layouts, the automatic layer, and parity on a ViT and a Swin.

Parity: pytorch-grad-cam with its ``reshape_transform`` on the same tiny random-weight timm
models, layer, inputs and classes; torchcam (which reads (B, C, h, w) only) through a tap
module that exposes the same grid; compared after each peer's own normalization (the helpers
of tests/methods/test_peers.py).
"""

from __future__ import annotations

import gc
import os
import time

import numpy as np
import pytest
import torch
from torch import nn

from camkit.core.errors import CamkitError, OptionError
from camkit.methods import get_method
from camkit.methods.layouts import resolve_layout
from camkit.methods.targets import ClassTarget

timm = pytest.importorskip("timm")
pgc = pytest.importorskip("pytorch_grad_cam")
torchcam = pytest.importorskip("torchcam")
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402
from test_peers import pgc_normalize, tc_normalize  # noqa: E402

CLASSES = [3, 7]
SIZE = 48


def tiny_vit(name: str = "vit_tiny_patch16_224", **kw: object) -> nn.Module:
    torch.manual_seed(0)
    cfg = dict(img_size=SIZE, patch_size=6, embed_dim=32, depth=2, num_heads=2, num_classes=10)
    cfg.update(kw)
    m = timm.create_model(name, pretrained=False, **cfg).eval()
    with torch.no_grad():  # larger weights than timm's init: less uniform maps
        for p in m.parameters():
            if p.ndim > 1:
                p.normal_(0, 0.2)
    return m


def tiny_swin() -> nn.Module:
    torch.manual_seed(0)
    kw = dict(img_size=SIZE, patch_size=3, window_size=4, embed_dim=16, depths=(1, 1), num_heads=(2, 2))
    m = timm.create_model("swin_tiny_patch4_window7_224", pretrained=False, num_classes=10, **kw).eval()
    with torch.no_grad():
        for p in m.parameters():
            if p.ndim > 1:
                p.normal_(0, 0.2)
    return m


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    return torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))


def vit_reshape(t: torch.Tensor) -> torch.Tensor:  # pytorch-grad-cam's ViT example, 8x8 grid
    return t[:, 1:, :].reshape(t.size(0), 8, 8, t.size(2)).transpose(2, 3).transpose(1, 2)


def swin_reshape(t: torch.Tensor) -> torch.Tensor:  # timm >= 0.9 Swin stages are (B, h, w, C)
    return t.permute(0, 3, 1, 2)


PGC = {
    "grad-cam": ("GradCAM", {}),
    "grad-cam++": ("GradCAMPlusPlus", {}),
    "xgrad-cam": ("XGradCAM", {}),
    "hirescam": ("HiResCAM", {}),
    "layercam": ("LayerCAM", {}),
    "score-cam": ("ScoreCAM", {"align_corners": True}),
}
ARCH = {
    "vit": (tiny_vit, "blocks.1.norm1", vit_reshape),
    "swin": (tiny_swin, "layers.1", swin_reshape),
}


@pytest.mark.parametrize("arch", list(ARCH))
@pytest.mark.parametrize("name", list(PGC))
def test_matches_pytorch_grad_cam_with_reshape_transform(name: str, arch: str, x: torch.Tensor) -> None:
    build, layer, reshape = ARCH[arch]
    model = build()
    if arch == "swin":
        # the stage feeds a LayerNorm, which is scale-invariant: sum_k g_k A_k nearly cancels
        # (HiResCAM ~ 1e-8), so compare in float64
        model, x = model.double(), x.double()
    cls_name, kw = PGC[name]
    module = dict(model.named_modules())[layer]
    peer = getattr(pgc, cls_name)(model=model, target_layers=[module], reshape_transform=reshape)
    if hasattr(peer, "batch_size"):
        peer.batch_size = 64
    theirs = peer(input_tensor=x, targets=[ClassifierOutputTarget(c) for c in CLASSES])
    ours = get_method(name)(model, layer, **kw)(x, CLASSES)
    assert ours.maps.shape == (2, SIZE, SIZE) and ours.low[0].shape == (2, 8, 8)
    np.testing.assert_allclose(pgc_normalize(ours.low[0], (SIZE, SIZE)), theirs, atol=1e-5)


class Tap(nn.Module):
    """Wraps a token layer so a (B, C, h, w) view of its grid passes through ``tap``."""

    def __init__(self, inner: nn.Module, extra: int) -> None:
        super().__init__()
        self.inner, self.extra, self.tap = inner, extra, nn.Identity()

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        out = self.inner(t)
        grid = self.tap(out[:, self.extra :].transpose(1, 2).unflatten(2, (8, 8)))
        return torch.cat([out[:, : self.extra], grid.flatten(2).transpose(1, 2)], 1)


TC = {
    "grad-cam": ("GradCAM", {}, {}),
    "xgrad-cam": ("XGradCAM", {}, {}),
    "layercam": ("LayerCAM", {}, {}),
    "score-cam": ("ScoreCAM", {"batch_size": 64, "input_shape": (3, SIZE, SIZE)}, {"normalize_first": True}),
}


@pytest.mark.parametrize("name", list(TC))
def test_vit_matches_torchcam_on_a_tapped_grid(name: str, x: torch.Tensor) -> None:
    model = tiny_vit("deit_tiny_distilled_patch16_224")  # 2 extra tokens
    ours = get_method(name)(model, "blocks.1.norm1", **TC[name][2])(x, CLASSES).low[0]
    model.blocks[1].norm1 = Tap(model.blocks[1].norm1, 2)
    ext = getattr(torchcam.methods, TC[name][0])(model, "blocks.1.norm1.tap", **TC[name][1])
    with ext:
        with torch.set_grad_enabled(name != "score-cam"):
            scores = model(x)
        theirs = ext(class_idx=CLASSES, scores=scores)[0]
    torch.testing.assert_close(tc_normalize(torch.relu(ours)), theirs.detach(), atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("name", "kw", "size", "layer", "grid"),
    [
        ("vit_tiny_patch16_224", {}, SIZE, "blocks.1.norm1", (8, 8)),
        ("deit_tiny_distilled_patch16_224", {}, SIZE, "blocks.1.norm1", (8, 8)),
        ("vit_small_patch14_reg4_dinov2", {"patch_size": 6}, SIZE, "blocks.1.norm1", (8, 8)),
        ("vit_tiny_patch16_224", {"img_size": (48, 72)}, (48, 72), "blocks.1.norm1", (8, 12)),
        # mean-pooled head (timm's norm is then an identity): the last block's output counts
        ("vit_tiny_patch16_224", {"global_pool": "avg", "class_token": False}, SIZE, "blocks", (8, 8)),
    ],
)
def test_auto_layer_and_layout_on_token_models(name, kw, size, layer, grid, caplog) -> None:
    model = tiny_vit(name, **kw)
    hw = size if isinstance(size, tuple) else (size, size)
    x = torch.rand(2, 3, *hw)
    with caplog.at_level("INFO", logger="camkit.methods.autolayer"):
        r = get_method("grad-cam")(model)(x, CLASSES)
    assert f"target layer (auto): {layer}" in caplog.text
    assert r.maps.shape == (2, *hw) and r.low[0].shape[-2:] == grid
    # the explicit layer gives the same maps
    torch.testing.assert_close(get_method("grad-cam")(model, layer)(x, CLASSES).maps, r.maps)


def test_auto_layer_on_swin_and_convnext() -> None:
    m = get_method("grad-cam")(tiny_swin())
    m(torch.rand(1, 3, SIZE, SIZE))
    assert m.layers[0][0] == "norm"  # (B, 8, 8, C): NHWC
    torch.manual_seed(0)
    cnx = timm.create_model("convnext_atto", pretrained=False, num_classes=5).eval()
    m = get_method("layercam")(cnx)
    r = m(torch.rand(1, 3, 224, 224))
    assert m.layers[0][0] == "stages" and r.low[0].shape == (1, 7, 7)
    # NCHW read as NCHW: the same maps as the last stage named explicitly
    torch.testing.assert_close(
        get_method("layercam")(cnx, "stages.3")(torch.rand(1, 3, 224, 224)).low[0].shape, r.low[0].shape
    )


def test_layout_detection_rules() -> None:
    assert resolve_layout("auto", (2, 197, 32), (224, 224)).describe() == "tokens (1 extra + 14x14 grid)"
    assert resolve_layout("auto", (2, 201, 32), (224, 224)).extra == 5  # class + 4 registers
    assert resolve_layout("auto", (2, 7, 7, 96), (224, 224)).kind == "nhwc"
    assert resolve_layout("auto", (2, 96, 7, 7), (224, 224)).kind == "nchw"
    assert resolve_layout("auto", (2, 7, 14, 96), (112, 224)).kind == "nhwc"
    assert resolve_layout("tokens:3", (2, 67, 32)).grid == (8, 8)
    assert resolve_layout("auto", (2, 8, 4, 6, 6), (24, 24)).identity  # a volume
    assert resolve_layout("nchw", (2, 4, 5, 7), (24, 24)).identity  # as told, whatever the shape
    t = torch.randn(2, 67, 32)
    lay = resolve_layout("tokens:3", t.shape)
    assert torch.equal(lay.back(lay.to_nchw(t), t), t)  # the rebuilt output is the output
    with pytest.raises(OptionError, match=r"^layout=auto: 120 tokens are not a square grid"):
        resolve_layout("auto", (2, 120, 32), (64, 64))
    with pytest.raises(OptionError, match="^layout=tokens:x: use auto"):
        get_method("grad-cam")(tiny_vit(), "blocks.1.norm1", layout="tokens:x")


def test_explicit_and_callable_layouts(x: torch.Tensor) -> None:
    model = tiny_vit("deit_tiny_distilled_patch16_224")
    ref = get_method("grad-cam")(model, "blocks.1.norm1")(x, CLASSES).low[0]
    fixed = get_method("grad-cam")(model, "blocks.1.norm1", layout="tokens:2")(x, CLASSES).low[0]
    torch.testing.assert_close(fixed, ref)
    fn = get_method("grad-cam")(
        model, "blocks.1.norm1", layout=lambda t: t[:, 2:].transpose(1, 2).unflatten(2, (8, 8))
    )
    torch.testing.assert_close(fn(x, CLASSES).low[0], ref)
    # a wrong K is read as asked: a different grid split fails as one line naming layout
    with pytest.raises(OptionError, match="^layout=tokens:1: 66 tokens"):
        get_method("grad-cam")(model, "blocks.1.norm1", layout="tokens:1")(x, CLASSES)


def test_short_layer_names_resolve_by_unique_suffix() -> None:
    model = tiny_vit()
    assert get_method("grad-cam")(model, "1.norm1").layers[0][0] == "blocks.1.norm1"
    auto = get_method("grad-cam")(model, ["auto"])  # as the command line passes it
    auto.choose_layers(torch.rand(1, 3, SIZE, SIZE))
    assert auto.layers[0][0] == "blocks.1.norm1"
    with pytest.raises(
        OptionError, match="^layers=norm1: ambiguous; give one of blocks.0.norm1, blocks.1.norm1"
    ):
        get_method("grad-cam")(model, "norm1")


def test_a_layer_the_logits_do_not_depend_on(x: torch.Tensor) -> None:
    # the last block's grid tokens reach a class-token head nowhere
    with pytest.raises(
        OptionError, match=r"^layers=blocks.1: the output does not depend on this layer's grid"
    ):
        get_method("grad-cam")(tiny_vit(), "blocks.1")(x, CLASSES)

    class TwoHeads(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 4, 3), nn.Conv2d(3, 4, 3)
            self.fc = nn.Linear(4, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.b(x)  # runs, but feeds nothing
            return self.fc(self.a(x).mean((2, 3)))

    with pytest.raises(OptionError, match=r"^layers=b: the output does not depend"):
        get_method("grad-cam")(TwoHeads(), "b")(torch.rand(1, 3, 16, 16))
    assert get_method("grad-cam")(TwoHeads())(torch.rand(1, 3, 16, 16)).low[0].shape == (1, 14, 14)
    with pytest.raises(OptionError, match=r"^layers=auto: no layer has a spatial grid of at least 7x7"):
        get_method("grad-cam")(TwoHeads())(torch.rand(1, 3, 8, 8))


def test_several_outputs_without_obvious_logits(x: torch.Tensor) -> None:
    class Twins(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.fc = nn.Conv2d(3, 4, 3), nn.Linear(4, 5)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            z = self.fc(self.conv(x).mean((2, 3)))
            return z, 2 * z

    with pytest.raises(
        CamkitError, match=r"^the model returns 2 outputs .* none is clearly the \(B, K\) logits"
    ):
        get_method("grad-cam")(Twins(), "conv")(x)
    # a target callable picks the output: no error, and maps of the second head's class 1
    r = get_method("grad-cam")(Twins(), "conv")(x, lambda out: out[1][:, 1])
    assert r.maps.shape == (2, SIZE, SIZE) and torch.equal(r.target, torch.zeros(2, dtype=torch.long))


def test_a_target_returning_more_than_one_score_per_sample(x: torch.Tensor) -> None:
    with pytest.raises(
        OptionError, match=r"^targets=.*: the target callable returned shape \(2, 10\) for a batch of 2"
    ):
        get_method("grad-cam")(tiny_vit(), "blocks.1.norm1")(x, lambda out: out)


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads RSS from /proc")
def test_a_long_loop_over_a_vit_keeps_memory_flat() -> None:
    """Up to 1,000 calls (or ~10 s) on a ViT, automatic layer, token layout, class ids and a
    target callable in turn: RSS stays flat, no tensor outlives its call, no hook is left (and
    CUDA memory stays flat when a GPU is there)."""
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    model = tiny_vit().to(dev)
    x = torch.rand(2, 3, SIZE, SIZE, device=dev)
    method = get_method("grad-cam")(model)
    target = ClassTarget(3)

    def live_tensors() -> int:
        gc.collect()
        return sum(1 for o in gc.get_objects() if torch.is_tensor(o))

    with method:
        for i in range(50):
            method(x, CLASSES if i % 2 else target)
        base, rss0 = live_tensors(), _rss_mb()
        cuda0 = torch.cuda.memory_allocated() if dev == "cuda" else 0
        start, n = time.perf_counter(), 0
        while n < 1000 and time.perf_counter() - start < 10:
            method(x, CLASSES if n % 2 else target)
            n += 1
        growth = _rss_mb() - rss0
        assert live_tensors() <= base + 2
        if dev == "cuda":
            assert torch.cuda.memory_allocated() <= cuda0
    print(f"{n} calls, RSS {rss0:.1f} MB -> +{growth:.2f} MB")
    assert n >= 100, n
    assert growth < 8, f"RSS grew {growth:.1f} MB over {n} calls"
    assert all(not m._forward_hooks for m in model.modules())
