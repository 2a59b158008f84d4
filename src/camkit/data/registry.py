"""The dataset registry: one file per data source under :mod:`camkit.data.sources`.

A source turns a :class:`~camkit.data.datasets.DataConfig` and a split name into a torch
``Dataset`` of sample dicts (see :mod:`camkit.data.datasets`), and names its classes. Adding a
dataset is one new file in ``camkit/data/sources/`` with a class decorated by
:func:`register_dataset` (found automatically) plus its test; see CONTRIBUTING.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from torch.utils.data import Dataset

from camkit.core.errors import OptionError
from camkit.core.registry import Registry

if TYPE_CHECKING:
    from camkit.data.datasets import DataConfig


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


DATASETS: Registry[type[DatasetSource]] = Registry("dataset", option="dataset", package="camkit.data.sources")
register_dataset = DATASETS.register


def dataset_names() -> tuple[str, ...]:
    """The registered dataset names, in registration order (source modules by name)."""
    return tuple(DATASETS.names())


def get_dataset(name: str) -> DatasetSource:
    """The source registered as ``name``; an OptionError listing the close names if none is."""
    return DATASETS.get(name)()
