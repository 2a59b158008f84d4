"""Ablation-CAM (Desai & Ramaswamy, WACV 2020): a channel's weight is the relative drop of
the class score when that channel is zeroed at the target layer,

    w_k = ( y_c - y_c^{A_k = 0} ) / y_c;      M_c = ReLU( sum_k w_k A_k )

Each (sample, target) pair needs C forwards with one channel ablated, run in batches of
``batch_size`` through a forward hook that edits the target layer's output. In eval mode the
layers before the target give the same result for every copy, so camkit runs them once: the
hook turns the single activation into the batch of ablated copies, and only the layers after
the target run C times. Models whose later layers reuse earlier tensors (a skip connection
across the target layer) fall back to full forwards.
"""

from __future__ import annotations

import torch

from camkit.core.errors import CamkitError
from camkit.methods.base import CAMMethod, weighted_sum
from camkit.methods.registry import register


@register("ablation-cam")
class AblationCAM(CAMMethod):
    reference = "Desai & Ramaswamy, Ablation-CAM, WACV 2020"

    @torch.no_grad()
    def channel_scores(self, x: torch.Tensor, layer: int, channels: int, target: int) -> torch.Tensor:
        """(3, H, W) input -> (C,) target logits with each channel of ``layer`` zeroed in turn."""
        share_prefix = not any(m.training for m in self.model.modules())
        scores = []
        for start in range(0, channels, self.batch_size):
            idx = torch.arange(start, min(start + self.batch_size, channels), device=x.device)
            n = len(idx)

            def ablate(i: int, t: torch.Tensor, idx: torch.Tensor = idx) -> torch.Tensor:
                if i != layer:
                    return t
                t = t.expand(len(idx), *t.shape[1:]) if t.shape[0] == 1 else t
                keep = torch.ones_like(t)
                keep[torch.arange(len(idx), device=t.device), idx] = 0
                return t * keep

            self._edit = ablate
            try:
                out = None
                if share_prefix:
                    try:
                        out = self.forward(x[None])
                    except RuntimeError:  # a later layer mixes in pre-target tensors of batch 1
                        share_prefix = False
                    if out is not None and out.shape[0] != n:
                        share_prefix, out = False, None
                if out is None:
                    out = self.forward(x[None].expand(n, *x.shape).contiguous())
                scores.append(out[:, target])
            finally:
                self._edit = None
        return torch.cat(scores)

    def compute(
        self,
        x: torch.Tensor,
        acts: list[torch.Tensor],
        logits: torch.Tensor,
        sample: torch.Tensor,
        target: torch.Tensor,
        create_graph: bool,
    ) -> list[torch.Tensor]:
        """ReLU(sum_c w_c A_c), w_c = (y - y without channel c) / y, y the target's logit: one
        (N, h_l, w_l) map per target layer."""
        base = logits.detach()[sample, target]
        if bool((base == 0).any()):
            raise CamkitError("ablation-cam: a target score is exactly 0, so the relative drop is undefined")
        out = []
        for li, a in enumerate(acts):
            pairs = zip(sample.tolist(), target.tolist(), strict=True)
            drops = torch.stack([self.channel_scores(x[i], li, a.shape[1], int(c)) for i, c in pairs])
            w = (base[:, None] - drops) / base[:, None]
            out.append(torch.relu(weighted_sum(a[sample], w)))
        return out
