"""Pooling heads: (B, C, h, w) feature maps -> (B, C) vectors.

A head is swappable; CAM needs it to be a (weighted) spatial average so that the linear
classifier commutes with it: ``W·pool(f) = pool(W·f)`` for GAP.
"""

from __future__ import annotations

import torch
from torch import nn

from camkit.errors import CamkitError


class GAP(nn.Module):
    """Global average pooling (Lin et al. 2014; Zhou et al. 2016): mean over h×w."""

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) -> (B, C)."""
        return f.mean(dim=(2, 3))

    def extra_repr(self) -> str:
        return ""


HEADS: dict[str, type[nn.Module]] = {"gap": GAP}


def build_head(name: str) -> nn.Module:
    try:
        return HEADS[name]()
    except KeyError:
        raise CamkitError(
            f"--head {name}: unknown pooling head; choose one of {', '.join(sorted(HEADS))}"
        ) from None
