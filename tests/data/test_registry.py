"""The dataset registry: every source is found, unknown names fail in one line, and a new
source is one class in one file (here: defined in the test) that build_split then serves."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from camkit.core.errors import OptionError
from camkit.data import registry
from camkit.data.base import ArrayDataset
from camkit.data.datasets import DataConfig, build_split, class_names


def test_builtin_sources_are_registered_in_order() -> None:
    names = registry.dataset_names()  # by module name: coco sorts before fashion
    assert [n for n in names if n in ("fashion", "fashion-multi", "folder", "lab")] == [
        "fashion",
        "fashion-multi",
        "folder",
        "lab",
    ]
    assert {"voc", "coco", "wsol", "fashion-context", "fashion-context-multi"} <= set(names)
    assert registry.get_dataset("fashion-multi").multilabel
    assert not registry.get_dataset("fashion").multilabel


def test_unknown_dataset_names_the_parameter_and_the_choices() -> None:
    with pytest.raises(OptionError, match=r"^dataset=fashon: unknown dataset; choose one of fashion") as e:
        registry.get_dataset("fashon")
    assert e.value.option == "dataset"


def test_a_new_source_is_one_class(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry.DATASETS, "_items", dict(registry.DATASETS._load()))

    @registry.register_dataset("toy")
    class Toy(registry.DatasetSource):
        summary = "two grey squares"
        multilabel = False

        def class_names(self, cfg: DataConfig) -> list[str]:
            return ["dark", "light"]

        def build(self, cfg: DataConfig, split: str) -> ArrayDataset:
            self.check_split(split)
            images = np.stack([np.full((8, 8), 40, np.uint8), np.full((8, 8), 200, np.uint8)])
            return ArrayDataset(images, np.array([0, 1]), None, cfg.image_size)

    cfg = DataConfig(dataset="toy", image_size=16)
    assert class_names(cfg) == ["dark", "light"]
    assert not cfg.multilabel
    ds = build_split(cfg, "val")
    s = ds[1]
    assert s["image"].shape == (3, 16, 16) and int(s["label"]) == 1
    assert torch.allclose(s["image"], torch.full((3, 16, 16), 200 / 255))
    with pytest.raises(OptionError, match=r"^split=seg: the toy data has train, val, test"):
        build_split(cfg, "seg")
    with pytest.raises(ValueError, match="already registered"):
        registry.register_dataset("toy")(Toy)
