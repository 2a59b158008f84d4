"""viz.grid.figure_grid: the one way figures are made and saved."""

from pathlib import Path

import pytest
from PIL import Image

from camkit.viz.grid import figure_grid, pyplot


def test_figure_grid_size_save_and_close(tmp_path: Path) -> None:
    plt = pyplot()
    before = len(plt.get_fignums())
    with figure_grid(tmp_path / "g.png", 2, 3, (1.5, 1.2), dpi=50) as (fig, axes):
        assert axes.shape == (2, 3)
        axes[1][2].plot([0, 1], [1, 0])
    assert Image.open(tmp_path / "g.png").size == (225, 120)  # (3 · 1.5 in, 2 · 1.2 in) at 50 dpi
    with figure_grid(tmp_path / "one.png", 1, 1, 2.0, dpi=10) as (_, axes):
        assert axes.shape == (1, 1)
    assert Image.open(tmp_path / "one.png").size == (20, 20)
    with pytest.raises(RuntimeError), figure_grid(tmp_path / "bad.png", 1, 1, 1.0):
        raise RuntimeError("body fails")
    assert not (tmp_path / "bad.png").exists() and len(plt.get_fignums()) == before
