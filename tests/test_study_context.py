"""The studies on the context benchmark: dataset, data and model sections of a study config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from camkit.apps.studies import equivariance, wsss
from camkit.core.errors import CamkitError
from camkit.models.camnet import CAMNet

RECIPES = Path(__file__).parents[1] / "recipes"


@pytest.mark.parametrize("backbone", ["resnet18", "efficientnet"])
def test_wsss_context_recipes_make_the_runs_they_describe(tmp_path: Path, backbone: str) -> None:
    s = wsss.study_config(RECIPES / f"study-wsss-context-{backbone}.json")
    raw = json.loads((RECIPES / f"study-wsss-context-{backbone}.json").read_text())
    for name in ("gap", "tap", "recam"):
        cfg = wsss._run_config(tmp_path, s, 1, name)
        assert cfg.data.dataset == "fashion-context-multi" and cfg.data.multilabel and cfg.data.seed == 1
        for k, v in raw["data"].items():
            assert getattr(cfg.data, k) == v, k
        for k, v in raw["model"].items():
            assert getattr(cfg.model, k) == v, k
        assert cfg.model.head == ("tap" if name == "tap" else "gap") and cfg.model.fc2 == (name == "recam")
    m = CAMNet(cfg.model).eval()  # the maps are at least 8x8 at the study's input size
    with torch.no_grad():
        f = m.forward_features(torch.rand(1, 3, s.image_size, s.image_size))
    assert min(f.shape[-2:]) >= 8


@pytest.mark.parametrize("backbone", ["resnet18", "efficientnet"])
def test_equivariance_context_recipes_make_the_runs_they_describe(tmp_path: Path, backbone: str) -> None:
    s = equivariance.load_study_config(RECIPES / f"study-equivariance-context-{backbone}.json")
    cfg = equivariance._run_config(tmp_path, s, False, 2)
    assert cfg.data.dataset == "fashion-context" and not cfg.data.multilabel
    assert cfg.data.image_size == 112 and cfg.data.canvas_size == 112 and cfg.data.seed == 2
    assert cfg.model.backbone == ("resnet18" if backbone == "resnet18" else "efficientnet_lite0")
    assert cfg.data.n_train == s.n_train and (s.lr is None or cfg.train.lr == s.lr)


@pytest.mark.parametrize(
    ("study", "text", "needle"),
    [
        (
            "wsss",
            '{"dataset": "fashion-context"}',
            "dataset=fashion-context: the WSSS study needs a multi-label",
        ),
        ("wsss", '{"data": {"p_contxt": 0.5}}', "unknown config key 'data.p_contxt'"),
        ("wsss", '{"model": {"output_stride": "8"}}', "config key 'model.output_stride': expected"),
        ("equivariance", '{"dataset": "fashion-context-multi"}', "needs a single-label dataset"),
        ("equivariance", '{"model": {"backbone": 3}}', "config key 'model.backbone': expected"),
        ("equivariance", '{"data": {"canvas": 96}}', "unknown config key 'data.canvas'"),
    ],
)
def test_bad_sections_are_one_line_errors_naming_the_file(
    tmp_path: Path, study: str, text: str, needle: str
) -> None:
    p = tmp_path / "s.json"
    p.write_text(text)
    with pytest.raises(CamkitError) as e:
        wsss.study_config(p) if study == "wsss" else equivariance.load_study_config(p)
    msg = str(e.value)
    assert "\n" not in msg and str(p) in msg and needle in msg, msg
