"""Datasets: the embedded Fashion-MNIST canvas benchmark, ImageFolder trees, the lab layout."""

from camkit.data.datasets import DATASETS, ArrayDataset, DataConfig, FileDataset, build_split, class_names

__all__ = ["DATASETS", "ArrayDataset", "DataConfig", "FileDataset", "build_split", "class_names"]
