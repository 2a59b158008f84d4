"""Extraction: run a map method over a dataset into a :class:`~camkit.core.mapfile.MapSet`."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from camkit.core.errors import CamkitError, OptionError
from camkit.core.mapfile import MapSet
from camkit.core.ops import logits_of, spatial_size
from camkit.core.progress import NoProgress, Progress
from camkit.data import dataset_len
from camkit.methods import get_method
from camkit.methods.base import CAMMethod, CAMResult, LayerSpec, Targets

TARGETS = ("label", "pred")


def resolve_targets(target: str | int, labels: torch.Tensor) -> Targets:
    """The method target for a batch: the labels (the prediction where a label is unknown,
    i.e. -1), the prediction ("pred"), or one class id for every image."""
    if target == "label":
        if bool((labels >= 0).all()):
            return labels
        if bool((labels < 0).all()):
            return "pred"
        return None  # mixed: resolved per image after the forward pass
    if target == "pred":
        return "pred"
    try:
        return int(target)
    except (TypeError, ValueError):
        raise OptionError("target", "use label, pred or a class id", target) from None


def extract(
    model: nn.Module,
    ds: Dataset,
    method: str = "cam",
    target: str | int = "label",
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    progress: Progress | None = None,
    ids: list[str] | None = None,
    layers: LayerSpec = None,
    describe: bool = True,
    **method_kw: Any,
) -> MapSet:
    """Maps of ``method`` for every image of ``ds``, one target per image.

    The model is put in eval mode for the run and restored after. Single-layer methods keep
    their raw maps at feature resolution; fused multi-layer maps are kept at input size.
    ``describe``: record the provenance in ``meta`` (see :func:`map_meta`; off, ``meta`` is empty).
    """
    cls = get_method(method)
    if dataset_len(ds) == 0:
        raise CamkitError("the split is empty; nothing to extract")
    progress = progress or NoProgress()
    was = model.training
    model.eval()
    model.to(device)
    out: dict[str, list[torch.Tensor]] = {k: [] for k in ("maps", "targets", "scores", "labels", "preds")}
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False)
    progress.start(len(loader), f"extract {method}")
    size: tuple[int, int] | None = None
    try:
        with (
            cls(model, layers, batch_size=batch_size, **method_kw) as m,
            torch.set_grad_enabled(cls.uses_gradients),
        ):
            for batch in loader:
                x = batch["image"].to(device)
                size = spatial_size(x)
                labels = batch["label"].to(device)
                rows = (
                    _class_rows(m, x, labels, target)
                    if labels.ndim == 2
                    else _target_rows(m, model, x, labels, target)
                )
                _check_finite(rows[0], batch, ds)
                for k, v in zip(("maps", "targets", "scores", "labels", "preds"), rows[1:], strict=True):
                    out[k].append(v)
                progress.advance(1)
    finally:
        progress.close()
        model.train(was)
    cat = {k: torch.cat(v) for k, v in out.items()}
    ids = ids or list(getattr(ds, "ids", [f"{i:06d}" for i in range(dataset_len(ds))]))
    assert size is not None
    return MapSet(
        maps=cat["maps"],
        targets=cat["targets"],
        scores=cat["scores"],
        labels=cat["labels"],
        preds=cat["preds"],
        ids=ids,
        image_size=size,
        method=method,
        meta=map_meta(model, ds, method, target, layers, ids) if describe else {},
    )


def map_meta(
    model: nn.Module,
    ds: Dataset,
    method: str,
    target: str | int,
    layers: LayerSpec,
    ids: list[str] | None = None,
    model_info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The metadata of a map set made by ``model`` over ``ds``: its provenance record (the data
    config and split that :func:`camkit.data.datasets.build_split` attached to ``ds``, the
    split's fingerprint, the weights' hash plus ``model_info``, the method, target and layers),
    and the older flat ``data`` and ``split`` keys."""
    from camkit.core import provenance

    data, split = getattr(ds, "source_config", (None, None))
    model_desc = {
        "weights": provenance.weights_hash(model),
        "class": type(model).__name__,
        **(model_info or {}),
    }
    rec = provenance.record(data, split, ds, model_desc, ids, method=method, target=target, layers=layers)
    meta: dict[str, Any] = {provenance.KEY: rec, "split": split}
    if data is not None:
        meta["data"] = rec["data"]["config"]
    return meta


Rows = tuple[CAMResult, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def _low(r: CAMResult) -> torch.Tensor:
    """The maps kept on disk: the raw (N, h, w) maps of one layer, or the fused (N, H, W) maps."""
    return r.low[0] if len(r.low) == 1 else r.maps


def _target_rows(
    m: CAMMethod, model: nn.Module, x: torch.Tensor, labels: torch.Tensor, target: str | int
) -> Rows:
    """One map per image (labels (B,) class ids, -1 unknown): the result, then maps (B, h, w),
    targets (B,), scores (B,), labels (B,) and predictions (B,)."""
    tgt = resolve_targets(target, labels)
    if tgt is None:  # some labels unknown: their prediction is the target
        with torch.no_grad():
            tgt = torch.where(labels >= 0, labels, logits_of(model(x)).argmax(1))
    r = m(x, tgt)
    return r, _low(r).float(), r.target, r.score, labels, r.logits.argmax(1)


def _class_rows(m: CAMMethod, x: torch.Tensor, labels: torch.Tensor, target: str | int) -> Rows:
    """Multi-label data (labels (B, K) multi-hot): a dense stack of every present class's map,
    maps (B, K, h, w) (zeros for absent classes), targets (B, K) bool, scores (B, K), labels,
    and predictions (B, K) bool (logit > 0)."""
    if target != "label":
        raise OptionError(
            "target",
            "multi-label data is mapped for every class present; use {target}",
            target,
            refs={"target": "label"},
        )
    r = m(x, labels)
    low = _low(r)
    k = r.logits.shape[1]
    dense = low.new_zeros((x.shape[0], k, *low.shape[-2:]))
    dense[r.sample, r.target] = low.float()
    sc = r.logits.new_zeros((x.shape[0], k))
    sc[r.sample, r.target] = r.score
    return r, dense, labels > 0.5, sc, labels, r.logits > 0


def _check_finite(r: Any, batch: dict[str, Any], ds: Dataset) -> None:
    """A one-line error naming the images whose logits or maps are not finite (NaN or Inf in
    the inputs or the weights), so no wrong map reaches the disk."""
    bad = ~torch.isfinite(r.logits).all(1)
    bad[r.sample[~torch.isfinite(r.maps.flatten(1)).all(1)]] = True
    if bool(bad.any()):
        ids = getattr(ds, "ids", None)
        rows = torch.nonzero(bad, as_tuple=True)[0][:3]
        idx = [int(batch["index"][i]) if "index" in batch else int(i) for i in rows]
        names = ", ".join(ids[i] if ids else str(i) for i in idx)
        raise CamkitError(
            f"non-finite logits or maps for {int(bad.sum())} image(s) (first: {names}); check those inputs "
            "and the checkpoint for NaN or Inf"
        )
