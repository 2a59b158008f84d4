"""Sanity checks (Adebayo et al., 2018): cascading model-parameter randomization and random
logit, as Spearman rank correlation and SSIM of the maps before and after (lower: the maps
depend on the model / the class)."""

from __future__ import annotations

from typing import Any

from torch import nn

from camkit.metrics.sanity import mprt, random_logit, randomizable_modules
from camkit.pipeline.faith_metrics import register
from camkit.pipeline.faith_metrics.base import FaithBatch, FaithMetric, Mean


def cascade_steps(model: nn.Module, n: int) -> list[list[str]]:
    """The randomizable modules, output first, cut into ``n`` consecutive groups of near-equal
    size (one randomization step each)."""
    names = randomizable_modules(model)
    n = max(1, min(n, len(names)))
    cuts = [round(i * len(names) / n) for i in range(n + 1)]
    return [names[cuts[i] : cuts[i + 1]] for i in range(n)]


@register("mprt")
class MPRT(FaithMetric):
    summary = "cascading model-parameter randomization: Spearman and SSIM of the maps before/after each step, output layers first"

    def __init__(self, mprt_steps: int = 5, seed: int = 42) -> None:
        self.n_steps, self.seed = mprt_steps, seed
        self.steps: list[list[str]] = []
        self.rho: list[Mean] = []
        self.ssim: list[Mean] = []

    def update(self, batch: FaithBatch) -> None:
        if not self.steps:
            self.steps = cascade_steps(batch.model, self.n_steps)
            self.rho = [Mean() for _ in self.steps]
            self.ssim = [Mean() for _ in self.steps]
        r = mprt(batch.model, batch.images, batch.targets, batch.explain, self.steps, self.seed, batch.maps)
        for k, s in enumerate(r.similarity):
            self.rho[k].add(s.spearman.scores, s.spearman.valid)
            self.ssim[k].add(s.ssim)

    def compute(self) -> dict[str, Any]:
        last = len(self.steps) - 1
        return {
            "mprt_spearman": self.rho[last].value if self.steps else None,
            "mprt_ssim": self.ssim[last].value if self.steps else None,
            "mprt_skipped": self.rho[last].skipped if self.steps else 0,
            "mprt_steps": [
                {
                    "modules": f"{g[0]} .. {g[-1]}" if len(g) > 1 else g[0],
                    "count": len(g),
                    "spearman": rho.value,
                    "ssim": ss.value,
                }  # fmt: skip
                for g, rho, ss in zip(self.steps, self.rho, self.ssim, strict=True)
            ],
        }


@register("random-logit")
class RandomLogit(FaithMetric):
    summary = "random logit: Spearman and SSIM of the maps for the target against a random other class"

    def __init__(self, seed: int = 42) -> None:
        self.seed = seed
        self.rho, self.ssim = Mean(), Mean()
        self.batches = 0

    def update(self, batch: FaithBatch) -> None:
        r = random_logit(batch.model, batch.images, batch.targets, batch.explain, batch.num_classes,
                         self.seed + self.batches, original=batch.maps)  # fmt: skip
        self.batches += 1
        self.rho.add(r.similarity.spearman.scores, r.similarity.spearman.valid)
        self.ssim.add(r.similarity.ssim)

    def compute(self) -> dict[str, Any]:
        return {"random_logit_spearman": self.rho.value, "random_logit_ssim": self.ssim.value,
                "random_logit_skipped": self.rho.skipped}  # fmt: skip
