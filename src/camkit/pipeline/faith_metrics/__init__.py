"""The faithfulness metrics ``camkit faithfulness`` can run, by name: one module each.

Every module of this package is imported the first time the registry is read
(:class:`camkit.core.registry.Registry`), so adding a metric is one new file here: a
:class:`FaithMetric` subclass decorated with ``@register("name")`` that scores batches
(:meth:`FaithMetric.update`) and returns its means (:meth:`FaithMetric.compute`).
"""

from __future__ import annotations

import inspect
from typing import Any

from camkit.core.registry import Registry
from camkit.pipeline.faith_metrics.base import FaithBatch, FaithMetric, Mean

FAITH_METRICS: Registry[type[FaithMetric]] = Registry(
    "faithfulness metric", option="metric", package="camkit.pipeline.faith_metrics"
)
register = FAITH_METRICS.register


def get_metric(name: str) -> type[FaithMetric]:
    """The metric class registered as ``name`` (one-line error with close names otherwise)."""
    return FAITH_METRICS.get(name)


def metric_names() -> list[str]:
    """The registered metric names."""
    return FAITH_METRICS.names()


def build_metric(name: str, options: dict[str, Any]) -> FaithMetric:
    """An instance of metric ``name`` with the part of ``options`` its constructor takes."""
    cls = get_metric(name)
    params = inspect.signature(cls.__init__).parameters
    return cls(**{k: v for k, v in options.items() if k in params})


__all__ = [
    "FAITH_METRICS",
    "FaithBatch",
    "FaithMetric",
    "Mean",
    "build_metric",
    "get_metric",
    "metric_names",
    "register",
]
