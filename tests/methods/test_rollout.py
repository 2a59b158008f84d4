"""Attention rollout on a tiny timm ViT (2 blocks) against a rollout computed by hand from the
blocks' weights."""

import pytest
import torch

from camkit.core.errors import CamkitError
from camkit.methods import get_method
from camkit.methods.rollout import attention_layers, rollout

timm = pytest.importorskip("timm")


def tiny_vit() -> torch.nn.Module:
    torch.manual_seed(0)
    from timm.models.vision_transformer import VisionTransformer

    return VisionTransformer(
        img_size=32, patch_size=8, embed_dim=16, depth=2, num_heads=2, num_classes=5
    ).eval()


def attention_by_hand(model: torch.nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Each block's softmax(q kᵀ / √d), computed from its qkv weights (no hooks)."""
    t = model.norm_pre(model._pos_embed(model.patch_embed(x)))
    out = []
    for blk in model.blocks:
        h = blk.norm1(t)
        b, n, c = h.shape
        qkv = blk.attn.qkv(h).reshape(b, n, 3, 2, c // 2).permute(2, 0, 3, 1, 4)
        q, k = qkv[0], qkv[1]
        out.append(torch.softmax(q @ k.transpose(-2, -1) * (c // 2) ** -0.5, -1))
        t = blk(t)
    return out


def test_rollout_matches_a_hand_computed_one() -> None:
    model = tiny_vit()
    assert attention_layers(model) == ["blocks.0.attn.attn_drop", "blocks.1.attn.attn_drop"]
    x = torch.rand(2, 3, 32, 32)
    fused = [blk.attn.fused_attn for blk in model.blocks]
    r = get_method("attention-rollout")(model)(x)
    assert [blk.attn.fused_attn for blk in model.blocks] == fused  # restored
    with torch.no_grad():
        a1, a2 = attention_by_hand(model, x)
    eye = torch.eye(17)
    m1 = (a1.mean(1) + eye) / 2
    m2 = (a2.mean(1) + eye) / 2  # rows of a softmax sum to 1: (A + I)/2 is already row-stochastic
    expected = (m2 @ m1)[:, 0, 1:].reshape(2, 4, 4)
    torch.testing.assert_close(r.low[0], expected, atol=1e-6, rtol=1e-5)
    assert r.maps.shape == (2, 32, 32)
    # max head fusion and a discard ratio follow the same recipe
    mx = get_method("attention-rollout")(model, head_fusion="max")(x).low[0]
    f1, f2 = a1.amax(1), a2.amax(1)
    n1 = (f1 + eye) / 2
    n2 = (f2 + eye) / 2
    e2 = (n2 / n2.sum(-1, keepdim=True)) @ (n1 / n1.sum(-1, keepdim=True))
    torch.testing.assert_close(mx, e2[:, 0, 1:].reshape(2, 4, 4), atol=1e-6, rtol=1e-5)


def test_discard_ratio_zeroes_the_lowest_entries_but_never_the_class_column() -> None:
    a = torch.tensor([[[[0.5, 0.3, 0.2], [0.1, 0.1, 0.8], [0.6, 0.05, 0.35]]]])
    r = rollout([a], discard_ratio=0.34)  # 3 of 9 entries, outside column 0: 0.05, 0.1, 0.2
    f = torch.tensor([[0.5, 0.3, 0.0], [0.1, 0.0, 0.8], [0.6, 0.0, 0.35]])
    m = (f + torch.eye(3)) / 2
    torch.testing.assert_close(r[0], m / m.sum(-1, keepdim=True))


def test_errors() -> None:
    model = tiny_vit()
    with pytest.raises(CamkitError, match="not a square grid"):
        get_method("attention-rollout")(model, prefix_tokens=2)(torch.rand(1, 3, 32, 32))
    with pytest.raises(CamkitError, match="no attention block"):
        get_method("attention-rollout")(torch.nn.Sequential(torch.nn.Conv2d(3, 2, 1)))
