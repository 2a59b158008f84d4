import torch
import torch.nn.functional as F

from camkit.methods.recam import class_masks, masked_features, positive_pairs
from camkit.models.camnet import CAMNet, ModelConfig
from camkit.train.recam import recam_loss


def _model() -> CAMNet:
    torch.manual_seed(0)
    return CAMNet(ModelConfig(backbone="resnet18", num_classes=4, fc2=True))


def test_masked_feature_shapes() -> None:
    f = torch.rand(3, 8, 5, 6)
    y = torch.tensor([[1, 0, 1, 0], [0, 0, 0, 1], [1, 1, 1, 0]], dtype=torch.float32)
    s, c = positive_pairs(y)
    assert s.tolist() == [0, 0, 1, 2, 2, 2] and c.tolist() == [0, 2, 3, 0, 1, 2]
    w = torch.randn(4, 8)
    m = class_masks(f, w, s, c, "relu-max")
    assert m.shape == (6, 5, 6)
    fk = masked_features(f, m, s)
    assert fk.shape == (6, 8, 5, 6)
    torch.testing.assert_close(fk[3], f[2] * m[3])


def test_class_masks_normalizations() -> None:
    f = torch.randn(2, 8, 4, 4)
    w = torch.randn(3, 8)
    s, c = torch.tensor([0, 1]), torch.tensor([2, 0])
    raw = torch.stack([torch.einsum("chw,c->hw", f[0], w[2]), torch.einsum("chw,c->hw", f[1], w[0])])
    r = torch.relu(raw)
    torch.testing.assert_close(class_masks(f, w, s, c, "relu-max"), r / r.flatten(1).amax(1)[:, None, None])
    torch.testing.assert_close(class_masks(f, w, s, c, "sigmoid"), torch.sigmoid(raw))
    lo, hi = raw.flatten(1).amin(1)[:, None, None], raw.flatten(1).amax(1)[:, None, None]
    torch.testing.assert_close(class_masks(f, w, s, c, "minmax"), (raw - lo) / (hi - lo))


def test_recam_loss_by_hand() -> None:
    model = _model()
    x = torch.rand(2, 3, 32, 32)
    y = torch.tensor([[1, 0, 1, 0], [0, 1, 0, 0]], dtype=torch.float32)
    out = model(x)
    loss = recam_loss(model, out, y, "relu-max")
    # by hand: image 0 has classes 0 and 2 (weight 1/2 each), image 1 has class 1 (weight 1)
    terms = []
    for b, k, wgt in ((0, 0, 0.5), (0, 2, 0.5), (1, 1, 1.0)):
        cam = torch.relu(torch.einsum("chw,c->hw", out.features[b], model.classifier.weight[k]))
        m = cam / cam.max()
        z = model.classifier2((out.features[b] * m).mean((1, 2)))
        terms.append(wgt * F.cross_entropy(z[None], torch.tensor([k])))
    torch.testing.assert_close(loss, sum(terms) / 2)
    loss.backward()  # gradients reach the backbone, FC1 (through the masks) and FC2
    assert model.classifier2.weight.grad.abs().sum() > 0
    assert model.classifier.weight.grad.abs().sum() > 0
    assert next(model.backbone.parameters()).grad.abs().sum() > 0


def test_recam_loss_single_label_ids() -> None:
    model = _model()
    out = model(torch.rand(2, 3, 32, 32))
    a = recam_loss(model, out, torch.tensor([1, 3]))
    b = recam_loss(model, out, torch.tensor([[0, 1, 0, 0], [0, 0, 0, 1]], dtype=torch.float32))
    torch.testing.assert_close(a, b)
