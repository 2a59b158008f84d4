"""Pooling heads: (B, C, h, w) feature maps -> (B, C) vectors.

A head is swappable. CAM reads the classifier weights as per-channel importances, which is
exact for GAP (``W·GAP(f) = GAP(W·f)``); TAP changes what those weights learn (Bae et al.).
"""

from __future__ import annotations

import torch
from torch import nn

from camkit.core.errors import OptionError


class GAP(nn.Module):
    """Global average pooling (Lin et al. 2014; Zhou et al. 2016): mean over h×w."""

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) -> (B, C)."""
        return f.mean(dim=(2, 3))


class TAP(nn.Module):
    """Thresholded average pooling (Bae et al., "Rethinking Class Activation Mapping for
    WSOL", ECCV 2020, Eq. 4): per channel, the mean of the activations at or above
    ``τ = θ · max F_c``:

        p_c = Σ 1(F_c >= τ) F_c / Σ 1(F_c >= τ)

    A channel active on a small area is no longer diluted by the empty rest of the map, so
    the classifier no longer has to inflate its weight. For non-negative (post-ReLU)
    features θ = 0 counts every position, which is GAP exactly. The indicator carries no
    gradient; gradients reach the activations that pass it. A channel with no activation
    passing (possible only when its max is negative) pools to 0.
    """

    def __init__(self, theta: float = 0.05) -> None:
        super().__init__()
        if not 0.0 <= theta < 1.0:
            raise OptionError("tap_theta", "must be in [0, 1)", theta)
        self.theta = theta

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) -> (B, C)."""
        flat = f.flatten(2)
        tau = self.theta * flat.detach().amax(-1, keepdim=True)
        keep = (flat.detach() >= tau).to(f.dtype)
        return (flat * keep).sum(-1) / keep.sum(-1).clamp_min(1.0)

    def extra_repr(self) -> str:
        return f"theta={self.theta}"


HEADS: dict[str, type[nn.Module]] = {"gap": GAP, "tap": TAP}


def build_head(name: str, tap_theta: float = 0.05) -> nn.Module:
    """The pooling head by name: ``gap`` or ``tap`` (with ``tap_theta``)."""
    if name == "tap":
        return TAP(tap_theta)
    try:
        return HEADS[name]()
    except KeyError:
        raise OptionError(
            "head", f"unknown pooling head; choose one of {', '.join(sorted(HEADS))}", name
        ) from None
