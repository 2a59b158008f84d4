"""camkit study flower: a tiny grid on tiny data (CIFAR-10 JPEGs from ../shared/assets, and
fashion-context for the localization scores), the discard rule, the table and the figures."""

import json
from pathlib import Path

import pytest
import torch

from camkit.apps.studies import flower_heads as fh
from camkit.apps.studies.flower import FlowerStudy, study_config, unzip_subset
from camkit.core.errors import CamkitError

CIFAR_ZIP = Path(__file__).resolve().parents[1].parent / "shared" / "assets" / "cifar10-jpg.zip"


def _history(pairs: list[tuple[float, float]], top1: list[float]) -> list[dict[str, float]]:
    return [
        {"epoch": i + 1, "train_ce": tr, "val_loss": va, "top1": a}
        for i, ((tr, va), a) in enumerate(zip(pairs, top1, strict=True))
    ]


def test_discard_rule_removes_overfit_models() -> None:
    # overfit from the first epoch (train loss 0.1 < 0.9 / 2): the model is discarded
    h = _history([(0.1, 0.9), (0.05, 1.0)], [0.9, 0.95])
    assert fh.eligible_epochs(h, 2.0) == [] and fh.select_epoch(h, 2.0) is None
    # epoch 3 overfits (0.2 < 0.5 / 2); its better accuracy and every later epoch are discarded
    h = _history([(1.0, 1.1), (0.5, 0.9), (0.2, 0.5), (0.6, 0.7)], [0.5, 0.6, 0.9, 0.95])
    assert fh.eligible_epochs(h, 2.0) == [1, 2]
    assert fh.select_epoch(h, 2.0)["epoch"] == 2
    assert fh.select_epoch(h, None)["epoch"] == 4  # no rule: the best epoch overall
    # exactly half is not "less than half"
    assert fh.eligible_epochs(_history([(0.5, 1.0)], [0.5]), 2.0) == [1]


def test_head_memorizing_a_tiny_set_is_discarded() -> None:
    # 8 random feature maps with random labels, trained long at a high lr: the training loss
    # goes to ~0 while the val loss on other random features grows -> every model discarded
    g = torch.Generator().manual_seed(0)
    tr = {"features": torch.randn(8, 16, 2, 2, generator=g).half(), "labels": torch.arange(8) % 4}
    va = {"features": torch.randn(8, 16, 2, 2, generator=g).half(), "labels": torch.arange(8) % 4}
    res, state = fh.train_head(tr, va, 4, None, 0.5, 30, 8, 0, 2.0)
    last = res["history"][-1]
    assert last["train_ce"] < 0.5 * last["val_loss"]
    ok = fh.eligible_epochs(res["history"], 2.0)
    assert len(ok) < len(res["history"])
    assert (res["best"] is None) == (state is None) and (res["best"] is None or res["best"]["epoch"] in ok)
    # ReCAM heads train too and log the same rows
    res2, _ = fh.train_head(tr, va, 4, "sigmoid", 1e-2, 2, 4, 0, None)
    assert set(res2["history"][0]) >= {"train_loss", "train_ce", "val_loss", "top1", "top3", "top5"}
    assert res2["history"][0]["train_loss"] > res2["history"][0]["train_ce"]  # + L_sce


def test_augment_copy_is_seeded_and_keeps_shape() -> None:
    x = torch.rand(3, 3, 16, 16)
    a = fh.augment_copy(x, torch.Generator().manual_seed(1))
    b = fh.augment_copy(x, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, x)


