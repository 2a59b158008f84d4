"""A backbone state-dict file is checked against the architecture asked for: another
architecture is named, a fine-tuned classifier is tolerated, a renamed file is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision.models as tvm

from camkit.core.errors import CamkitError
from camkit.models.backbones import build_backbone
from camkit.models.weights_id import identify_weights


def _shapes_only(name: str) -> dict[str, torch.Tensor]:
    with torch.device("meta"):  # names and shapes, no memory
        return tvm.get_model(name, weights=None).state_dict()


@pytest.mark.parametrize("name", ["resnet50", "vgg16"])  # its family first, then the common ones
def test_identify_names_the_architecture(name: str) -> None:
    assert identify_weights(_shapes_only(name), "resnet18") == name


def test_identify_ignores_the_classifier() -> None:
    state = dict(_shapes_only("resnet34"))
    state["fc.weight"], state["fc.bias"] = torch.empty(10, 512, device="meta"), torch.empty(10, device="meta")
    assert identify_weights(state, "resnet18") == "resnet34"


def test_fine_tuned_file_loads_unknown_file_is_refused(tmp_path: Path) -> None:
    torch.manual_seed(0)
    ref = tvm.resnet18(weights=None, num_classes=10)  # a fine-tuned classifier: never used by the cut
    torch.save(ref.state_dict(), tmp_path / "r18-10.pth")
    bb = build_backbone("resnet18", "layer2", weights_file=str(tmp_path / "r18-10.pth"))
    torch.testing.assert_close(bb.layer2[0].conv1.weight, ref.layer2[0].conv1.weight)
    torch.save({"module." + k: v for k, v in ref.state_dict().items()}, tmp_path / "ddp.pth")
    with pytest.raises(
        CamkitError, match=r"weights=.*ddp.pth: not resnet18 weights \(\d+ missing keys, e.g. conv1.weight\)"
    ):
        build_backbone("resnet18", weights_file=str(tmp_path / "ddp.pth"))
