"""core.runs: a result is loaded when its file reads back, else computed and written once."""

import json
from pathlib import Path

from camkit.core.runs import TrainingState, load_or_compute, missing, training_state


def test_load_or_compute(tmp_path: Path) -> None:
    calls: list[int] = []

    def compute() -> dict[str, int]:
        calls.append(1)
        return {"v": len(calls)}

    f = tmp_path / "sub" / "r.json"
    assert load_or_compute(f, compute) == {"v": 1} and json.loads(f.read_text()) == {"v": 1}
    assert load_or_compute(f, compute) == {"v": 1} and len(calls) == 1  # reused, not recomputed
    f.write_text("{half")  # unreadable: computed again and rewritten
    assert load_or_compute(f, compute) == {"v": 2} and json.loads(f.read_text()) == {"v": 2}
    seen: list[Path] = []
    g = tmp_path / "r.txt"
    out = load_or_compute(
        g, lambda: "x", read=lambda p: p.read_text(), write=lambda p, v: seen.append(p) or p.write_text(v)
    )
    assert out == "x" and seen == [g] and load_or_compute(g, lambda: "y", read=lambda p: p.read_text()) == "x"


def test_missing_and_training_state(tmp_path: Path) -> None:
    (tmp_path / "b.npz").write_bytes(b"")
    assert missing([tmp_path / "a.npz", tmp_path / "b.npz", tmp_path / "c.npz"]) == [0, 2]
    assert training_state(tmp_path) is TrainingState.FRESH
    (tmp_path / "last.pt").write_bytes(b"")
    assert training_state(tmp_path) is TrainingState.RESUME
    (tmp_path / "summary.json").write_text("{}")
    assert training_state(tmp_path) is TrainingState.DONE
