"""End-of-epoch callbacks: the protocol, early stopping across a resume."""

from pathlib import Path

import pytest
import torch
from tests.train.test_train import tiny_cfg

from camkit.data.datasets import build_split, class_names
from camkit.models import CAMNet
from camkit.train import callbacks as callbacks_mod
from camkit.train import loop as loop_mod
from camkit.train.callbacks import Callback
from camkit.train.loop import fit


class _Recorder(Callback):
    """Keeps every epoch's row and stops the run after ``stop_at``."""

    def __init__(self, stop_at: int) -> None:
        self.rows: list[dict] = []
        self.stop_at, self.ended = stop_at, 0

    def on_epoch_end(self, fit, ep) -> None:
        self.rows.append(dict(ep.record))
        if ep.epoch == self.stop_at:
            ep.stop = "recorder"

    def on_train_end(self, fit) -> None:
        self.ended += 1


def test_a_callback_sees_every_epoch_and_can_stop_the_run(fake_fmnist: Path, tmp_path: Path) -> None:
    cfg = tiny_cfg(fake_fmnist, tmp_path, epochs=4)
    rec = _Recorder(stop_at=2)
    res = fit(
        CAMNet(cfg.model), build_split(cfg.data, "train"), build_split(cfg.data, "val"), cfg.train,
        tmp_path, class_names(cfg.data), callbacks=[rec],
    )  # fmt: skip
    assert res.stopped == {"epoch": 2, "reason": "recorder"} and rec.ended == 1
    assert [r["epoch"] for r in rec.rows] == [1, 2] and rec.rows == res.history
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 2


def test_patience_counts_the_same_across_a_resume(
    fake_fmnist: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Accuracy falls after epoch 1, patience 2: stop after epoch 3, also when the run is
    killed after epoch 2 and resumed (the resume state holds epoch 2's stale count)."""

    def scripted():
        for acc in (0.5, 0.4, 0.3, 0.2, 0.1, 0.05):
            yield {"loss": 1.0, "accuracy": acc, "top3": 1.0, "top5": 1.0}
        while True:
            yield {"loss": 1.0, "accuracy": 1.0, "top3": 1.0, "top5": 1.0}  # the final test

    vals = scripted()
    monkeypatch.setattr(loop_mod, "evaluate_classifier", lambda *a, **k: next(vals))
    full = loop_mod.train_run(tiny_cfg(fake_fmnist, tmp_path / "full", epochs=6, patience=2))
    assert full["stopped"] == {"epoch": 3, "reason": "patience"}

    vals = scripted()  # one sequence over both processes: epochs 1-2, then 3-...
    real, saved = callbacks_mod.save_state, []

    def save_then_die(path, state):
        real(path, state)
        saved.append(state["epoch"])
        if state["epoch"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(callbacks_mod, "save_state", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        loop_mod.train_run(tiny_cfg(fake_fmnist, tmp_path / "cut", epochs=6, patience=2))
    resumed = loop_mod.train_run(tiny_cfg(fake_fmnist, tmp_path / "cut", epochs=6, patience=2, resume=True))
    assert saved == [1, 2, 3]
    assert resumed["stopped"] == full["stopped"] and resumed["best_epoch"] == full["best_epoch"] == 1


@pytest.mark.parametrize("steps", [1, 2, 3, 4, 5, 8])
def test_onecycle_builds_and_peaks_for_any_number_of_steps(steps: int) -> None:
    """4 steps made torch's OneCycleLR divide by zero (a tiny fashion-multi run, found by the README tour)."""
    from camkit.train.config import TrainConfig
    from camkit.train.optim import make_scheduler

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = make_scheduler(opt, TrainConfig(schedule="onecycle"), steps)
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(steps - 1):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert all(0 < v <= 0.1 + 1e-12 for v in lrs)
    if steps >= 3:
        assert max(lrs) > lrs[0] and max(lrs) > lrs[-1]  # warm up, then anneal
