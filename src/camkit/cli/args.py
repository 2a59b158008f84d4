"""Shared argument groups: data, model and training options come from the config dataclasses
(``camkit.cli.options``); the method, layer, device and source arguments are declared here once
for every command."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from camkit.cli.options import add_dataclass_args, apply_args
from camkit.core.errors import CamkitError

#: method-specific options: constructor keyword -> (flag, argparse keywords)
METHOD_FLAGS: dict[str, tuple[str, dict[str, Any]]] = {
    "recam_weights": ("--recam-weights", {
        "help": "recam: CAM weights from FC1 (w), FC2 (w2), w+w2 (sum) or w*w2 (prod) (default: prod)"}),
    "prototypes": ("--prototypes", {"help": "lpcam/lpcam-f: a prototype file from camkit prototypes"}),
    "adv_steps": ("--adv-steps", {"type": int, "help": "advcam: climbing steps K (default: 27)"}),
    "adv_xi": ("--adv-xi", {"type": float, "help": "advcam: step size xi (default: 0.08)"}),
    "adv_lam": ("--adv-lam", {"type": float, "help": "advcam: restriction weight lambda (default: 7)"}),
    "adv_threshold": ("--adv-threshold", {"type": float, "help": "advcam: restriction mask threshold tau (default: 0.5)"}),
}  # fmt: skip


def add_data_args(p: argparse.ArgumentParser) -> None:
    from camkit.data.datasets import DataConfig

    add_dataclass_args(p.add_argument_group("data"), DataConfig)


def add_model_args(p: argparse.ArgumentParser) -> None:
    from camkit.models.camnet import ModelConfig

    add_dataclass_args(p.add_argument_group("model"), ModelConfig)


def add_train_args(p: argparse.ArgumentParser) -> None:
    from camkit.train.config import RunConfig, TrainConfig

    g = p.add_argument_group("training")
    add_dataclass_args(g, TrainConfig)
    add_dataclass_args(g, RunConfig, only=("mode",))
    g.add_argument("--config", help="a JSON run config (e.g. from recipes/); flags given here override it")


def add_run_args(p: argparse.ArgumentParser) -> None:
    """Data, model and training options: a whole run config."""
    add_data_args(p)
    add_model_args(p)
    add_train_args(p)


def run_config(args: argparse.Namespace) -> Any:
    """The run config of --config (if given) with every flag the user gave applied."""
    from camkit.train.config import RunConfig

    cfg = RunConfig()
    if getattr(args, "config", None):
        path = Path(args.config)
        try:
            cfg = RunConfig.from_dict(json.loads(path.read_text()), strict=True)
        except FileNotFoundError:
            raise CamkitError(f"--config {path}: file not found") from None
        except IsADirectoryError:
            raise CamkitError(f"--config {path}: a folder; pass a JSON file (e.g. from recipes/)") from None
        except UnicodeDecodeError:
            raise CamkitError(f"--config {path}: not a text file; pass a JSON run config") from None
        except OSError as e:
            raise CamkitError(f"--config {path}: cannot read it ({e.strerror})") from None
        except (json.JSONDecodeError, TypeError) as e:
            raise CamkitError(f"--config {path}: not a camkit run config ({e})") from None
        except CamkitError as e:
            raise CamkitError(f"--config {path}: {e}") from None
    return apply_args(cfg, args)


def add_device_arg(p: argparse.ArgumentParser) -> None:
    """--device, as TrainConfig declares it, default auto."""
    from camkit.train.config import TrainConfig

    add_dataclass_args(p, TrainConfig, only=("device",), default="auto")


def add_layer_arg(p: argparse.ArgumentParser, several: bool = True) -> None:
    what = "target layer name(s), comma-separated" if several else "target layer"
    p.add_argument("--layer", help=f"{what}, as train names it (layer2) or in full (backbone.layer2) "
                   "(default: the backbone's output)")  # fmt: skip


def add_method_args(
    p: argparse.ArgumentParser, default: str, target: str | None = None, layers: bool = True
) -> None:
    """--method, --layer and --layer-weights (with ``layers``), --target (when ``target`` is its
    default) and the method-specific options (--recam-weights, --prototypes)."""
    from camkit.methods import method_names

    g = p.add_argument_group("map method")
    g.add_argument(
        "--method", default=default, help=f"one or more of: {', '.join(method_names())} (comma-separated)"
    )
    if layers:
        add_layer_arg(g)  # type: ignore[arg-type]
        g.add_argument("--layer-weights", help="fusion weights for several layers, e.g. 0.4,0.4,0.2")
    if target is not None:
        g.add_argument("--target", default=target, help="label (ground truth), pred, or a class id")
    from camkit.methods.recam import RECAM_WEIGHTS

    choices = {"recam_weights": RECAM_WEIGHTS}
    for option, (flag, kw) in METHOD_FLAGS.items():
        g.add_argument(flag, choices=choices.get(option), **kw)


def method_args(args: argparse.Namespace) -> tuple[list[str], list[str] | None, dict[str, Any]]:
    """(methods, layers, keyword options) from --method/--layer/--layer-weights and the
    method-specific options, each checked against the methods asked for."""
    from camkit.methods import get_method, option_methods

    methods = [m.strip() for m in args.method.split(",") if m.strip()]
    if not methods:
        raise CamkitError(f"--method {args.method!r}: name at least one method (camkit methods lists them)")
    for m in methods:
        get_method(m)  # unknown names fail before any work
    layers = [s.strip() for s in args.layer.split(",")] if getattr(args, "layer", None) else None
    kw: dict[str, Any] = {}
    for option, (flag, _) in METHOD_FLAGS.items():
        value = getattr(args, option, None)
        if value is None:
            continue
        owners = option_methods(option)
        if not set(owners) & set(methods):
            raise CamkitError(f"{flag} goes with --method {' or '.join(owners)}")
        kw[option] = value
    if "prototypes" in kw:
        from camkit.methods.prototypes import load_prototypes

        kw["prototypes"] = load_prototypes(kw["prototypes"])
    if getattr(args, "layer_weights", None):
        kw["layer_weights"] = _floats("--layer-weights", args.layer_weights)
    return methods, layers, kw


def _floats(flag: str, text: str) -> list[float]:
    try:
        return [float(w) for w in text.split(",")]
    except ValueError:
        raise CamkitError(f"{flag} {text}: expected comma-separated numbers, e.g. 0.4,0.4,0.2") from None


def add_source_args(p: argparse.ArgumentParser, split: str = "test") -> None:
    """--run / --checkpoint, --split and the data options."""
    p.add_argument("--run", help="a run folder (its config and best checkpoint)")
    p.add_argument("--checkpoint", help="a checkpoint file (.safetensors)")
    p.add_argument("--split", default=split, help="split to use")
    add_data_args(p)


def add_model_source_args(p: argparse.ArgumentParser) -> None:
    """--model (a pretrained ImageNet classifier) and --images (a folder) instead of a split."""
    p.add_argument(
        "--model",
        help="a pretrained ImageNet classifier instead of a checkpoint (efficientnet_lite0 works offline)",
    )
    p.add_argument("--images", help="a folder of images (instead of a dataset split)")
