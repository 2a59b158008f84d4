import numpy as np
import pytest
import torch
from PIL import Image

from camkit.viz import html as H
from camkit.viz.layouts import (
    compact_grid,
    draw_boxes,
    draw_mask,
    labelled_grid,
    method_comparison,
    overlays,
    strip,
    top_k_title,
)


def test_draw_boxes_by_hand() -> None:
    img = np.zeros((10, 12, 3), np.uint8)
    out = draw_boxes(img, torch.tensor([[2, 3, 6, 8]]), color=(0, 255, 0))
    assert (img == 0).all()  # the input is left alone
    for x, y in ((2, 3), (6, 3), (2, 8), (6, 8), (4, 3), (2, 5)):  # corners and edges, inclusive
        assert tuple(out[y, x]) == (0, 255, 0)
    assert tuple(out[5, 4]) == (0, 0, 0) and tuple(out[9, 7]) == (0, 0, 0)  # inside and outside


def test_draw_mask_tints_only_the_mask() -> None:
    img = np.full((4, 4, 3), 100, np.uint8)
    m = torch.zeros(4, 4, dtype=torch.bool)
    m[1, 2] = True
    out = draw_mask(img, m, color=(200, 0, 0), alpha=0.5)
    assert tuple(out[1, 2]) == (150, 50, 50) and tuple(out[0, 0]) == (100, 100, 100)


def test_compact_grid_and_strip_sizes(tmp_path) -> None:
    panels = [np.full((20, 30, 3), i * 20, np.uint8) for i in range(6)]
    compact_grid(tmp_path / "g.png", panels, cols=3, pad=2)
    assert Image.open(tmp_path / "g.png").size == (3 * 30 + 4 * 2, 2 * 20 + 3 * 2)
    strip(tmp_path / "s.png", panels, pad=2)
    assert Image.open(tmp_path / "s.png").size == (30 + 4, 6 * 20 + 7 * 2)


def test_titled_figures(tmp_path) -> None:
    images = torch.rand(3, 3, 32, 32)
    maps = torch.rand(3, 32, 32)
    panels = overlays(images, maps, alpha=0.3)
    names = ["cat", "dog", "fox"]
    titles = [top_k_title(names, torch.tensor([0.7, 0.2, 0.1]), torch.tensor([2, 0, 1]), label="fox")] * 3
    assert titles[0].splitlines() == ["label: fox", "fox: 0.70", "cat: 0.20", "dog: 0.10"]
    labelled_grid(tmp_path / "l.png", panels, titles, cols=2, tile=1.5)
    method_comparison(tmp_path / "c.png", images, {"cam": maps, "grad-cam": maps}, ["a", "b", "c"],
                      {"cam": [0.5, 0.6, 0.7], "grad-cam": None})  # fmt: skip
    for f in ("l.png", "c.png"):
        im = np.asarray(Image.open(tmp_path / f))
        assert im.shape[0] > 100 and im.std() > 5


def test_html_page_is_self_contained(tmp_path) -> None:
    md = "**Table A** (note):\n\n| a | b |\n|---|---:|\n| x | 1.5 |\n\n![x](x.png)\n"
    page = H.page("t <1>", [("S", H.markdown_to_html(md) + H.figure(np.zeros((4, 4, 3), np.uint8), "z"))])
    assert "<table>" in page and "<td>1.5</td>" in page and "<h3>Table A (note):</h3>" in page
    assert 'src="data:image/png;base64,' in page and "x.png" not in page
    assert "t &lt;1&gt;" in page and "http" not in page.replace("http-equiv", "")


@pytest.mark.parametrize("value,expected", [(None, "—"), (0.123456, "0.1235"), (3, "3")])
def test_fmt(value, expected) -> None:
    assert H.fmt(value) == expected
