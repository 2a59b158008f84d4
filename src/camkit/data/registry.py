"""The dataset registry: one file per data source under :mod:`camkit.data.sources`.

A source turns a :class:`~camkit.data.datasets.DataConfig` and a split name into a torch
``Dataset`` of sample dicts (see :mod:`camkit.data.datasets`), and names its classes. Adding a
dataset is one new file in ``camkit/data/sources/`` with a class decorated by
:func:`register_dataset` (found automatically) plus its test; see CONTRIBUTING.md.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, TypeVar

from torch.utils.data import Dataset

from camkit.core.errors import OptionError, close_matches

if TYPE_CHECKING:
    from camkit.data.datasets import DataConfig

_REGISTRY: dict[str, DatasetSource] = {}  # filled once, by the decorators of the source modules


class DatasetSource:
    """A kind of data. Subclasses set ``name``, ``summary`` and ``splits`` and implement
    :meth:`class_names` and :meth:`build`."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    #: multi-hot labels (K,) and class masks (0 background, class + 1 elsewhere)
    multilabel: ClassVar[bool] = False
    splits: ClassVar[tuple[str, ...]] = ("train", "val", "test")

    def class_names(self, cfg: DataConfig) -> list[str]:
        """The class names, in label order."""
        raise NotImplementedError

    def build(self, cfg: DataConfig, split: str) -> Dataset:
        """One split (un-augmented): a Dataset of sample dicts, images (3, S, S) in [0, 1]."""
        raise NotImplementedError

    def check_split(self, split: str) -> None:
        """An OptionError naming the splits this source has, for any other."""
        if split not in self.splits:
            raise OptionError("split", f"the {self.name} data has {', '.join(self.splits)}", split)


S = TypeVar("S", bound=type[DatasetSource])


def register_dataset(name: str) -> Callable[[S], S]:
    """Class decorator: register a :class:`DatasetSource` subclass under ``name``."""

    def deco(cls: S) -> S:
        if name in _REGISTRY:
            raise ValueError(f"dataset {name!r} is registered twice")
        cls.name = name
        _REGISTRY[name] = cls()
        return cls

    return deco


def _discover() -> None:
    """Import every module of camkit.data.sources once, which registers its datasets."""
    from camkit.data import sources

    for info in pkgutil.iter_modules(sources.__path__):
        importlib.import_module(f"{sources.__name__}.{info.name}")


def dataset_names() -> tuple[str, ...]:
    """The registered dataset names, in registration order."""
    _discover()
    return tuple(_REGISTRY)


def get_dataset(name: str) -> DatasetSource:
    """The source registered as ``name``; an OptionError listing the others if there is none."""
    _discover()
    if name not in _REGISTRY:
        raise OptionError("dataset", f"unknown; choose one of {close_matches(name, list(_REGISTRY))}", name)
    return _REGISTRY[name]
