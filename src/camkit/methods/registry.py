"""The method registry: names -> method classes, feeding the CLI's ``--method`` choices.

Registration happens once, at import of :mod:`camkit.methods`; registering a name twice
raises, so two modules can never silently shadow each other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TypeVar

from camkit.core.errors import CamkitError, close_matches

if TYPE_CHECKING:
    from camkit.methods.base import CAMMethod

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
            cls.name = name  # type: ignore[attr-defined]  # T is any class; each registry's classes declare name
            self._items[name] = cls
            return cls

        return deco

    def get(self, name: str) -> type:
        try:
            return self._items[name]
        except KeyError:
            raise CamkitError(
                f"--method {name}: unknown {self.kind}; choose one of {close_matches(name, self.names())}"
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
        cls: type[CAMMethod] = registry.get(name)
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
