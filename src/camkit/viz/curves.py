"""Curve plots (matplotlib, Agg): IoU against threshold, pixel precision-recall, training curves."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from camkit.viz.grid import figure_grid


@contextlib.contextmanager
def _figure(path: str | os.PathLike[str], size: tuple[float, float], title: str) -> Iterator[Any]:
    """Yield the axes of a new figure; on exit set the title, lay out and save it atomically."""
    with figure_grid(path, 1, 1, size, dpi=110) as (_, axes):
        ax = axes[0][0]
        yield ax
        if title:
            ax.set_title(title, fontsize=9)


def _unit_axes(ax: Any, xlabel: str, ylabel: str, ymax: float = 1.0) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, ymax)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def plot_iou_curve(
    path: str | os.PathLike[str],
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    title: str = "",
) -> None:
    """Mean IoU against threshold, one line per name: {name: (thresholds, miou)}; peaks marked."""
    with _figure(path, (5, 3.6), title) as ax:
        for name, (t, v) in curves.items():
            k = max(range(len(v)), key=lambda i: v[i])
            (line,) = ax.plot(t, v, label=f"{name} (peak {v[k]:.3f} at {t[k]:.2f})")
            ax.plot([t[k]], [v[k]], "o", color=line.get_color())
        _unit_axes(ax, "threshold", "mean IoU")


def plot_pr_curve(
    path: str | os.PathLike[str],
    precision: Sequence[float],
    recall: Sequence[float],
    ap: float | None,
    title: str = "",
) -> None:
    """Pixel precision against recall, with the PxAP in the legend."""
    with _figure(path, (4.2, 3.6), title) as ax:
        ax.step(recall, precision, where="post", label=f"PxAP {ap:.1f}" if ap is not None else "PxAP n/a")
        _unit_axes(ax, "recall", "precision", ymax=1.02)


def plot_training(path: str | os.PathLike[str], history: Sequence[dict[str, float]], title: str = "") -> None:
    """Training and validation loss per epoch, and the validation accuracy on a second axis."""
    ep = [h["epoch"] for h in history]
    with _figure(path, (5, 3.6), title) as ax:
        ax.plot(ep, [h["train_loss"] for h in history], "o-", label="train loss")
        ax.plot(ep, [h["val_loss"] for h in history], "s-", label="val loss")
        ax.set_xlabel("epoch")
        ax.set_ylabel("cross-entropy")
        ax.grid(alpha=0.3)
        acc = ax.twinx()
        acc.plot(ep, [h["val_accuracy"] for h in history], "^--", color="tab:green", label="val accuracy")
        acc.set_ylabel("accuracy")
        acc.set_ylim(0, 1)
        lines = ax.get_legend_handles_labels()[0] + acc.get_legend_handles_labels()[0]
        ax.legend(lines, [ln.get_label() for ln in lines], fontsize=7)
