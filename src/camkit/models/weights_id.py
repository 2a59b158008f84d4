"""Which architecture a backbone state-dict file holds, so that ``resnet50.pth`` given for a
resnet18 is refused by name instead of failing with a shape mismatch (or, for resnet34,
loading its first blocks and silently dropping the rest)."""

from __future__ import annotations

import logging
import os
import re

import torch
from torch import nn

from camkit.core.errors import OptionError

log = logging.getLogger(__name__)

#: architectures tried after the requested one's family, cheapest first
COMMON = ("resnet18", "resnet34", "resnet50", "resnet101", "vgg16", "mobilenet_v2", "efficientnet_b0",
          "densenet121", "convnext_tiny")  # fmt: skip
#: the ImageNet classifier of a torchvision model: never part of a cut backbone, so its class
#: count may differ (a fine-tuned file)
_HEADS = ("fc.", "classifier.")


def _shapes(state: dict[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state.items() if not k.startswith(_HEADS)}


def identify_weights(state: dict[str, torch.Tensor], family_of: str) -> str | None:
    """The torchvision architecture whose parameter names and shapes ``state`` has (the
    classifier's class count aside), trying ``family_of``'s family first; None if none fits.
    Candidates are built on the meta device: no memory, no weights."""
    import torchvision.models as tvm

    stem = re.match(r"[a-z]+", family_of)
    names = tvm.list_models(module=tvm)
    family = sorted((n for n in names if stem and stem.group(0) in n), key=lambda n: (len(n), n))
    want = _shapes(state)
    for name in dict.fromkeys([*family, *(n for n in COMMON if n in names)]):
        with torch.device("meta"):
            ref = tvm.get_model(name, weights=None).state_dict()
        if _shapes(ref) == want:
            return name
    return None


def load_backbone_state(
    model: nn.Module, state: dict[str, torch.Tensor], name: str, path: str | os.PathLike[str]
) -> None:
    """Load ``state`` (a user's state-dict file at ``path``) into ``model``, a fresh ``name``.
    A file of another architecture is refused naming the architecture it holds; one that does
    not fit raises a one-line error with the first key that differs."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or [k for k in wrong if not k.startswith(_HEADS)]:
        other = identify_weights(state, name)
        if other is not None and other != name:
            raise OptionError(
                "weights",
                f"holds {other} weights, not {name}; pass {{backbone}}, or a {name} state dict",
                path,
                refs={"backbone": other},
            )
    if missing or wrong and not all(k.startswith(_HEADS) for k in wrong):
        bad = next((k for k in wrong if not k.startswith(_HEADS)), None)
        what = (
            f"{bad} has shape {tuple(state[bad].shape)}, expected {tuple(own[bad].shape)}"
            if bad
            else f"{len(missing)} missing keys, e.g. {missing[0]}"
        )
        raise OptionError(
            "weights", f"not {name} weights ({what}); pass a state dict saved from {name}", path
        )
    if unexpected:
        log.info("ignored %d unexpected keys in %s", len(unexpected), path)
    model.load_state_dict({k: v for k, v in state.items() if k in own and k not in wrong}, strict=False)
