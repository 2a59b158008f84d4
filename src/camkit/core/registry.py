"""One registry for every pluggable kind: map methods, training objectives, dataset sources.

As in timm, a registry maps names to classes, filled by a decorator in the module that
defines each class. A registry may own a package (``camkit.methods``,
``camkit.train.objectives``, ``camkit.data.sources``): every module in it is imported the first
time the registry is read, so adding a method, mode or dataset is one new file there.
Registering a name twice raises, so two modules never silently shadow each other.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from camkit.core.errors import OptionError, close_matches

T = TypeVar("T", bound=type)


class Registry(Generic[T]):
    """name -> class. ``kind`` names the thing in messages ("method"); ``option`` is the
    parameter whose values are these names ("method", "mode", "dataset"); ``package``, when
    given, is imported module by module on first read."""

    def __init__(self, kind: str, option: str, package: str | None = None) -> None:
        self.kind, self.option, self.package = kind, option, package
        self._items: dict[str, T] = {}
        self._loaded = package is None

    def register(self, name: str) -> Callable[[T], T]:
        """Class decorator: register the class under ``name`` (also set as ``cls.name``)."""

        def deco(cls: T) -> T:
            if name in self._items:
                raise ValueError(
                    f"{self.kind} {name!r} is already registered by {self._items[name].__module__}"
                )
            cls.name = name  # type: ignore[attr-defined]  # every registered base declares name: ClassVar[str]
            self._items[name] = cls
            return cls

        return deco

    def _load(self) -> dict[str, T]:
        if not self._loaded and self.package is not None:
            self._loaded = True
            pkg = importlib.import_module(self.package)
            for mod in sorted(m.name for m in pkgutil.iter_modules(pkg.__path__)):
                importlib.import_module(f"{self.package}.{mod}")
        return self._items

    def get(self, name: str) -> T:
        """The class registered as ``name``; an :class:`OptionError` listing the close names."""
        items = self._load()
        if name not in items:
            raise OptionError(
                self.option, f"unknown {self.kind}; choose one of {close_matches(name, list(items))}", name
            )
        return items[name]

    def names(self) -> list[str]:
        """The registered names, in registration order."""
        return list(self._load())

    def __contains__(self, name: object) -> bool:
        return name in self._load()

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._load()))

    def __len__(self) -> int:
        return len(self._load())
