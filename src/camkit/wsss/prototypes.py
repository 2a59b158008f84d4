"""LPCAM's local prototypes (Chen et al., "Extracting Class Activation Maps from
Non-Discriminative Features as well", CVPR 2023), built once from a trained model and saved.

For each class n, over the training images labelled n:

1. take the feature vector at every position of the target layer, and CAM_n there
   (ReLU(w_n^T f) / max, at feature resolution);
2. split the vectors into foreground (CAM_n > τ) and background (CAM_n <= τ);
3. cluster each set into K groups with cosine k-means (:mod:`camkit.wsss.cluster`);
4. keep the foreground centers whose softmax score for n, ``softmax(FC(center))[n]``, exceeds
   μ_f, and the background centers whose score is below μ_b. The score is taken on the
   members' plain mean, so the classifier sees features at their trained scale.

If no center of a set passes, the best one is kept (the highest FG score, the lowest BG score),
with a warning and ``fallback`` recorded in the file, so every class can still be mapped.

Sets larger than ``max_points`` are subsampled uniformly (a seeded reservoir), which keeps
memory bounded on datasets of any size: at most about classes × 2 × 2 · max_points × C × 4 bytes
(the reservoir holds up to twice its size between shrinks); lower ``max_points`` for wide
features (C = 2048) and many classes.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from camkit.core import provenance
from camkit.core.errors import CamkitError, OptionError
from camkit.core.ops import logits_of
from camkit.core.progress import NoProgress, Progress
from camkit.methods.base import find_classifier, resolve_layers
from camkit.methods.prototypes import PrototypeConfig, Prototypes
from camkit.methods.recam import class_masks, positive_pairs
from camkit.wsss.cluster import spherical_kmeans

log = logging.getLogger(__name__)


class _Reservoir:
    """A uniform sample without replacement of at most ``cap`` rows: each row gets a seeded
    random key and the ``cap`` smallest keys stay."""

    def __init__(self, cap: int, gen: torch.Generator) -> None:
        self.cap, self.gen = cap, gen
        self.rows: list[torch.Tensor] = []
        self.keys: list[torch.Tensor] = []
        self.held = 0
        self.seen = 0

    def add(self, rows: torch.Tensor) -> None:
        if rows.shape[0] == 0:
            return
        self.seen += rows.shape[0]
        self.held += rows.shape[0]
        self.rows.append(rows)
        self.keys.append(torch.rand(rows.shape[0], generator=self.gen).to(rows.device))
        if self.held > 2 * self.cap:
            self._shrink()

    def _shrink(self) -> None:
        if not self.rows:
            return
        rows, keys = torch.cat(self.rows), torch.cat(self.keys)
        if rows.shape[0] > self.cap:
            idx = torch.topk(keys, self.cap, largest=False).indices
            rows, keys = rows[idx], keys[idx]
        self.rows, self.keys, self.held = [rows], [keys], rows.shape[0]

    def get(self) -> torch.Tensor:
        self._shrink()
        return self.rows[0] if self.rows else torch.zeros(0)


@torch.no_grad()
def _select(
    res: _Reservoir, fc: nn.Linear, c: int, side: str, cfg: PrototypeConfig
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Cluster one class's FG or BG vectors and keep the centres that pass μ_f / μ_b (or the
    best one, as a fallback): the kept centres (F, C) on the CPU and the build log's entry."""
    x = res.get()
    if x.shape[0] == 0:
        log.warning("class %d has no %s features (no labelled image, or τ leaves none)", c, side)
        return torch.zeros(0, fc.in_features), {"points": 0, "kept": 0}
    km = spherical_kmeans(x, cfg.k, cfg.seed, cfg.max_iter, cfg.tol, cfg.n_init, name=f"class {c} {side}")
    score = torch.softmax(fc(km.means.to(fc.weight.dtype)), dim=1)[:, c]
    ok = score > cfg.mu_f if side == "fg" else score < cfg.mu_b
    fallback = not bool(ok.any())
    if fallback:
        best = int(score.argmax()) if side == "fg" else int(score.argmin())
        ok = torch.zeros_like(ok)
        ok[best] = True
        log.warning(
            "class %d: no %s prototype passes μ_%s; keeping the best one (score %.3f)",
            c, side, side[0], float(score[best]),
        )  # fmt: skip
    return km.means[ok].detach().cpu().float(), {
        "points": res.seen, "clustered": int(x.shape[0]), "dropped_zero": km.dropped,
        "kept": int(ok.sum()), "scores": [round(float(v), 4) for v in score],
        "iterations": km.iterations, "converged": km.converged, "inertia": km.inertia,
        "fallback": fallback,
    }  # fmt: skip


