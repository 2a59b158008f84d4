"""Sharded, resumable extraction: one map file per image, each written exactly once.

For datasets of hundreds of thousands of images. The split is cut into batches in order
(batch k = images k·B … (k+1)·B - 1, as a single-process run would batch them); under
torchrun batch k goes to rank k mod N. Each image's maps go to ``OUT/<id>.npz`` through a
temporary file and a rename, so a file either exists whole or not at all. A re-run skips
every image whose file exists, so a killed job resumes with nothing lost or duplicated;
a batch with some files missing is recomputed whole (same batch, same numbers) and only
the missing files are written. With the same batch size and thread count, the maps are
bit-identical whatever the number of ranks. ``index.json`` (rank 0, at the end) lists the
ids in split order; :func:`gather` reads the folder back as one :class:`~camkit.core.mapfile.MapSet`.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, Subset

from camkit.core import runs
from camkit.core.dist import World, all_sum, barrier
from camkit.core.errors import CamkitError, OptionError
from camkit.core.io import atomic_path, write_json
from camkit.core.mapfile import MapSet
from camkit.core.progress import NoProgress, Progress
from camkit.data import dataset_len
from camkit.pipeline.extract import extract

log = logging.getLogger(__name__)


def file_name(image_id: str) -> str:
    """A flat, safe file name for an image id (``class/name`` -> ``class__name.npz``)."""
    return image_id.replace(os.sep, "__").replace("/", "__") + ".npz"


def extract_shards(
    model: nn.Module,
    ds: Dataset,
    method: str,
    out_dir: str | os.PathLike[str],
    target: str | int = "label",
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    progress: Progress | None = None,
    ids: list[str] | None = None,
    world: World | None = None,
    meta: dict[str, Any] | None = None,
    **method_kw: Any,
) -> dict[str, int]:
    """Write this rank's share of the maps of ``ds`` under ``out_dir``; returns the counts over
    all ranks: ``written``, ``skipped`` (already on disk) and ``total``."""
    world = world or World()
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OptionError(
            "shards.out_dir", f"cannot create it ({e.strerror}); choose a writable folder", out
        ) from None
    ids = ids or list(getattr(ds, "ids", [f"{i:06d}" for i in range(dataset_len(ds))]))
    if len(set(ids)) != len(ids):
        raise CamkitError("image ids repeat in this split; per-image files need unique ids")
    n = dataset_len(ds)
    batches = [k for k in range(-(-n // batch_size)) if k % world.size == world.rank]
    progress = progress or NoProgress()
    progress.start(len(batches), f"extract {method} (rank {world.rank} of {world.size})")
    written = skipped = 0
    for k in batches:
        idx = list(range(k * batch_size, min(n, (k + 1) * batch_size)))
        missing = [idx[j] for j in runs.missing([out / file_name(ids[i]) for i in idx])]
        skipped += len(idx) - len(missing)
        if missing:
            ms = extract(
                model,
                Subset(ds, idx),
                method,
                target,
                len(idx),
                device,
                ids=[ids[i] for i in idx],
                **method_kw,
            )
            for j, i in enumerate(idx):
                if i in missing:
                    _write(out / file_name(ids[i]), ms, j)
                    written += 1
        progress.advance(1)
    progress.close()
    written, skipped = (int(v) for v in all_sum(world, [written, skipped]))
    barrier(world)
    if world.main:
        write_json(
            out / "index.json",
            {"method": method, "ids": ids, "files": [file_name(i) for i in ids], "meta": meta or {}},
        )
    log.info("%s: %d maps written, %d already there, %d in all", out, written, skipped, n)
    return {"written": written, "skipped": skipped, "total": n}


def _write(path: Path, ms: MapSet, j: int) -> None:
    with atomic_path(path) as tmp:
        np.savez(
            tmp,
            maps=ms.maps[j].detach().cpu().numpy().astype(np.float32),
            target=ms.targets[j].cpu().numpy(),
            score=ms.scores[j].cpu().numpy(),
            label=ms.labels[j].cpu().numpy(),
            pred=ms.preds[j].cpu().numpy(),
            image_size=np.array(ms.image_size),
        )


def gather(out_dir: str | os.PathLike[str]) -> MapSet:
    """The per-image files of ``out_dir`` as one map set, in split order."""
    out = Path(out_dir)
    index = out / "index.json"
    if not index.is_file():
        raise OptionError(
            "shards.out_dir", "no index.json; the extraction has not finished, rerun it to resume", out
        )
    info = json.loads(index.read_text())
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in ("maps", "target", "score", "label", "pred")}
    size = (0, 0)
    for f in info["files"]:
        try:
            with np.load(out / f, allow_pickle=False) as z:
                for k in parts:
                    parts[k].append(torch.from_numpy(z[k]))
                size = (int(z["image_size"][0]), int(z["image_size"][1]))
        except (OSError, ValueError, KeyError) as e:
            raise CamkitError(
                f"{out / f}: unreadable ({e.__class__.__name__}); delete it and rerun the extraction"
            ) from None
    return MapSet(
        maps=torch.stack(parts["maps"]), targets=torch.stack(parts["target"]), scores=torch.stack(parts["score"]),
        labels=torch.stack(parts["label"]), preds=torch.stack(parts["pred"]), ids=list(info["ids"]),
        image_size=size, method=info["method"], meta=info.get("meta", {}),
    )  # fmt: skip
