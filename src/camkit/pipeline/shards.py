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

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, Subset

from camkit.core import provenance, runs
from camkit.core.dist import World, all_sum, barrier, broadcast_object
from camkit.core.errors import CamkitError, OptionError
from camkit.core.io import atomic_path, ensure_folder, write_json
from camkit.core.mapfile import MapSet
from camkit.core.progress import NoProgress, Progress
from camkit.data import dataset_len
from camkit.pipeline.extract import extract, map_meta

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
    ids = ids or list(getattr(ds, "ids", [f"{i:06d}" for i in range(dataset_len(ds))]))
    if len(set(ids)) != len(ids):
        raise CamkitError("image ids repeat in this split; per-image files need unique ids")
    meta = dict(meta or map_meta(model, ds, method, target, method_kw.get("layers"), ids))
    manifest = _manifest(meta, method, target, method_kw)
    with _claimed(out, manifest, world):
        counts = _extract_batches(
            model, ds, method, out, target, batch_size, device, progress, ids, world, **method_kw
        )
        if world.main:
            write_json(
                out / "index.json",
                {"method": method, "ids": ids, "files": [file_name(i) for i in ids], "meta": meta},
            )
    log.info(
        "%s: %d maps written, %d already there, %d in all",
        out,
        counts["written"],
        counts["skipped"],
        counts["total"],
    )
    return counts


MANIFEST = "shards.json"
LOCK = ".lock"


def _manifest(
    meta: dict[str, Any], method: str, target: str | int, method_kw: dict[str, Any]
) -> dict[str, Any]:
    """What the maps of a shard folder depend on: model weights, method, its options, target,
    layers, and the data (its config, split and fingerprint)."""
    rec = meta.get(provenance.KEY) or {}
    data = rec.get("data") or {}
    config = data.get("config")
    return {
        "camkit": provenance.camkit_version(),
        "method": method,
        "target": str(target),
        "options": {k: str(v) for k, v in sorted(method_kw.items())},
        "model": rec.get("model") or {},
        "data": {
            "config": {k: v for k, v in config.items() if k not in provenance.LOCATION_FIELDS}
            if config
            else None,
            "split": data.get("split"),
            "fingerprint": data.get("fingerprint"),
        },
    }


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between two manifests, in words (the model is its weights' hash)."""
    out = []
    for k in ("method", "target"):
        if old.get(k) != new.get(k):
            out.append(f"{k} {old.get(k)} there, {new.get(k)} now")
    o_old, o_new = old.get("options") or {}, new.get("options") or {}
    for k in dict.fromkeys([*o_old, *o_new]):
        if o_old.get(k) != o_new.get(k):
            out.append(f"{k} {o_old.get(k)} there, {o_new.get(k)} now")
    w_old, w_new = (old.get("model") or {}).get("weights"), (new.get("model") or {}).get("weights")
    if w_old != w_new:
        src = (old.get("model") or {}).get("source")
        out.append(f"model weights {w_old} there{f' (from {src})' if src else ''}, {w_new} now")
    d_old, d_new = old.get("data") or {}, new.get("data") or {}
    if d_old.get("split") != d_new.get("split"):
        out.append(f"split {d_old.get('split')} there, {d_new.get('split')} now")
    for f, a, b in provenance.data_differences(d_old.get("config") or {}, d_new.get("config") or {}):
        out.append(f"data {f} {a} there, {b} now")
    fp = provenance.fingerprint_differences(d_old.get("fingerprint") or {}, d_new.get("fingerprint") or {})
    if fp:
        out.append("the images differ (" + ", ".join(fp) + ")")
    return out


@contextlib.contextmanager
def _claimed(out: Path, manifest: dict[str, Any], world: World) -> Iterator[None]:
    """Hold ``out`` for this extraction: rank 0 creates it, takes its lock (another job writing
    there is refused, not mixed in) and checks or writes its manifest; every rank learns the
    outcome. The lock is released when the body ends."""
    err: str | None = None
    fh = None
    if world.main:
        try:
            ensure_folder(out)
            fh = _lock(out)
            _check_manifest(out, manifest)
        except CamkitError as e:
            err = str(e)
            if fh is not None:
                fh.close()
                fh = None
    err = broadcast_object(world, err)
    if err:
        raise CamkitError(err)
    try:
        yield
        barrier(world)
    finally:
        if fh is not None:
            fh.close()


def _lock(out: Path) -> Any:
    """An open handle on ``out/.lock`` holding an exclusive lock (where the platform has flock)."""
    try:
        fh = open(out / LOCK, "a+")  # noqa: SIM115 - held until the extraction ends
    except OSError as e:
        raise CamkitError(f"cannot write in {out}: {e.strerror}; choose a writable folder") from None
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock
        return fh
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        raise CamkitError(
            f"{out}: another extraction is writing there now; wait for it to finish or choose another folder"
        ) from None
    return fh


def _check_manifest(out: Path, manifest: dict[str, Any]) -> None:
    path = out / MANIFEST
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError):
            raise CamkitError(f"{path}: unreadable; delete the folder {out} and extract again") from None
        diff = _differences(old, manifest)
        if diff:
            raise CamkitError(
                f"{out} holds maps of another extraction ({'; '.join(diff)}); choose another folder or delete it"
            )
        return
    if any(out.glob("*.npz")):
        log.warning(
            "%s holds map files but no %s (made by an older camkit): they are reused unchecked", out, MANIFEST
        )
    write_json(path, manifest)


def _extract_batches(
    model: nn.Module,
    ds: Dataset,
    method: str,
    out: Path,
    target: str | int,
    batch_size: int,
    device: torch.device | str,
    progress: Progress | None,
    ids: list[str],
    world: World,
    **method_kw: Any,
) -> dict[str, int]:
    """This rank's batches: the missing files of each written; counts over all ranks."""
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
                describe=False,
                **method_kw,
            )
            for j, i in enumerate(idx):
                if i in missing:
                    _write(out / file_name(ids[i]), ms, j)
                    written += 1
        progress.advance(1)
    progress.close()
    written, skipped = (int(v) for v in all_sum(world, [written, skipped]))
    return {"written": written, "skipped": skipped, "total": n}


def _write(path: Path, ms: MapSet, j: int) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(
            fh,
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
