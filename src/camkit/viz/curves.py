"""Curve plots (matplotlib, Agg): IoU against threshold, and pixel precision-recall."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from camkit.io import atomic_path


def _save(fig: object, path: str | os.PathLike[str]) -> None:
    import matplotlib.pyplot as plt

    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, dpi=110, format="png")  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[arg-type]


def plot_iou_curve(
    path: str | os.PathLike[str], curves: dict[str, tuple[Sequence[float], Sequence[float]]], title: str = ""
) -> None:
    """Mean IoU against threshold, one line per name: {name: (thresholds, miou)}; peaks marked."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.6))
    for name, (t, v) in curves.items():
        k = max(range(len(v)), key=lambda i: v[i])
        (line,) = ax.plot(t, v, label=f"{name} (peak {v[k]:.3f} at {t[k]:.2f})")
        ax.plot([t[k]], [v[k]], "o", color=line.get_color())
    ax.set_xlabel("threshold")
    ax.set_ylabel("mean IoU")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    _save(fig, path)


def plot_pr_curve(
    path: str | os.PathLike[str],
    precision: Sequence[float],
    recall: Sequence[float],
    ap: float | None,
    title: str = "",
) -> None:
    """Pixel precision against recall, with the PxAP in the legend."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    ax.step(recall, precision, where="post", label=f"PxAP {ap:.1f}" if ap is not None else "PxAP n/a")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    _save(fig, path)
