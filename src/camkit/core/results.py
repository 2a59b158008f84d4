"""The common base of result records (scores, curves) that functions return.

A result is a frozen dataclass with typed fields: read ``res.miou``. For callers written
against the older ``dict`` results it also reads as a mapping (``res["miou"]``,
``res.get("pxap")``, ``res.items()``, ``dict(res)``) over :meth:`Result.to_dict`, and a
caller may attach keys that are not fields (``res["accuracy"] = ...``): they come after the
fields in ``to_dict()``. ``core.io.write_json`` writes a result as ``to_dict()``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class Result(Mapping[str, Any]):
    """Base of the result dataclasses. Subclasses add fields; see the module docstring."""

    def to_dict(self) -> dict[str, Any]:
        """The fields (nested results as dicts, in field order), then any attached keys.

        Subclasses may leave out fields that do not apply (see :meth:`_omitted`)."""
        skip = self._omitted()
        out = {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name not in skip}
        out.update(self.__dict__.get("_extra", {}))
        return out

    def _omitted(self) -> set[str]:
        """Names of fields that ``to_dict()`` leaves out for this instance (none by default)."""
        return set()

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        """Attach a key that is not a field (the fields themselves are frozen)."""
        if key in {f.name for f in dataclasses.fields(self)}:
            raise TypeError(f"{type(self).__name__}.{key} is a field of a frozen result")
        self.__dict__.setdefault("_extra", {})[key] = value

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())


def _plain(v: Any) -> Any:
    if isinstance(v, Result):
        return v.to_dict()
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v
