"""The method registry: names -> method classes, feeding the CLI's ``--method`` choices.

Registration happens once, at import of :mod:`camkit.methods`; registering a name twice
raises, so two modules can never silently shadow each other.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from camkit.core.errors import OptionError, close_matches

T = TypeVar("T", bound=type)


class Registry:
    """A name -> class mapping that refuses duplicates."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, type] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(cls: T) -> T:
            if name in self._items:
                raise ValueError(
                    f"{self.kind} {name!r} is already registered by {self._items[name].__module__}"
                )
            cls.name = name  # type: ignore[attr-defined]
            self._items[name] = cls
            return cls

        return deco

    def get(self, name: str) -> type:
        try:
            return self._items[name]
        except KeyError:
            raise OptionError(
                "method", f"unknown {self.kind}; choose one of {close_matches(name, self.names())}", name
            ) from None

    def names(self) -> list[str]:
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)


METHODS = Registry("method")
register = METHODS.register


def method_table(registry: Registry = METHODS) -> str:
    """A markdown table of the registered methods: name, what it needs, reference."""
    rows = ["| method | needs | reference |", "|---|---|---|"]
    for name in registry:
        cls = registry.get(name)
        if getattr(cls, "needs", ""):
            kind = cls.needs
        elif getattr(cls, "uses_gradients", False):
            kind = "one backward"
        elif hasattr(cls, "class_weights"):
            kind = "GAP-linear head"
        elif name in ("score-cam", "ablation-cam"):
            kind = "C extra forwards"
        else:
            kind = "activations only"
        rows.append(f"| `{name}` | {kind} | {cls.reference} |")
    return "\n".join(rows) + "\n"


def method_options(name: str, options: dict[str, Any], registry: Registry = METHODS) -> dict[str, Any]:
    """The part of ``options`` that method ``name``'s constructor takes (e.g. ``prototypes``
    only for LPCAM), so one set of options can drive several methods."""
    accepted: set[str] = set(getattr(registry.get(name), "extra_options", ()))
    for klass in registry.get(name).__mro__:
        init = klass.__dict__.get("__init__")
        if init is not None:
            accepted |= {
                p.name
                for p in inspect.signature(init).parameters.values()
                if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            }
    return {k: v for k, v in options.items() if k in accepted}


def option_methods(option: str, registry: Registry = METHODS) -> list[str]:
    """The methods whose class declares ``option`` in its ``extra_options`` (``prototypes`` ->
    ``["lpcam", "lpcam-f"]``), in registration order."""
    return [n for n in registry if option in getattr(registry.get(n), "extra_options", ())]
