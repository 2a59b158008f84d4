"""Map methods: one module each, registered by name (every module here is found by the
registry, :mod:`camkit.methods.registry`; the names below are re-exported for convenience).

>>> from camkit.methods import get_method
>>> with get_method("grad-cam")(model, "layer4") as m:
...     result = m(images, targets="pred")
"""

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
from camkit.methods.registry import METHODS, method_options, option_methods, register
from camkit.methods.scorecam import ScoreCAM
from camkit.methods.softmax_cam import SoftmaxCAM
from camkit.methods.xgradcam import XGradCAM


def get_method(name: str) -> type[CAMMethod]:
    """The method class registered as ``name`` (one-line error with close names otherwise)."""
    return METHODS.get(name)


def method_names() -> list[str]:
    return METHODS.names()


__all__ = [
    "CAM",
    "METHODS",
    "method_options",
    "option_methods",
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
