"""The context and co-occurrence benchmark (:mod:`camkit.data.context`): Fashion-MNIST items
on photographic and textured backgrounds with a per-class context (``p_context``), fixed
co-occurring pairs (``p_cooccur``, multi-label) and partial visibility (``p_occlude``,
``p_crop``); single-label (``fashion-context``) and multi-label (``fashion-context-multi``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from camkit.core.errors import OptionError
from camkit.data import context
from camkit.data.registry import register_dataset
from camkit.data.sources.fashion import Fashion

if TYPE_CHECKING:
    from camkit.data.datasets import DataConfig

#: default item scales (item side / canvas side): single-label, multi-label
_SCALES = {False: (0.35, 0.65), True: (0.28, 0.5)}


def context_config(cfg: DataConfig, multi: bool) -> context.ContextConfig:
    """The generator's settings from ``cfg`` (checked: a bad value is a one-line OptionError)."""
    if multi and cfg.max_objects < 1:
        raise OptionError("max_objects", "must be at least 1", cfg.max_objects)
    lo, hi = _SCALES[multi]
    c = context.ContextConfig(
        size=cfg.canvas_size, n_train=cfg.n_train, n_val=cfg.n_val, n_test=cfg.n_test,
        min_scale=lo if cfg.min_scale is None else cfg.min_scale,
        max_scale=hi if cfg.max_scale is None else cfg.max_scale,
        seed=cfg.seed, max_objects=cfg.max_objects if multi else 0, p_context=cfg.p_context,
        p_cooccur=cfg.p_cooccur, p_occlude=cfg.p_occlude, p_crop=cfg.p_crop,
    )  # fmt: skip
    c.validate()
    return c


@register_dataset("fashion-context")
class FashionContext(Fashion):
    summary = "Fashion-MNIST items on photos and textures with class contexts, occlusion and crops"

    def load_split(self, cfg: DataConfig, split: str, cache: Path | None) -> dict[str, np.ndarray]:
        return context.load_split(split, context_config(cfg, self.multilabel), cfg.root, cache)


@register_dataset("fashion-context-multi")
class FashionContextMulti(FashionContext):
    summary = "its multi-label variant: 1 to max_objects items, fixed co-occurring pairs (p_cooccur)"
    multilabel = True
