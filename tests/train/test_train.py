from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from tests.conftest import _shapes, write_idx

from camkit.core.errors import CamkitError
from camkit.data import DataConfig
from camkit.models import CAMNet, ModelConfig
from camkit.models.checkpoint import load_checkpoint, save_checkpoint
from camkit.train import RunConfig, TrainConfig, cross_validate, kfold_indices, train_run
from camkit.train import callbacks as callbacks_mod
from camkit.train import loop as loop_mod


def tiny_cfg(root: Path, out: Path, **train: object) -> RunConfig:
    return RunConfig(
        data=DataConfig(root=str(root), image_size=32, n_train=96, n_val=32, n_test=32, clutter=2),
        model=ModelConfig(backbone="resnet18", layer="layer1"),
        train=TrainConfig(
            **{"epochs": 2, "lr": 3e-3, "batch_size": 32, "out": str(out), "exp_id": "t", **train}
        ),
    )


def test_selection_never_reads_the_test_split(
    fake_fmnist: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The test split is built only after the best checkpoint is final."""
    events: list[str] = []
    real_build, real_save = loop_mod.build_split, callbacks_mod.save_checkpoint
    monkeypatch.setattr(
        loop_mod,
        "build_split",
        lambda cfg, split: (events.append(f"build:{split}"), real_build(cfg, split))[1],
    )
    monkeypatch.setattr(
        callbacks_mod, "save_checkpoint", lambda *a, **k: (events.append("save-best"), real_save(*a, **k))[1]
    )
    s = train_run(tiny_cfg(fake_fmnist, tmp_path, epochs=3))
    assert events.count("build:test") == 1
    assert events.index("build:test") > max(i for i, e in enumerate(events) if e == "save-best")
    assert "test" in s and 1 <= s["best_epoch"] <= 3


def test_selection_is_independent_of_test_content(fake_fmnist: Path, tmp_path: Path) -> None:
    """Same train/val, a completely different test set: the same checkpoint is chosen, bit for bit."""
    other = tmp_path / "other"
    other.mkdir()
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        (other / name).write_bytes((fake_fmnist / name).read_bytes())
    x, y = _shapes(200, np.random.default_rng(5))
    write_idx(other / "t10k-images-idx3-ubyte.gz", 255 - x)
    write_idx(other / "t10k-labels-idx1-ubyte.gz", (y + 3) % 10)
    a = train_run(tiny_cfg(fake_fmnist, tmp_path / "a"))
    b = train_run(tiny_cfg(other, tmp_path / "b"))
    assert a["best_epoch"] == b["best_epoch"] and a["val"] == b["val"]
    sa, sb = load_file(tmp_path / "a/t/best.safetensors"), load_file(tmp_path / "b/t/best.safetensors")
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert a["test"] != b["test"]


def test_resume_matches_an_uninterrupted_run(fake_fmnist: Path, tmp_path: Path) -> None:
    full = train_run(tiny_cfg(fake_fmnist, tmp_path / "full", epochs=3, schedule="cosine"))
    # a run killed after epoch 1 of 3: simulate by stopping a 3-epoch run's loop early
    cfg = tiny_cfg(fake_fmnist, tmp_path / "cut", epochs=3, schedule="cosine")
    stop_after_first_epoch(cfg)
    resumed = train_run(tiny_cfg(fake_fmnist, tmp_path / "cut", epochs=3, schedule="cosine", resume=True))
    assert resumed["best_epoch"] == full["best_epoch"]
    sa, sb = load_file(tmp_path / "full/t/best.safetensors"), load_file(tmp_path / "cut/t/best.safetensors")
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def stop_after_first_epoch(cfg: RunConfig) -> None:
    """Run ``cfg`` but raise (like a kill) right after epoch 1's resume state is saved."""
    real = callbacks_mod.save_state

    def save_then_die(path, state):
        real(path, state)
        raise KeyboardInterrupt

    callbacks_mod.save_state = save_then_die
    try:
        with pytest.raises(KeyboardInterrupt):
            train_run(cfg)
    finally:
        callbacks_mod.save_state = real


def test_existing_run_is_never_overwritten(fake_fmnist: Path, tmp_path: Path) -> None:
    train_run(tiny_cfg(fake_fmnist, tmp_path, epochs=1))
    before = (tmp_path / "t/best.safetensors").read_bytes()
    with pytest.raises(
        CamkitError, match="exp_id=t: .* already holds a run; pass resume=True or choose another exp_id"
    ):
        train_run(tiny_cfg(fake_fmnist, tmp_path, epochs=1))
    assert (tmp_path / "t/best.safetensors").read_bytes() == before


def test_checkpoint_round_trip_and_mismatch(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = CAMNet(ModelConfig(layer="layer1", num_classes=4)).eval()
    save_checkpoint(tmp_path / "m.safetensors", model, ["a", "b", "c", "d"], epoch=3)
    again, meta = load_checkpoint(tmp_path / "m.safetensors")
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(again.eval()(x).logits, model(x).logits)
    assert meta["class_names"] == ["a", "b", "c", "d"] and meta["epoch"] == 3 and "camkit_version" in meta
    with pytest.raises(CamkitError, match=r"built for another model: num_classes is 4, expected 10"):
        load_checkpoint(tmp_path / "m.safetensors", ModelConfig(layer="layer1", num_classes=10))
    with pytest.raises(CamkitError, match=r"layer is 'layer1', expected 'layer2'"):
        load_checkpoint(tmp_path / "m.safetensors", ModelConfig(num_classes=4))
    (tmp_path / "junk.safetensors").write_bytes(b"garbage")
    with pytest.raises(CamkitError, match="not a safetensors checkpoint"):
        load_checkpoint(tmp_path / "junk.safetensors")


def test_kfold_partitions_the_training_split() -> None:
    folds = kfold_indices(23, 5, seed=0)
    vals = [set(v.tolist()) for _, v in folds]
    assert sorted(len(v) for v in vals) == [4, 4, 5, 5, 5]
    assert set().union(*vals) == set(range(23))
    for tr, va in folds:
        assert not set(tr.tolist()) & set(va.tolist()) and len(tr) + len(va) == 23
    with pytest.raises(CamkitError, match="^folds=1: need at least 2 folds"):
        kfold_indices(10, 1, 0)


def test_cross_validation_reports_folds_and_tests_once(fake_fmnist: Path, tmp_path: Path) -> None:
    s = cross_validate(tiny_cfg(fake_fmnist, tmp_path, epochs=1), folds=3)
    accs = [f["val_accuracy"] for f in s["folds"]]
    assert len(accs) == 3
    assert s["val_accuracy_mean"] == pytest.approx(sum(accs) / 3)
    assert s["val_accuracy_std"] == pytest.approx(torch.tensor(accs).std(unbiased=False).item())
    assert (tmp_path / "t/cv.json").is_file() and all(
        (tmp_path / f"t/fold{i}/best.safetensors").is_file() for i in (1, 2, 3)
    )
    assert 0.0 <= s["test"]["accuracy"] <= 1.0


def test_resume_with_another_architecture_says_what_differs(fake_fmnist: Path, tmp_path: Path) -> None:
    cfg = tiny_cfg(fake_fmnist, tmp_path, epochs=2)
    stop_after_first_epoch(cfg)
    other = tiny_cfg(fake_fmnist, tmp_path, epochs=2, resume=True)
    other.model = ModelConfig(backbone="resnet18", layer="layer2")
    with pytest.raises(
        CamkitError, match=r"^resume: .* holds another model: layer 'layer1' there, 'layer2' asked for"
    ):
        train_run(other)
    # without the run's config.json, the resume state itself is checked
    (tmp_path / "t" / "config.json").unlink()
    with pytest.raises(
        CamkitError,
        match=r"last\.pt was saved for another model \(backbone\.layer2\.0\.conv1\.weight: missing",
    ):
        train_run(other)


def test_early_stopping_rules_on_scripted_sequences() -> None:
    from camkit.train.loop import EarlyStopping

    s = EarlyStopping(patience=2)
    improved = [True, False, True, False, False, True]  # stale: 0 1 0 1 2 -> stop after epoch 5
    stops = [s.step(i) for i in improved]
    assert stops.index(True) + 1 == 5
    g = EarlyStopping(overfit_ratio=2.0)
    losses = [(1.0, 1.5), (0.6, 1.1), (0.4, 0.81), (0.3, 0.7)]  # val > 2 x train first at epoch 3
    assert [g.overfit(t, v) for t, v in losses] == [False, False, True, True]
    assert not EarlyStopping().step(False)  # no rule: never stops


def test_training_stops_early_and_never_selects_an_overfit_epoch(
    fake_fmnist: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # script the validation losses: epoch 3 overfits (val > 2 x train); training must stop there
    # the first three calls are the epochs' validations, the fourth the final test
    scripted = iter(
        [{"loss": 0.5, "accuracy": 0.5}, {"loss": 0.4, "accuracy": 0.6}, {"loss": 50.0, "accuracy": 0.9}]
        + [{"loss": 0.1, "accuracy": 1.0, "top3": 1.0, "top5": 1.0}] * 5
    )
    monkeypatch.setattr(loop_mod, "evaluate_classifier", lambda *a, **k: next(scripted))
    s = train_run(tiny_cfg(fake_fmnist, tmp_path, epochs=6, overfit_ratio=2.0))
    assert s["stopped"] == {"epoch": 3, "reason": "overfit"}
    assert s["best_epoch"] == 2  # epoch 3 had the best accuracy but overfit
    lines = (tmp_path / "t" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3


def test_run_folder_has_csv_and_curves(fake_fmnist: Path, tmp_path: Path) -> None:
    train_run(tiny_cfg(fake_fmnist, tmp_path, epochs=2, schedule="step", step_epochs=1, label_smoothing=0.1))
    rows = (tmp_path / "t" / "metrics.csv").read_text().splitlines()
    assert (
        rows[0] == "epoch,train_loss,train_accuracy,val_loss,val_accuracy,val_top3,val_top5,images_per_s"
        and len(rows) == 3
    )
    assert (tmp_path / "t" / "curves.png").stat().st_size > 5000


def test_step_and_cosine_schedules() -> None:
    from camkit.train.loop import make_scheduler

    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([p], lr=1.0)
    sched = make_scheduler(
        opt, TrainConfig(epochs=4, lr=1.0, schedule="step", step_epochs=1, step_gamma=0.1), steps=40
    )
    lrs = []
    for _ in range(40):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert (
        lrs[0] == 1.0 and lrs[9] == 1.0 and lrs[10] == pytest.approx(0.1) and lrs[35] == pytest.approx(1e-3)
    )
    opt2 = torch.optim.Adam([p], lr=1.0)
    cos = make_scheduler(opt2, TrainConfig(epochs=1, schedule="cosine"), steps=10)
    for _ in range(5):
        opt2.step()
        cos.step()
    assert opt2.param_groups[0]["lr"] == pytest.approx(0.5)


def test_sweep_resumes_without_rerunning_finished_points(
    fake_fmnist: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from camkit.train import sweep as sweep_mod

    base = tiny_cfg(fake_fmnist, tmp_path, epochs=1)
    base.train.exp_id = "sw"
    grid = sweep_mod.parse_grid(["lr=1e-3,3e-3", "label-smoothing=0,0.1"], base)
    assert grid == {"lr": [1e-3, 3e-3], "label_smoothing": [0.0, 0.1]}
    calls: list[str] = []
    real = loop_mod.train_run
    monkeypatch.setattr(
        loop_mod, "train_run", lambda cfg, p=None: (calls.append(cfg.train.exp_id), real(cfg, p))[1]
    )
    first = sweep_mod.run_sweep(base, grid)
    assert len(calls) == 4 and len(first["points"]) == 4
    table = (tmp_path / "sw" / "sweep.md").read_text()
    assert "lr=0.001,label_smoothing=0.1" in table and "val top-5" in table
    # a crash after the last point trained but before it finished: no summary.json
    (tmp_path / "sw" / "lr=0.003,label_smoothing=0.1" / "summary.json").unlink()
    calls.clear()
    again = sweep_mod.run_sweep(base, grid)
    assert calls == ["lr=0.003,label_smoothing=0.1"]  # only the unfinished point ran (resumed)
    assert [p["val_top1"] for p in again["points"]] == [p["val_top1"] for p in first["points"]]
    with pytest.raises(CamkitError, match="^grid=lrate: not a config field; close matches: layer, lr"):
        sweep_mod.parse_grid(["lrate=1"], base)


def test_recipes_are_valid_configs() -> None:
    import json

    recipes = [
        p
        for p in sorted((Path(__file__).parents[2] / "recipes").glob("*.json"))
        if not p.name.startswith("study-")
    ]
    assert len(recipes) >= 4
    for r in recipes:
        cfg = RunConfig.from_dict(json.loads(r.read_text()), strict=True)
        cfg.train.validate()
        assert cfg.model.num_classes > 1 and cfg.data.dataset in ("fashion", "folder", "lab")
    with pytest.raises(CamkitError, match="unknown config key 'learning_rate'"):
        RunConfig.from_dict({"train": {"learning_rate": 1}}, strict=True)


def test_evaluate_epochs_matches_the_training_log(fake_fmnist: Path, tmp_path: Path) -> None:
    import json

    from camkit.train.epochs import evaluate_epochs

    train_run(tiny_cfg(fake_fmnist, tmp_path, epochs=2, save_every_epoch=True))
    res = evaluate_epochs(tmp_path / "t", "val", "cpu")
    log = [json.loads(x) for x in (tmp_path / "t" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in res["epochs"]] == [1, 2]
    for r, h in zip(res["epochs"], log, strict=True):
        assert r["top1"] == pytest.approx(h["val_accuracy"]) and r["top5"] == pytest.approx(h["val_top5"])
        assert r["loss"] == pytest.approx(h["val_loss"], rel=1e-5)
    with pytest.raises(CamkitError, match="no saved epochs; train it with save_every_epoch"):
        train_run(tiny_cfg(fake_fmnist, tmp_path / "b", epochs=1))
        evaluate_epochs(tmp_path / "b" / "t")


def test_tensorboard_log_or_a_clear_message(fake_fmnist: Path, tmp_path: Path) -> None:
    import importlib.util

    cfg = tiny_cfg(fake_fmnist, tmp_path, epochs=1, tensorboard=True)
    if importlib.util.find_spec("tensorboard") is None:
        with pytest.raises(
            CamkitError, match="^tensorboard: needs the tensorboard package: pip install tensorboard"
        ):
            train_run(cfg)
    else:
        train_run(cfg)
        assert list((tmp_path / "t" / "tensorboard").glob("events.out.tfevents.*"))
