"""The argparse side of :mod:`camkit.core.options`: arguments generated from a config
dataclass's option fields, parsed values applied back onto a config, and ``(default: X)``
appended to every help that does not state its default."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any

from camkit.core.options import field_types, flag_of, help_text, option_info, show_default, strip_optional


def _dest(f: dataclasses.Field[Any]) -> str:
    """The namespace attribute of an option: its flag's name (``--data-seed`` -> data_seed), or
    the field's name for a ``--no-`` flag."""
    flag = flag_of(f)
    return f.name if flag.startswith("--no-") else flag[2:].replace("-", "_")


def add_dataclass_args(group: Any, cls: type, only: tuple[str, ...] = (), default: Any = None) -> None:
    """One argument per command-line option field of ``cls`` (nested dataclasses included),
    with the help and default from the field. The argparse default is ``default`` (None: the
    dataclass decides, and :func:`apply_args` sees only what the user gave)."""
    types = field_types(cls)
    for f in dataclasses.fields(cls):
        tp, _ = strip_optional(types[f.name])
        if dataclasses.is_dataclass(tp):
            add_dataclass_args(group, tp, only, default)  # type: ignore[arg-type]
            continue
        info = option_info(f)
        if info is None or not info.cli or (only and f.name not in only):
            continue
        flag = flag_of(f)
        kw: dict[str, Any] = {"dest": _dest(f), "default": default, "help": help_text(f).replace("%", "%%")}
        if tp is bool:
            if flag.startswith("--no-"):
                kw["action"] = "store_false"
            else:
                kw["action"] = argparse.BooleanOptionalAction if info.negatable else "store_true"
        elif typing.get_origin(tp) is list:
            kw["action"] = "append"
        else:
            kw["type"] = tp
        if info.choices:
            kw["choices"] = info.allowed()
        if info.metavar:
            kw["metavar"] = info.metavar
        group.add_argument(flag, **kw)


def apply_args(obj: Any, args: argparse.Namespace) -> Any:
    """A copy of config dataclass ``obj`` with every option the user gave (not None) applied,
    nested dataclasses included."""
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            new = apply_args(value, args)
            if new != value:
                changes[f.name] = new
        elif option_info(f) is not None and getattr(args, _dest(f), None) is not None:
            changes[f.name] = getattr(args, _dest(f))
    return dataclasses.replace(obj, **changes)


def show_defaults(parser: argparse.ArgumentParser) -> None:
    """Append ``(default: X)`` to every option's help that does not state its default itself
    (X from the argparse default: ``off`` for switches, ``none`` when unset), here and in every
    subcommand, so no help repeats a default by hand."""
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            for sp in a.choices.values():
                show_defaults(sp)
        elif a.option_strings and a.help and a.help != argparse.SUPPRESS and "(default" not in a.help:
            if isinstance(a, (argparse._HelpAction, argparse._VersionAction)) or a.required:
                continue
            shown = "off" if isinstance(a, argparse._StoreTrueAction) else show_default(a.default)
            if isinstance(a, argparse._CountAction):
                continue
            a.help += f" (default: {shown})".replace("%", "%%")
