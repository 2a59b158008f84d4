"""The method registry: names -> method classes, feeding the CLI's ``--method`` choices.

Each method module registers its class with ``@register("name")``; every module of
:mod:`camkit.methods` is imported the first time the registry is read
(:class:`camkit.core.registry.Registry`), so a new method is one new file. Registering a name
twice raises, so two modules can never silently shadow each other.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from camkit.core.registry import Registry

if TYPE_CHECKING:
    from camkit.methods.base import CAMMethod

METHODS: Registry[type[CAMMethod]] = Registry("method", option="method", package="camkit.methods")
register = METHODS.register


def method_table(registry: Registry[type[CAMMethod]] = METHODS) -> str:
    """A markdown table of the registered methods, sorted by name: name, what it needs, reference
    (sorted, so the table does not depend on which method module was imported first)."""
    rows = ["| method | needs | reference |", "|---|---|---|"]
    for name in sorted(registry):
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


def method_options(
    name: str, options: dict[str, Any], registry: Registry[type[CAMMethod]] = METHODS
) -> dict[str, Any]:
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


def option_methods(option: str, registry: Registry[type[CAMMethod]] = METHODS) -> list[str]:
    """The methods whose class declares ``option`` in its ``extra_options`` (``prototypes`` ->
    ``["lpcam", "lpcam-f"]``), in registration order."""
    return [n for n in registry if option in getattr(registry.get(n), "extra_options", ())]
