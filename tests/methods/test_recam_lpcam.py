import math

import pytest
import torch
from torch.utils.data import Dataset

from camkit.core.errors import CamkitError
from camkit.methods import CAM, LPCAM, LPCAMF, ReCAM
from camkit.methods.prototypes import PrototypeConfig, Prototypes, load_prototypes, save_prototypes
from camkit.models.camnet import CAMNet, ModelConfig
from camkit.wsss.prototypes import build_prototypes


def _model(fc2: bool = True) -> CAMNet:
    torch.manual_seed(0)
    m = CAMNet(ModelConfig(backbone="resnet18", num_classes=3, fc2=fc2)).eval()
    if fc2:
        with torch.no_grad():
            m.classifier2.weight.copy_(torch.randn_like(m.classifier2.weight))
    return m


@pytest.mark.parametrize("variant", ["w", "w2", "sum", "prod"])
def test_recam_weight_variants(variant: str) -> None:
    model = _model()
    x = torch.rand(2, 3, 64, 64)
    w, w2 = model.classifier.weight, model.classifier2.weight
    ww = {"w": w, "w2": w2, "sum": w + w2, "prod": w * w2}[variant]
    with ReCAM(model, recam_weights=variant) as m:
        r = m(x, [1, 2])
    f = model.forward_features(x)
    want = torch.einsum("bchw,bc->bhw", f, ww[[1, 2]])
    torch.testing.assert_close(r.low[0], want, rtol=1e-5, atol=1e-5)


def test_recam_w_is_cam_and_needs_fc2() -> None:
    model = _model()
    x = torch.rand(1, 3, 64, 64)
    with ReCAM(model, recam_weights="w") as a, CAM(model) as b:
        torch.testing.assert_close(a(x, 0).low[0], b(x, 0).low[0])
    with pytest.raises(CamkitError, match="FC2"):
        ReCAM(_model(fc2=False))
    with pytest.raises(CamkitError, match="recam_weights=max: choose one of"):
        ReCAM(model, recam_weights="max")


def test_cam_still_uses_fc1_when_fc2_exists() -> None:
    model = _model()
    x = torch.rand(1, 3, 64, 64)
    with CAM(model) as m:
        got = m(x, 2).low[0]
    want = torch.einsum("bchw,c->bhw", model.forward_features(x), model.classifier.weight[2])
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


class _Fixed(torch.nn.Module):
    """A 'model' whose target layer outputs fixed 2-channel features."""

    def __init__(self, feats: torch.Tensor, k: int = 2) -> None:
        super().__init__()
        self.feats = feats
        self.features = torch.nn.Identity()
        self.classifier = torch.nn.Linear(feats.shape[1], k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(self.feats[: x.shape[0]])
        return self.classifier(f.mean((2, 3)))


def test_lpcam_on_hand_made_prototypes() -> None:
    # one position per direction: (1,0), (0,1), (1,1), (0,0)
    f = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]], [[0.0, 1.0], [1.0, 0.0]]]])  # (1, 2, 2, 2)
    model = _Fixed(f)
    fg = [torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 1.0], [1.0, 1.0]])]
    bg = [torch.tensor([[0.0, 3.0]]), torch.tensor([[1.0, 0.0]])]
    protos = Prototypes(fg, bg, "features")
    x = torch.zeros(1, 3, 2, 2)
    with LPCAM(model, prototypes=protos) as m:
        r = m(x, [[0, 1]])
    c = 1 / math.sqrt(2)
    # class 0: FG = cos(., (1,0)), BG = cos(., (0,1))
    want0 = torch.tensor([[1.0 - 0.0, 0.0 - 1.0], [c - c, 0.0]])
    # class 1: FG = mean(cos(., (0,1)), cos(., (1,1))), BG = cos(., (1,0))
    want1 = torch.tensor([[(0 + c) / 2 - 1, (1 + c) / 2 - 0], [(c + 1) / 2 - c, 0.0]])
    torch.testing.assert_close(r.low[0], torch.stack([want0, want1]), rtol=0, atol=1e-6)
    with LPCAMF(model, prototypes=protos) as m:
        r = m(x, [[0, 1]])
    torch.testing.assert_close(
        r.low[0][1], torch.tensor([[(0 + c) / 2, (1 + c) / 2], [(c + 1) / 2, 0.0]]), rtol=0, atol=1e-6
    )


def test_lpcam_errors() -> None:
    model = _Fixed(torch.rand(1, 2, 2, 2))
    with pytest.raises(CamkitError, match="prototypes: method lpcam needs a prototype file"):
        LPCAM(model)
    protos = Prototypes([torch.rand(1, 5)] * 2, [torch.rand(1, 5)] * 2, "features")
    with pytest.raises(CamkitError, match="channels"), LPCAM(model, prototypes=protos) as m:
        m(torch.zeros(1, 3, 2, 2), 0)
    other = Prototypes([torch.rand(1, 2)] * 2, [torch.rand(1, 2)] * 2, "classifier")
    with pytest.raises(CamkitError, match="built on classifier"):
        LPCAM(model, "features", prototypes=other)


class _Multi(Dataset):
    def __init__(self, n: int = 12) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.rand(n, 3, 64, 64, generator=g)
        self.y = (torch.rand(n, 3, generator=g) > 0.5).float()
        self.y[:, 0] = 1.0

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.x[i], "label": self.y[i]}


def test_build_save_load_prototypes(tmp_path) -> None:
    model = _model(fc2=False)
    cfg = PrototypeConfig(tau=0.3, k=3, mu_f=0.0, mu_b=1.0)
    p = build_prototypes(model, _Multi(), cfg, batch_size=5)
    assert p.layer == "backbone" and p.num_classes == 3
    assert all(t.shape[1] == model.num_features for t in p.fg + p.bg)
    assert p.fg[0].shape[0] == 3  # mu_f = 0 keeps every center
    row = p.meta["classes"][0]
    assert row["fg"]["points"] + row["bg"]["points"] == 12 * 64  # every position of every image with class 0
    save_prototypes(tmp_path / "p.safetensors", p)
    q = load_prototypes(tmp_path / "p.safetensors")
    for a, b in zip(p.fg + p.bg, q.fg + q.bg, strict=True):
        torch.testing.assert_close(a, b)
    assert q.config == cfg and q.layer == "backbone"
    (tmp_path / "bad.safetensors").write_bytes(b"not a file")
    with pytest.raises(CamkitError, match=r"prototypes=.*bad\.safetensors: not a prototype file"):
        load_prototypes(tmp_path / "bad.safetensors")


def test_prototype_selection_falls_back_to_the_best() -> None:
    model = _model(fc2=False)
    p = build_prototypes(model, _Multi(), PrototypeConfig(tau=0.3, k=2, mu_f=1.0, mu_b=0.0), batch_size=6)
    for row in p.meta["classes"]:
        if row["fg"]["points"]:
            assert row["fg"]["fallback"] and row["fg"]["kept"] == 1
            assert row["bg"]["fallback"] and row["bg"]["kept"] == 1