@pytest.mark.skipif(not CIFAR_ZIP.is_file(), reason="../shared/assets/cifar10-jpg.zip is not here")
def test_flower_study_tiny_grid(tmp_path: Path, fake_fmnist: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from camkit.apps.studies.flower import run_flower_study

    study = FlowerStudy(
        datasets={"cifar10": {"dataset": "folder", "root": str(CIFAR_ZIP), "per_class": 4, "val_fraction": 0.5},
                  "fashion-context": {"dataset": "fashion-context", "n_train": 20, "n_val": 12, "n_test": 8,
                                      "canvas_size": 32}},
        image_size=32, lrs=[1e-3, 1e-2], epochs=2, batch_size=8, augment_copies=2, seeds=[0], n_maps=4,
        data_root=str(fake_fmnist),
    )  # fmt: skip
    res = run_flower_study(tmp_path, study)
    for name in ("cifar10", "fashion-context"):
        r = res["datasets"][name]
        # the table has every cell: 4 variants x 2 learning rates, each with its best epoch or "discarded"
        assert list(r["table"]) == ["CAM", "ReCAM-minmax", "ReCAM-sigmoid", "ReCAM-relu-max"]
        for by_lr in r["table"].values():
            assert sorted(by_lr) == [1e-3, 1e-2]
            for c in by_lr.values():
                assert c["n"] == 1 and (c["kept"] == 0 or 0.0 <= c["top1"]["mean"] <= c["top3"]["mean"] <= c["top5"]["mean"] <= 1.0)  # fmt: skip
        assert (tmp_path / name / "maps" / "comparison.png").stat().st_size > 2000
        assert (tmp_path / name / "maps" / "labelled.png").stat().st_size > 2000
        for v in ("cam", "recam-sigmoid", "layercam"):
            assert (tmp_path / name / "maps" / f"grid-{v}.png").is_file()
            assert (tmp_path / name / "maps" / f"strip-{v}.png").is_file()
    assert len(list((tmp_path / "cifar10" / "images").iterdir())) == 11  # 10 classes + the done marker
    loc = res["datasets"]["fashion-context"]["localization"]["mean"]
    assert set(loc) == {"CAM", "ReCAM-minmax", "ReCAM-sigmoid", "ReCAM-relu-max", "LayerCAM"}
    assert all(0.0 <= v["peak_iou"] <= 1.0 and 0.0 <= v["pxap"] <= 100.0 for v in loc.values())
    assert "localization" not in res["datasets"]["cifar10"]
    md = (tmp_path / "study.md").read_text()
    assert "| Model/LR | 1e-05 | 5e-05 | 0.0001 | 0.0002 |" in md  # the paper's table
    assert "Top1: 92.94%" in md and "| Model/LR | 0.001 | 0.01 |" in md
    assert "LayerCAM localizes best, ReCAM worst" in md and "Every ReCAM below CAM" in md
    json.loads((tmp_path / "study.json").read_text())
    # resumable: a second run trains nothing
    monkeypatch.setattr(fh, "train_head", lambda *a, **k: pytest.fail("retrained a finished head"))
    monkeypatch.setattr(fh, "cache_features", lambda *a, **k: pytest.fail("recomputed features"))
    again = run_flower_study(tmp_path, study)
    assert again["datasets"]["cifar10"]["table"] == res["datasets"]["cifar10"]["table"]


def test_unzip_subset_and_config_errors(tmp_path: Path) -> None:
    with pytest.raises(CamkitError, match="archive not found"):
        unzip_subset(tmp_path / "missing.zip", tmp_path / "x", 2)
    p = tmp_path / "s.json"
    p.write_text('{"epochs": 2, "lrz": [1]}')
    with pytest.raises(CamkitError, match="lrz"):
        study_config(p)
    p.write_text('{"norms": ["softmax"]}')
    with pytest.raises(CamkitError, match=r"s\.json: .*norms"):
        study_config(p)
    for recipe in ("study-flower.json", "study-flower-cpu.json"):
        cfg = study_config(Path(__file__).parents[1] / "recipes" / recipe)
        assert cfg.layercam_weights == [0.4, 0.4, 0.2] and cfg.overfit_ratio == 2.0


def test_report_cells_and_verdicts() -> None:
    from camkit.apps.studies.flower import _cell
    from camkit.apps.studies.flower_maps import claim
    from camkit.apps.studies.flower_report import _cam_vs_recam, ours_cell

    row = {"epoch": 3, "top1": 0.5, "top3": 0.75, "top5": 1.0, "val_loss": 1.25}
    c = _cell([row, None])  # one seed kept, one discarded
    assert c["kept"] == 1 and c["top1"] == {"mean": 0.5, "std": 0.0}
    assert (
        ours_cell(c)
        == "(epoch 3.0) [1/2 kept]<br>Top1: 50.00%<br>Top3: 75.00%<br>Top5: 100.00%<br>Loss: 1.2500"
    )
    assert ours_cell(_cell([None, None])) == "discarded (2/2 overfit)"
    table = {"CAM": {1e-4: _cell([row]), 1e-3: _cell([row])},
             "ReCAM-minmax": {1e-4: _cell([{**row, "top1": 0.4}]), 1e-3: _cell([{**row, "top1": 0.6}])}}  # fmt: skip
    assert "holds at 1 of 2" in _cam_vs_recam(table)[0]
    loc = {"CAM": {"pxap": 50.0}, "ReCAM-minmax": {"pxap": 40.0}, "LayerCAM": {"pxap": 60.0}}
    assert claim(loc, ["pxap"]) == {"pxap": {"best": "LayerCAM", "worst": "ReCAM-minmax", "holds": True}}
    loc["CAM"]["pxap"] = 30.0
    assert claim(loc, ["pxap"])["pxap"]["holds"] is False
