"""One way to make a matplotlib figure: a grid of axes, laid out and saved atomically as PNG."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from camkit.core.io import atomic_path


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (no display needed), unless one is already chosen."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


@contextlib.contextmanager
def figure_grid(
    path: str | os.PathLike[str], rows: int, cols: int, tile: float | tuple[float, float], dpi: int = 100
) -> Iterator[tuple[Any, Any]]:
    """Yield ``(fig, axes)`` for a ``rows`` x ``cols`` grid, ``axes[i][j]`` always 2-D.

    ``tile``: each cell's (width, height) in inches (one number: square), so the figure is
    ``(cols · width, rows · height)``. When the body returns, the figure is laid out
    (``tight_layout``) and written to ``path`` as PNG at ``dpi`` through an atomic rename;
    it is closed in any case.
    """
    plt = pyplot()
    w, h = (tile, tile) if isinstance(tile, (int, float)) else tile
    fig, axes = plt.subplots(rows, cols, figsize=(cols * w, rows * h), squeeze=False)
    try:
        yield fig, axes
        fig.tight_layout()
        with atomic_path(Path(path)) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png")
    finally:
        plt.close(fig)
