import dataclasses
import json
from pathlib import Path

import pytest

from camkit.apps.studies.wsss import study_config
from camkit.core.errors import CamkitError


def test_wsss_study_smoke_runs_resumes_and_tabulates(
    fake_fmnist: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from camkit.apps.studies.wsss import run_wsss_study

    study = dataclasses.replace(study_config(None, quick=True), seeds=[0], data_root=str(fake_fmnist), n_train=64,
                                n_val=16, n_test=16, image_size=32, prototypes={"k": 2})  # fmt: skip
    res = run_wsss_study(tmp_path, study, quick=True)
    t = res["table"]
    assert list(t["bae"]) == ["CAM", "+PaS", "+NWC", "+TAP"]
    assert set(t["lpcam"]) == {"cam", "lpcam-f", "lpcam"} and set(t["lpcam"]["cam"]) >= {"fp", "fn", "miou"}
    assert set(t["recam"]) == {"cam", "w", "w2", "sum", "prod"}
    for v in t["bae"].values():
        assert 0.0 <= v["mean"] <= 1.0 and v["std"] == 0.0
    assert json.loads((tmp_path / "tap-seed0" / "config.json").read_text())["model"]["head"] == "tap"
    rc = json.loads((tmp_path / "recam-seed0" / "config.json").read_text())
    assert rc["mode"] == "recam" and rc["train"]["init"].endswith("gap-seed0/best.safetensors")
    md = (tmp_path / "study.md").read_text()
    assert "| +TAP | tap / nwc-cam / percentile |" in md and "ReCAM w ⊙ w'" in md
    assert (tmp_path / "prototypes-seed0-tau0.3.safetensors").is_file()
    assert (tmp_path / "overlays.png").stat().st_size > 5000
    monkeypatch.setattr(
        "camkit.train.loop.train_run", lambda *a, **k: pytest.fail("retrained a finished run")
    )
    again = run_wsss_study(tmp_path, study, quick=True)
    assert again["table"] == res["table"]


def test_study_config_rejects_unknown_keys(tmp_path: Path) -> None:
    p = tmp_path / "s.json"
    p.write_text('{"epochs": 2, "epohcs": 3}')
    with pytest.raises(CamkitError, match="epohcs"):
        study_config(p)
    p.write_text('{"lr": "fast"}')
    with pytest.raises(CamkitError, match=r"s\.json: config key 'lr': expected float, got 'fast'"):
        study_config(p)
    p.write_text('{"prototypes": {"kk": 3}}')
    with pytest.raises(CamkitError, match=r"s\.json: .*unknown key 'kk'"):
        study_config(p)
    recipe = Path(__file__).parents[1] / "recipes" / "study-wsss.json"
    cfg = study_config(recipe)
    assert cfg.seeds == [0, 1, 2] and cfg.prototypes == {"k": 12, "mu_f": 0.9, "mu_b": 0.5}
    assert study_config(None, quick=True).prototypes == {"k": 4}
