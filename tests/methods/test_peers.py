"""Cross-checks against pytorch-grad-cam and torchcam: same model, input, layer and target.

Each peer post-processes its maps its own way, so our raw feature-resolution map goes through
the peer's own normalization before the comparison (``after the same normalization``).
"""

import numpy as np
import pytest
import torch
import torchvision

from camkit.methods import get_method

pgc = pytest.importorskip("pytorch_grad_cam")
torchcam = pytest.importorskip("torchcam")
from pytorch_grad_cam.utils.image import scale_cam_image  # noqa: E402
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402

CLASSES = [3, 7]


@pytest.fixture(scope="module")
def setup() -> tuple[torch.nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=10).eval()
    # trained-looking statistics: random BatchNorm running stats make the maps less degenerate
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    x = torch.rand(2, 3, 96, 96)
    return model, x


def pgc_normalize(low: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """pytorch-grad-cam's post-processing of one layer: ReLU, scale + resize, then scale again."""
    cam = np.maximum(low.detach().numpy(), 0)
    return scale_cam_image(scale_cam_image(cam, size)[:, None].mean(axis=1))


def tc_normalize(low: torch.Tensor) -> torch.Tensor:
    """torchcam's: min-max per map with eps 1e-8 at feature resolution."""
    c = low.detach().clone()
    c -= c.flatten(1).amin(1)[:, None, None]
    return c / (c.flatten(1).amax(1)[:, None, None] + 1e-8)


PGC = {
    "grad-cam": ("GradCAM", {}),
    "grad-cam++": ("GradCAMPlusPlus", {}),
    "xgrad-cam": ("XGradCAM", {}),
    "hirescam": ("HiResCAM", {}),
    "layercam": ("LayerCAM", {}),
    "score-cam": ("ScoreCAM", {"align_corners": True}),
    "ablation-cam": ("AblationCAM", {}),
    "eigen-cam": ("EigenCAM", {}),
}


@pytest.mark.parametrize("name", list(PGC))
def test_matches_pytorch_grad_cam(name: str, setup) -> None:
    model, x = setup
    cls_name, kw = PGC[name]
    peer = getattr(pgc, cls_name)(model=model, target_layers=[model.layer3])
    if hasattr(peer, "batch_size"):
        peer.batch_size = 64
    theirs = peer(input_tensor=x, targets=[ClassifierOutputTarget(c) for c in CLASSES])
    ours = get_method(name)(model, "layer3", **kw)(x, CLASSES)
    low = ours.low[0]
    if name == "eigen-cam":
        # SVD leaves the component's sign free; pytorch-grad-cam does not fix it. Compare with
        # whichever sign it got, from our own (pre-ReLU) projection.
        from camkit.methods.eigencam import first_component

        with torch.no_grad():
            acts = {}
            h = model.layer3.register_forward_hook(lambda m, i, o: acts.__setitem__("a", o))
            model(x)
            h.remove()
        p = first_component(acts["a"])
        cands = [pgc_normalize(p, (96, 96)), pgc_normalize(-p, (96, 96))]
        assert min(np.abs(c - theirs).max() for c in cands) < 1e-5
        return
    np.testing.assert_allclose(pgc_normalize(low, (96, 96)), theirs, atol=1e-5)
    # our own upsampling path gives the same pixels as theirs (cv2 bilinear, half-pixel grid)
    from camkit.core.ops import minmax, upsample

    mine = minmax(upsample(minmax(torch.relu(low)), 96)).numpy()
    np.testing.assert_allclose(mine, theirs, atol=1e-5)


TC = {
    "cam": ("CAM", {"fc_layer": "fc"}, {"classifier": "fc"}),
    "grad-cam": ("GradCAM", {}, {}),
    "xgrad-cam": ("XGradCAM", {}, {}),
    "layercam": ("LayerCAM", {}, {}),
    "score-cam": ("ScoreCAM", {"batch_size": 64, "input_shape": (3, 96, 96)}, {"normalize_first": True}),
}


@pytest.mark.parametrize("name", list(TC))
def test_matches_torchcam(name: str, setup) -> None:
    model, x = setup
    cls_name, peer_kw, our_kw = TC[name]
    layer = "layer4" if name == "cam" else "layer3"  # CAM needs the layer the GAP-linear head reads
    ext = getattr(torchcam.methods, cls_name)(model, layer, **peer_kw)
    with ext:
        with torch.set_grad_enabled(name != "cam" and name != "score-cam"):
            scores = model(x)
        theirs = ext(class_idx=CLASSES, scores=scores)[0]
    ours = get_method(name)(model, layer, **our_kw)(x, CLASSES).low[0]
    if name != "cam":
        ours = torch.relu(ours)
    torch.testing.assert_close(tc_normalize(ours), theirs.detach(), atol=1e-5, rtol=0)


def test_layercam_fuses_several_layers_like_pytorch_grad_cam(setup) -> None:
    """Equal weights over layer2 + layer3: per-layer min-max, upsample, mean, as the peer."""
    model, x = setup
    theirs = pgc.LayerCAM(model=model, target_layers=[model.layer2, model.layer3])(
        input_tensor=x, targets=[ClassifierOutputTarget(c) for c in CLASSES]
    )
    ours = get_method("layercam")(model, ["layer2", "layer3"])(x, CLASSES)
    per = [scale_cam_image(np.maximum(low.numpy(), 0), (96, 96)) for low in ours.low]
    np.testing.assert_allclose(scale_cam_image(np.mean(per, axis=0)), theirs, atol=1e-5)
    from camkit.core.ops import minmax

    np.testing.assert_allclose(minmax(ours.maps).numpy(), theirs, atol=1e-5)
