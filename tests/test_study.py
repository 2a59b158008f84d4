import json
from pathlib import Path

import pytest

from camkit.apps.studies.equivariance import EquivarianceStudy, load_study_config, run_equivariance_study
from camkit.core.errors import CamkitError


def test_study_smoke_runs_resumes_and_tabulates(
    fake_fmnist: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = EquivarianceStudy(variants={"cam": [], "seg-flip": ["hflip"]}, seeds=[0], data_root=str(fake_fmnist),
                              epochs=1, n_train=64, n_val=32, n_test=32, image_size=32)  # fmt: skip
    res = run_equivariance_study(tmp_path, study, quick=True)
    for name in ("cam", "seg-flip"):
        t = res["table"][name]
        assert set(t) == {"accuracy", "miou", "peak_iou", "max_box_acc_v2"} and t["miou"]["n"] == 1
    cfg = json.loads((tmp_path / "seg-flip-seed0" / "config.json").read_text())
    assert cfg["mode"] == "seg" and cfg["train"]["seg_transforms"] == ["hflip"]
    assert json.loads((tmp_path / "cam-seed0" / "config.json").read_text())["mode"] == "cam"
    assert "| seg-flip | hflip |" in (tmp_path / "study.md").read_text()
    assert (tmp_path / "overlays.png").stat().st_size > 5000
    # a second call finds every run done and trains nothing

    monkeypatch.setattr(
        "camkit.train.loop.train_run", lambda *a, **k: pytest.fail("retrained a finished run")
    )
    again = run_equivariance_study(tmp_path, study, quick=True)
    assert again["table"] == res["table"]


def test_recipe_matches_the_default_variants() -> None:
    recipe = Path(__file__).parents[1] / "recipes" / "study-equivariance.json"
    cfg = load_study_config(recipe)
    assert list(cfg.variants) == ["cam", "seg-scale", "seg-flip", "seg-rot90", "seg-flip+rot90"]
    assert cfg.seeds == [0, 1, 2]
    assert load_study_config(None).variants == cfg.variants


@pytest.mark.parametrize(
    ("text", "needle"),
    [('{"epohcs": 3}', "unknown config key 'epohcs'"), ('{"seeds": "0,1"}', "config key 'seeds': expected"),
     ('{"variants": {"cam": "hflip"}}', "config key 'variants'"), ('{"epochs": 2.5}', "config key 'epochs'"),
     ("[1, 2]", "expected a JSON object"), ("{", "not JSON")],
)  # fmt: skip
def test_study_config_errors_name_the_file_and_key(tmp_path: Path, text: str, needle: str) -> None:
    p = tmp_path / "s.json"
    p.write_text(text)
    with pytest.raises(CamkitError) as e:
        load_study_config(p)
    msg = str(e.value)
    assert "\n" not in msg and str(p) in msg and needle in msg, msg
    with pytest.raises(CamkitError, match="file not found"):
        load_study_config(tmp_path / "none.json")
