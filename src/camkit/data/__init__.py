"""Datasets: one registered source per file in camkit.data.sources (the embedded Fashion-MNIST
canvas benchmark and its multi-label variant, ImageFolder trees, the lab layout)."""

from camkit.data.base import ArrayDataset, FileDataset, dataset_len
from camkit.data.datasets import DATASETS, DataConfig, build_split, class_names
from camkit.data.registry import DatasetSource, dataset_names, get_dataset, register_dataset

__all__ = [
    "DATASETS",
    "ArrayDataset",
    "DataConfig",
    "DatasetSource",
    "FileDataset",
    "build_split",
    "class_names",
    "dataset_len",
    "dataset_names",
    "get_dataset",
    "register_dataset",
]
