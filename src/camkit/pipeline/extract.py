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
from camkit.methods.base import LayerSpec, Targets

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
    **method_kw: Any,
) -> MapSet:
    """Maps of ``method`` for every image of ``ds``, one target per image.

    The model is put in eval mode for the run and restored after. Single-layer methods keep
    their raw maps at feature resolution; fused multi-layer maps are kept at input size.
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
                if labels.ndim == 2:  # multi-label: every class present, one dense (K, h, w) stack
                    if target != "label":
                        raise OptionError(
                            "target",
                            "multi-label data is mapped for every class present; use {target}",
                            target,
                            refs={"target": "label"},
                        )
                    r = m(x, labels)
                    _check_finite(r, batch, ds)
                    low = r.low[0] if len(r.low) == 1 else r.maps
                    k = r.logits.shape[1]
                    dense = low.new_zeros((x.shape[0], k, *low.shape[-2:]))
                    dense[r.sample, r.target] = low.float()
                    sc = r.logits.new_zeros((x.shape[0], k))
                    sc[r.sample, r.target] = r.score
                    out["maps"].append(dense)
                    out["targets"].append(labels > 0.5)
                    out["scores"].append(sc)
                    out["labels"].append(labels)
                    out["preds"].append(r.logits > 0)
                    progress.advance(1)
                    continue
                tgt = resolve_targets(target, labels)
                if tgt is None:
                    with torch.no_grad():
                        tgt = torch.where(labels >= 0, labels, logits_of(model(x)).argmax(1))
                r = m(x, tgt)
                _check_finite(r, batch, ds)
                preds = r.logits.argmax(1)
                out["maps"].append((r.low[0] if len(r.low) == 1 else r.maps).float())
                out["targets"].append(r.target)
                out["scores"].append(r.score)
                out["labels"].append(labels)
                out["preds"].append(preds)
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
    )


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
