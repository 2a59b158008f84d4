"""Every recipe in recipes/ loads with its loader: run configs (strict) and study configs."""

import json
from pathlib import Path

import pytest

from camkit.apps.studies.equivariance import EquivarianceStudy, load_study_config
from camkit.apps.studies.flower import FlowerStudy
from camkit.apps.studies.flower import study_config as flower_config
from camkit.apps.studies.wsss import WsssStudy, study_config
from camkit.train.config import RunConfig

RECIPES = sorted((Path(__file__).parents[1] / "recipes").glob("*.json"))


def load_recipe(path: Path) -> object:
    """The loader a recipe's name picks: study-equivariance*, study-wsss*, else a run config."""
    if path.name.startswith("study-equivariance"):
        return load_study_config(path)
    if path.name.startswith("study-wsss"):
        return study_config(path)
    if path.name.startswith("study-flower"):
        return flower_config(path)
    return RunConfig.from_dict(json.loads(path.read_text()), strict=True)


def test_there_are_recipes_of_each_kind() -> None:
    names = [p.name for p in RECIPES]
    assert len(names) >= 9
    assert any(n.startswith("study-equivariance") for n in names) and "study-wsss.json" in names


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_recipe_loads(path: Path) -> None:
    cfg = load_recipe(path)
    raw = json.loads(path.read_text())
    if isinstance(cfg, RunConfig):
        cfg.train.validate()
        cfg.data.augment.validate()
        for section in ("data", "model", "train"):
            for key, value in raw.get(section, {}).items():
                if key.startswith("aug_"):  # the flat keys of older configs
                    assert getattr(cfg.data.augment, key[4:]) == value, key
                else:
                    assert getattr(getattr(cfg, section), key) == value, key
        # what a run saves (config.json) loads back to the same config
        assert RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict())), strict=True) == cfg
    else:
        assert isinstance(cfg, (EquivarianceStudy, WsssStudy, FlowerStudy))
        for key, value in raw.items():
            assert getattr(cfg, key) == value, key


def test_nested_and_flat_augment_keys_load_alike() -> None:
    flat = RunConfig.from_dict({"data": {"aug_hflip": True, "aug_rotate": 20.0}}, strict=True)
    nested = RunConfig.from_dict({"data": {"augment": {"hflip": True, "rotate": 20.0}}}, strict=True)
    assert flat == nested and flat.data.augment.hflip and flat.data.augment.rotate == 20.0
    assert not RunConfig().data.augment.active
    saved = json.loads(json.dumps(flat.to_dict()))
    assert saved["data"]["augment"]["hflip"] is True and "aug_hflip" not in saved["data"]
    with pytest.raises(Exception, match="augment.hflop"):
        RunConfig.from_dict({"data": {"augment": {"hflop": True}}}, strict=True)
    with pytest.raises(Exception, match="config key 'image_size': expected int"):
        RunConfig.from_dict({"data": {"image_size": "64"}}, strict=True)
