"""Map methods: one module each, registered by name.

>>> from camkit.methods import get_method
>>> with get_method("grad-cam")(model, "layer4") as m:
...     result = m(images, targets="pred")
"""

import inspect
from typing import Any

from camkit.methods import (  # noqa: F401  (importing registers each method)
    ablationcam,
    cam,
    eigencam,
    gradcam,
    gradcampp,
    hirescam,
    layercam,
    lpcam,
    nwc_cam,
    recam,
    scorecam,
    softmax_cam,
    xgradcam,
)
from camkit.methods.ablationcam import AblationCAM
from camkit.methods.base import CAMMethod, CAMResult, expand_targets, resolve_layers
from camkit.methods.cam import CAM, all_class_maps, class_activation_map
from camkit.methods.eigencam import EigenCAM
from camkit.methods.gradcam import GradCAM
from camkit.methods.gradcampp import GradCAMPlusPlus
from camkit.methods.hirescam import HiResCAM
from camkit.methods.layercam import LayerCAM
from camkit.methods.lpcam import LPCAM, LPCAMF
from camkit.methods.nwc_cam import NWCCAM
from camkit.methods.recam import ReCAM
from camkit.methods.registry import METHODS, register
from camkit.methods.scorecam import ScoreCAM
from camkit.methods.softmax_cam import SoftmaxCAM
from camkit.methods.xgradcam import XGradCAM


def get_method(name: str) -> type[CAMMethod]:
    """The method class registered as ``name`` (one-line error with close names otherwise)."""
    return METHODS.get(name)


def method_names() -> list[str]:
    return METHODS.names()


def method_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The part of ``options`` that method ``name``'s constructor takes (e.g. ``prototypes``
    only for LPCAM), so one set of command-line options can drive several methods."""
    accepted: set[str] = set()
    for klass in get_method(name).__mro__:
        init = klass.__dict__.get("__init__")
        if init is not None:
            accepted |= {
                p.name
                for p in inspect.signature(init).parameters.values()
                if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            }
    return {k: v for k, v in options.items() if k in accepted}


__all__ = [
    "CAM",
    "METHODS",
    "NWCCAM",
    "ReCAM",
    "AblationCAM",
    "CAMMethod",
    "CAMResult",
    "EigenCAM",
    "GradCAM",
    "GradCAMPlusPlus",
    "HiResCAM",
    "LPCAM",
    "LPCAMF",
    "LayerCAM",
    "ScoreCAM",
    "SoftmaxCAM",
    "XGradCAM",
    "all_class_maps",
    "class_activation_map",
    "expand_targets",
    "get_method",
    "method_names",
    "method_options",
    "register",
    "resolve_layers",
]