@torch.no_grad()  # no graphs: the stored vectors would keep every batch's alive
def build_prototypes(
    model: nn.Module,
    ds: Dataset,
    cfg: PrototypeConfig | None = None,
    layer: str | None = None,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    progress: Progress | None = None,
) -> Prototypes:
    """Prototypes of every class from the labelled images of ``ds`` (see the module docstring)."""
    cfg = cfg or PrototypeConfig()
    cfg.validate()
    progress = progress or NoProgress()
    (name, module), *rest = resolve_layers(model, layer)
    if rest:
        raise OptionError("layer", "prototypes take one target layer")
    was = model.training
    model.eval().to(device)
    acts: dict[str, torch.Tensor] = {}
    handle = module.register_forward_hook(lambda _m, _i, out: acts.__setitem__("f", out))
    gen = torch.Generator().manual_seed(cfg.seed)
    fc: nn.Linear | None = None
    fg: list[_Reservoir] = []
    bg: list[_Reservoir] = []
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False)
    progress.start(len(loader), "features")
    try:
        for batch in loader:
            logits = logits_of(model(batch["image"].to(device)))
            f = acts["f"]
            if fc is None:
                fc = find_classifier(model, f.shape[1], None)
                k_cls = logits.shape[1]
                log.info(
                    "prototypes: %d classes x FG/BG, at most %d vectors of %d channels each (%.1f GB bound)",
                    k_cls, cfg.max_points, f.shape[1], k_cls * 2 * 2 * cfg.max_points * f.shape[1] * 4 / 1e9,
                )  # fmt: skip
                fg = [_Reservoir(cfg.max_points, gen) for _ in range(k_cls)]
                bg = [_Reservoir(cfg.max_points, gen) for _ in range(k_cls)]
            sample, cls = positive_pairs(batch["label"].to(device))
            cams = class_masks(f, fc.weight, sample, cls, "relu-max")  # CAM_n = ReLU(w_n^T f) / max
            vec = f[sample].permute(0, 2, 3, 1)  # (P, h, w, C)
            is_fg = cams > cfg.tau
            for c in torch.unique(cls).tolist():  # one gather per class present in the batch
                sel = cls == c
                fg[c].add(vec[sel][is_fg[sel]])
                bg[c].add(vec[sel][~is_fg[sel]])
            progress.advance(1)
    finally:
        handle.remove()
        progress.close()
        model.train(was)
    if fc is None:
        raise CamkitError("the split is empty; nothing to build prototypes from")
    kept_fg: list[torch.Tensor] = []
    kept_bg: list[torch.Tensor] = []
    info: list[dict[str, Any]] = []
    for c in range(len(fg)):
        row: dict[str, Any] = {"class": c}
        for side, res, out in (("fg", fg[c], kept_fg), ("bg", bg[c], kept_bg)):
            kept, row[side] = _select(res, fc, c, side, cfg)
            out.append(kept)
        info.append(row)
    return Prototypes(
        kept_fg, kept_bg, name, cfg, {"classes": info, provenance.KEY: _provenance(model, ds, name)}
    )


def _provenance(model: nn.Module, ds: Dataset, layer: str) -> dict[str, Any]:
    """What made a prototype set: the data config and split :func:`camkit.data.datasets.build_split`
    attached to ``ds``, its fingerprint, the weights' hash and the layer."""
    data, split = getattr(ds, "source_config", (None, None))
    return provenance.record(data, split, ds, {"weights": provenance.weights_hash(model)}, layer=layer)
