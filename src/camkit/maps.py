"""Map sets: extract CAMs over a dataset, save them as compressed npz, load them back.

A map set keeps the raw maps at feature resolution (N, h, w) float32, plus per image the
target class, its softmax score, the label, the prediction and the image id. Normalizing
and upsampling happen when the maps are scored or drawn, so nothing is lost on disk.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from camkit.errors import CamkitError
from camkit.io import atomic_path
from camkit.methods.cam import class_activation_map
from camkit.models.camnet import CAMNet
from camkit.progress import NoProgress, Progress

MapFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]

#: activation-only methods of a GAP-linear CAMNet: (features, class weights, classes) -> maps
CAMNET_METHODS: dict[str, MapFn] = {
    "cam": lambda f, w, c: class_activation_map(f, w, c),
    "softmax-cam": lambda f, w, c: class_activation_map(f, w, c, softmax_weights=True),
}
TARGETS = ("label", "pred")


@dataclass
class MapSet:
    maps: torch.Tensor  # (N, h, w) float32, raw
    targets: torch.Tensor  # (N,) int64: the class each map explains
    scores: torch.Tensor  # (N,) float32: softmax probability of the target
    labels: torch.Tensor  # (N,) int64 (-1 unknown)
    preds: torch.Tensor  # (N,) int64
    ids: list[str]
    image_size: tuple[int, int]
    method: str = "cam"
    meta: dict[str, object] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)


def resolve_targets(
    target: str | int, labels: torch.Tensor, preds: torch.Tensor, num_classes: int
) -> torch.Tensor:
    """Target class per sample: the label (the prediction where it is unknown), the prediction, or a class id."""
    if target == "label":
        return torch.where(labels >= 0, labels, preds)
    if target == "pred":
        return preds
    try:
        cls = int(target)
    except (TypeError, ValueError):
        raise CamkitError(f"--target {target}: use label, pred or a class id") from None
    if not 0 <= cls < num_classes:
        raise CamkitError(f"--target {cls}: class id out of range 0..{num_classes - 1}")
    return torch.full_like(preds, cls)


@torch.no_grad()
def extract(
    model: CAMNet,
    ds: Dataset,
    method: str = "cam",
    target: str | int = "label",
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    progress: Progress | None = None,
    ids: list[str] | None = None,
) -> MapSet:
    """Maps of ``method`` for every image of ``ds`` (model in eval mode, restored after)."""
    if method not in CAMNET_METHODS:
        raise CamkitError(f"--method {method}: unknown; choose one of {', '.join(CAMNET_METHODS)}")
    if len(ds) == 0:
        raise CamkitError("the split is empty; nothing to extract")
    fn = CAMNET_METHODS[method]
    progress = progress or NoProgress()
    was = model.training
    model.eval()
    model.to(device)
    out: dict[str, list[torch.Tensor]] = {k: [] for k in ("maps", "targets", "scores", "labels", "preds")}
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False)
    progress.start(len(loader), f"extract {method}")
    size = None
    for batch in loader:
        x = batch["image"].to(device)
        size = tuple(x.shape[-2:])
        o = model(x)
        labels = batch["label"].to(device)
        preds = o.logits.argmax(1)
        tgt = resolve_targets(target, labels, preds, model.config.num_classes)
        out["maps"].append(fn(o.features, model.classifier.weight, tgt).float())
        out["targets"].append(tgt)
        out["scores"].append(o.logits.softmax(1).gather(1, tgt[:, None])[:, 0])
        out["labels"].append(labels)
        out["preds"].append(preds)
        progress.advance(1)
    progress.close()
    model.train(was)
    cat = {k: torch.cat(v) for k, v in out.items()}
    ids = ids or list(getattr(ds, "ids", [f"{i:06d}" for i in range(len(ds))]))
    assert size is not None
    return MapSet(ids=ids, image_size=size, method=method, **cat)  # type: ignore[arg-type]


def save_maps(path: str | os.PathLike[str], ms: MapSet) -> None:
    """Write a map set as compressed npz, atomically (an existing file survives a failure)."""
    with atomic_path(path) as tmp:
        np.savez_compressed(
            tmp,
            maps=ms.maps.detach().cpu().numpy().astype(np.float32),
            targets=ms.targets.cpu().numpy(),
            scores=ms.scores.cpu().numpy(),
            labels=ms.labels.cpu().numpy(),
            preds=ms.preds.cpu().numpy(),
            image_id=np.array(ms.ids),
            image_size=np.array(ms.image_size),
            method=np.array(ms.method),
            meta=np.array(json.dumps(ms.meta, default=str)),
        )


def load_maps(path: str | os.PathLike[str]) -> MapSet:
    path = Path(path)
    if not path.is_file():
        raise CamkitError(f"--maps {path}: file not found; create it with camkit extract")
    try:
        with np.load(path, allow_pickle=False) as z:
            maps = torch.from_numpy(z["maps"])
            if not torch.isfinite(maps).all():
                raise CamkitError(f"--maps {path}: the maps contain NaN or Inf; extract them again")
            return MapSet(
                maps=maps,
                targets=torch.from_numpy(z["targets"]),
                scores=torch.from_numpy(z["scores"]),
                labels=torch.from_numpy(z["labels"]),
                preds=torch.from_numpy(z["preds"]),
                ids=[str(s) for s in z["image_id"]],
                image_size=tuple(int(v) for v in z["image_size"]),  # type: ignore[arg-type]
                method=str(z["method"]),
                meta=json.loads(str(z["meta"])),
            )
    except (OSError, ValueError, KeyError) as e:
        raise CamkitError(
            f"--maps {path}: not a camkit map file ({e.__class__.__name__}); create it with camkit extract"
        ) from None
