"""Checkpoints: safetensors weights plus JSON metadata, written atomically.

A checkpoint carries the model config, the class names and the camkit version, so it can
be rebuilt with no other file. Loading never unpickles code: weights come from
safetensors, and resume states are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

import camkit
from camkit.core.errors import CamkitError, OptionError
from camkit.core.io import atomic_path
from camkit.models.camnet import CAMNet, ModelConfig

META_KEY = "camkit"


def save_checkpoint(
    path: str | os.PathLike[str], model: CAMNet, class_names: list[str], **extra: Any
) -> None:
    """Write ``model``'s weights and metadata to ``path`` (a .safetensors file), atomically."""
    meta = {
        "camkit_version": camkit.__version__,
        "model": asdict(model.config),
        "class_names": list(class_names),
        **extra,
    }
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={META_KEY: json.dumps(meta, default=str)})


def read_metadata(path: str | os.PathLike[str], option: str = "checkpoint") -> dict[str, Any]:
    """The metadata dict of a camkit checkpoint; a one-line error naming ``option`` (the
    parameter that gave the path) for anything else."""
    path = Path(path)
    if not path.is_file():
        raise OptionError(option, "file not found; pass a best.safetensors from a run folder", path)
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise OptionError(
            option, f"not a safetensors checkpoint ({e}); pass a best.safetensors", path
        ) from None
    if META_KEY not in meta:
        raise OptionError(option, "has no camkit metadata; it was not written by camkit", path)
    return json.loads(meta[META_KEY])


def _config_from_meta(meta: dict[str, Any]) -> ModelConfig:
    known = {f.name for f in fields(ModelConfig)}
    cfg = ModelConfig(**{k: v for k, v in meta["model"].items() if k in known})
    cfg.pretrained = False  # the weights come from the checkpoint
    cfg.weights = None
    return cfg


def describe_mismatch(found: dict[str, object], expected: dict[str, object]) -> str:
    return "; ".join(
        f"{k} is {found.get(k)!r}, expected {expected.get(k)!r}"
        for k in expected
        if found.get(k) != expected.get(k)
    )


def check_run_weights(meta: dict[str, Any], expect: ModelConfig, path: str | os.PathLike[str]) -> None:
    """Refuse a run folder whose weights (``meta``, read from ``path``) are not the model its
    config.json describes (``expect``): the folder holds another run's weights."""
    diff = describe_mismatch(_config_from_meta(meta).arch(), expect.arch())
    if diff:
        raise CamkitError(
            f"{path}: not the model of the run's config.json ({diff}); the folder holds another run's "
            "weights: train the run again, or pass the checkpoint that belongs to it"
        )


def load_checkpoint(
    path: str | os.PathLike[str], expect: ModelConfig | None = None, device: str | torch.device = "cpu"
) -> tuple[CAMNet, dict[str, Any]]:
    """Rebuild the CAMNet stored at ``path``.

    With ``expect``, the checkpoint must match its architecture (backbone, layer, head and
    class count); otherwise a one-line error says exactly what differs.
    """
    meta = read_metadata(path)
    cfg = _config_from_meta(meta)
    if expect is not None:
        diff = describe_mismatch(cfg.arch(), expect.arch())
        if diff:
            raise OptionError("checkpoint", f"built for another model: {diff}", path)
    model = CAMNet(cfg)
    state = load_file(str(path))
    own = model.state_dict()
    bad = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    missing = [k for k in own if k not in state]
    if bad or missing:
        what = (
            f"{bad[0]} has shape {tuple(state[bad[0]].shape)}, expected {tuple(own[bad[0]].shape)}"
            if bad
            else f"{missing[0]} is missing"
        )
        raise OptionError(
            "checkpoint", f"weights do not fit {cfg.backbone}:{cfg.arch()['layer']} ({what})", path
        )
    _check_finite(state, path, "checkpoint")
    model.load_state_dict(state, strict=False)
    return model.to(device), meta


def _check_finite(state: dict[str, torch.Tensor], path: str | os.PathLike[str], opt: str) -> None:
    """A one-line error naming the first weight tensor holding NaN or Inf."""
    for k, v in state.items():
        if v.is_floating_point() and not bool(torch.isfinite(v).all()):
            raise OptionError(opt, f"weight {k} holds NaN or Inf; use an earlier checkpoint of the run", path)


def load_state(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a resume state (``last.pt``) safely."""
    try:
        with warnings.catch_warnings():  # torch warns about a foreign file's pickle protocol
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise OptionError(
            "resume", f"no resume state at {path}; train without {{resume}} first", refs={"resume": True}
        ) from None
    except Exception as e:  # noqa: BLE001 - corrupted or foreign files fail in many ways
        raise CamkitError(
            f"{path}: cannot read the resume state ({e.__class__.__name__}); delete it to start over"
        ) from None


def save_state(path: str | os.PathLike[str], state: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def init_from_checkpoint(model: CAMNet, path: str | os.PathLike[str]) -> list[str]:
    """Start ``model`` from the weights of a camkit checkpoint (e.g. ReCAM fine-tuning a
    converged CAM model). Backbone, layer and class count must match; parameters the
    checkpoint lacks (FC2) keep their fresh initialization and are returned by name."""
    meta = read_metadata(path, "init")
    found = _config_from_meta(meta).arch()
    want = model.config.arch()
    diff = describe_mismatch(
        {k: found[k] for k in ("backbone", "layer", "num_classes")},
        {k: want[k] for k in ("backbone", "layer", "num_classes")},
    )
    if diff:
        raise OptionError("init", f"built for another model: {diff}", path)
    state = load_file(str(path))
    own = model.state_dict()
    bad = [k for k in state if k in own and tuple(state[k].shape) != tuple(own[k].shape)]
    if bad:
        raise OptionError(
            "init",
            f"{bad[0]} has shape {tuple(state[bad[0]].shape)}, expected {tuple(own[bad[0]].shape)}",
            path,
        )
    _check_finite(state, path, "init")
    fresh = [k for k in own if k not in state]
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
    return fresh
