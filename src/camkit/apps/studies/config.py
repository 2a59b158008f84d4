"""Study config files: JSON laid over a study's typed defaults, with one-line errors that name
the file and the key."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from camkit.core.errors import CamkitError, OptionError
from camkit.core.io import atomic_path, write_json
from camkit.core.options import from_dict
from camkit.data.datasets import DataConfig
from camkit.models.camnet import ModelConfig

T = TypeVar("T")


class _Validated(Protocol):
    def validate(self) -> None: ...


V = TypeVar("V", bound=_Validated)


def load_typed(cls: type[T], path: str | Path, base: dict[str, Any] | None = None) -> T:
    """Dataclass ``cls`` from the JSON file at ``path`` laid over ``base`` (strict keys and types)."""
    try:
        return from_dict(cls, {**(base or {}), **_object(path)})
    except OptionError:
        raise
    except CamkitError as e:
        raise OptionError("config", str(e), path) from None


def _object(path: str | Path) -> dict[str, Any]:
    d = read_config(path)
    if not isinstance(d, dict):
        raise OptionError("config", f"expected a JSON object, got {type(d).__name__}", path)
    return d


def read_config(path: str | Path) -> Any:
    """A study config file's JSON; a one-line error naming the file otherwise."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise OptionError("config", "file not found", path) from None
    except json.JSONDecodeError as e:
        raise OptionError("config", f"not JSON ({e})", path) from None


def with_overrides(obj: T, overrides: dict[str, Any], where: str) -> T:
    """Dataclass ``obj`` with the settings of ``overrides`` (a study's ``data`` or ``model``
    section), checked as a config file is: an unknown key or a wrong type is a one-line
    :class:`OptionError` on ``where`` naming the key."""
    if not overrides:
        return obj
    try:
        checked = from_dict(type(obj), overrides, True, where)
    except CamkitError as e:
        raise OptionError(where, str(e)) from None
    return dataclasses.replace(obj, **{k: getattr(checked, k) for k in overrides})  # type: ignore[type-var]


def checked(study: V, path: str | Path | None) -> V:
    """``study`` after its ``validate()``; with a config file ``path``, the error is a one-line
    :class:`OptionError` on ``config`` naming the file."""
    try:
        study.validate()
    except OptionError as e:
        if not path:
            raise
        raise OptionError("config", str(e), path) from None
    return study


def check_sections(data: dict[str, Any], model: dict[str, Any]) -> None:
    """Check a study's ``data`` (DataConfig) and ``model`` (ModelConfig) override sections."""
    with_overrides(DataConfig(), data, "data")
    with_overrides(ModelConfig(), model, "model")


def save_study(
    out: Path,
    result: dict[str, Any],
    markdown: Callable[[dict[str, Any]], str],
    then: Callable[[], None] | None = None,
) -> None:
    """Write ``out``/study.json, run ``then`` (e.g. the overlays), then write study.md."""
    write_json(out / "study.json", result)
    if then is not None:
        then()
    with atomic_path(out / "study.md") as tmp:
        tmp.write_text(markdown(result))
