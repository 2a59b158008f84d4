"""Options declared once: a config dataclass field carries its help text, command-line flag
and choices, so the CLI (``camkit.cli.args``) builds its arguments from the dataclass and the
help shows each default from the field itself.

>>> @dataclass
... class C:
...     epochs: int = option(5, help="passes over the training split")

This module also loads config dicts (JSON files) onto such dataclasses with one-line errors
that name the key: :func:`from_dict`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import MISSING, Field, dataclass
from typing import Any

from camkit.core.errors import CamkitError

_KEY = "camkit.option"


@dataclass(frozen=True)
class OptionInfo:
    """What a field says about itself: help (without the default), flag, choices."""

    help: str
    flag: str | None = None  # the command-line flag when it is not "--" + the name with dashes
    #: the allowed values, or a function listing them (a registry's names, read when asked)
    choices: tuple[str, ...] | Callable[[], Sequence[str]] | None = None
    metavar: str | None = None
    default_text: str | None = None  # the default as the help shows it, where the value says little
    cli: bool = True  # False: settable from config files and Python only
    negatable: bool = False  # a bool that also has --no-FLAG

    def allowed(self) -> tuple[str, ...] | None:
        """The allowed values now (a registry's names are read at this point), or None."""
        if self.choices is None:
            return None
        return tuple(self.choices() if callable(self.choices) else self.choices)


def option(
    default: Any = MISSING,
    *,
    help: str,
    flag: str | None = None,
    choices: Sequence[str] | Callable[[], Sequence[str]] | None = None,
    metavar: str | None = None,
    default_text: str | None = None,
    cli: bool = True,
    negatable: bool = False,
    default_factory: Any = MISSING,
) -> Any:
    """A ``dataclasses.field`` with its :class:`OptionInfo` in the metadata."""
    info = OptionInfo(
        help,
        flag,
        None if not choices else choices if callable(choices) else tuple(choices),
        metavar,
        default_text,
        cli,
        negatable,
    )
    if default_factory is not MISSING:
        return dataclasses.field(default_factory=default_factory, metadata={_KEY: info})
    return dataclasses.field(default=default, metadata={_KEY: info})


def option_info(f: Field[Any]) -> OptionInfo | None:
    """The :class:`OptionInfo` of a field made by :func:`option` (None for plain fields)."""
    return f.metadata.get(_KEY)


def field_types(cls: type) -> dict[str, Any]:
    """The resolved type of each field of dataclass ``cls``."""
    return typing.get_type_hints(cls)


def strip_optional(tp: Any) -> tuple[Any, bool]:
    """``X | None`` -> (X, True); anything else -> (tp, False)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
    return tp, False


def default_of(f: Field[Any]) -> Any:
    """The field's default value (calling its default factory)."""
    if f.default_factory is not MISSING:
        return f.default_factory()
    return None if f.default is MISSING else f.default


def flag_of(f: Field[Any]) -> str:
    """The command-line flag of an option field."""
    info = option_info(f)
    return (info.flag if info and info.flag else None) or "--" + f.name.replace("_", "-")


def show_default(value: Any) -> str:
    """A default as the help shows it."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value) or "none"
    return str(value)


def help_text(f: Field[Any]) -> str:
    """The field's help with its default: ``"… (default: X)"``."""
    info = option_info(f)
    assert info is not None, f.name
    shown = info.default_text if info.default_text is not None else show_default(default_of(f))
    return f"{info.help} (default: {shown})"


def option_flags(cls: type, prefix: str = "") -> dict[str, str]:
    """Parameter name -> flag for every command-line option of ``cls``, qualified by ``prefix``
    (``{"data.seed": "--data-seed", "data.augment.hflip": "--aug-hflip", ...}``); nested
    dataclass fields are walked."""
    out: dict[str, str] = {}
    types_ = field_types(cls)
    for f in dataclasses.fields(cls):
        name = f"{prefix}{f.name}"
        tp, _ = strip_optional(types_[f.name])
        if dataclasses.is_dataclass(tp):
            out.update(option_flags(tp, name + "."))  # type: ignore[arg-type]
            continue
        info = option_info(f)
        if info is not None and info.cli:
            out[name] = flag_of(f)
    return out


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _check(tp: Any, value: Any) -> bool:
    """Whether JSON ``value`` fits type ``tp`` (ints are floats too; bools are not ints)."""
    if tp is Any:
        return True
    tp, optional = strip_optional(tp)
    if value is None:
        return optional
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_check(a, value) for a in typing.get_args(tp))
    if origin is list or origin is tuple:
        (item, *_) = typing.get_args(tp) or (Any,)
        return isinstance(value, list) and all(_check(item, v) for v in value)
    if origin is dict:
        k, v = typing.get_args(tp) or (Any, Any)
        return isinstance(value, dict) and all(_check(k, a) and _check(v, b) for a, b in value.items())
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(tp, type):
        return isinstance(value, tp)
    return True


def from_dict(
    cls: type, d: Any, strict: bool = True, where: str = "", ignore: frozenset[str] = frozenset()
) -> Any:
    """Build dataclass ``cls`` from a JSON dict; nested dataclass fields take nested dicts.

    ``strict``: an unknown key or a value of the wrong type raises a one-line
    :class:`CamkitError` naming the key (qualified by ``where``, e.g. ``data.augment.hflip``);
    otherwise unknown keys are dropped (files written by older versions) and types are trusted.
    Keys in ``ignore`` are always dropped (``description``).
    """
    if not isinstance(d, dict):
        raise CamkitError(f"{where or 'the config'}: expected a JSON object, got {type(d).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - set(fields) - ignore)
    if strict and unknown:
        key = f"{where}.{unknown[0]}" if where else unknown[0]
        raise CamkitError(f"unknown config key {key!r}; valid keys: {', '.join(sorted(fields))}")
    types_ = field_types(cls)
    kw: dict[str, Any] = {}
    for name, value in d.items():
        if name not in fields:
            continue
        key = f"{where}.{name}" if where else name
        tp, _ = strip_optional(types_[name])
        if dataclasses.is_dataclass(tp) and isinstance(value, dict):
            kw[name] = from_dict(tp, value, strict, key)  # type: ignore[arg-type]
        elif strict and not _check(types_[name], value):
            raise CamkitError(f"config key {key!r}: expected {_type_name(types_[name])}, got {value!r}")
        else:
            kw[name] = value
    return cls(**kw)
