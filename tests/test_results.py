"""core.results.Result: typed fields, read as a mapping by callers of the older dict results."""

import json
from dataclasses import FrozenInstanceError, dataclass

import pytest

from camkit.core.io import write_json
from camkit.core.results import Result


@dataclass(frozen=True)
class _Inner(Result):
    a: int
    b: float | None = None

    def _omitted(self) -> set[str]:
        return {"b"} if self.b is None else set()


@dataclass(frozen=True)
class _Outer(Result):
    name: str
    inner: _Inner


def test_result_reads_as_a_mapping_and_writes_as_json(tmp_path) -> None:
    r = _Outer("x", _Inner(1))
    assert r.inner.a == 1 and r["name"] == "x" and r["inner"] == {"a": 1}
    assert r.get("missing") is None and "name" in r and "b" not in r["inner"]
    assert dict(r) == {"name": "x", "inner": {"a": 1}} and list(r) == ["name", "inner"] and len(r) == 2
    with pytest.raises(KeyError):
        r["missing"]
    r["extra"] = [1, 2]  # callers may attach keys that are not fields; they come last
    assert r.to_dict() == {"name": "x", "inner": {"a": 1}, "extra": [1, 2]}
    with pytest.raises(TypeError, match="frozen"):
        r["name"] = "y"
    with pytest.raises(FrozenInstanceError):
        r.name = "y"  # type: ignore[misc]
    write_json(tmp_path / "r.json", {"r": r, "i": _Inner(2, 0.5)})
    assert json.loads((tmp_path / "r.json").read_text()) == {
        "r": {"name": "x", "inner": {"a": 1}, "extra": [1, 2]},
        "i": {"a": 2, "b": 0.5},
    }
