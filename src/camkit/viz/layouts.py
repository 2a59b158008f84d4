"""Figure layouts: boxes and masks drawn on images, the Flower-17 study's three layouts
(a labelled grid with the top-3 predictions in each title, a compact grid, a one-column
strip), and a side-by-side comparison of methods with each map's IoU.

Panels are (H, W, 3) uint8 arrays (see :mod:`camkit.viz.overlay`); every colormap goes
through :func:`camkit.viz.overlay.colorize`, so all outputs share one colormap per call.
Matplotlib draws the titled figures; torchvision's ``make_grid`` tiles the compact ones.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from camkit.core.io import atomic_path
from camkit.viz.grid import figure_grid
from camkit.viz.overlay import DEFAULT_CMAP, overlay, to_uint8_image


def draw_boxes(
    image: np.ndarray,
    boxes: torch.Tensor | np.ndarray,
    color: tuple[int, int, int] = (0, 255, 0),
    width: int = 1,
) -> np.ndarray:
    """Rectangles for inclusive (x0, y0, x1, y1) pixel boxes on an (H, W, 3) uint8 image (a copy)."""
    pil = Image.fromarray(np.ascontiguousarray(image))
    draw = ImageDraw.Draw(pil)
    for b in np.asarray(boxes, dtype=np.int64).reshape(-1, 4):
        draw.rectangle([int(b[0]), int(b[1]), int(b[2]), int(b[3])], outline=color, width=width)
    return np.asarray(pil).copy()


def draw_mask(
    image: np.ndarray, mask: torch.Tensor, color: tuple[int, int, int] = (255, 0, 0), alpha: float = 0.4
) -> np.ndarray:
    """Tint the pixels of an (H, W) bool mask on an (H, W, 3) uint8 image (a copy)."""
    m = mask.detach().bool().cpu().numpy()
    out = image.astype(np.float32)
    out[m] = (1 - alpha) * out[m] + alpha * np.asarray(color, np.float32)
    return (out + 0.5).clip(0, 255).astype(np.uint8)


def overlays(
    images: torch.Tensor, maps: torch.Tensor, alpha: float = 0.5, cmap: str = DEFAULT_CMAP
) -> list[np.ndarray]:
    """(B, 3, H, W) images and (B, H, W) maps in [0, 1] -> B overlay panels."""
    return [overlay(images[i], maps[i], alpha, cmap) for i in range(images.shape[0])]


def labelled_grid(
    path: str | os.PathLike[str], panels: Sequence[np.ndarray], titles: Sequence[str], cols: int = 4,
    tile: float = 2.2, dpi: int = 100,
) -> None:  # fmt: skip
    """The study's labelled grid: panels in rows of ``cols``, each with its (multi-line) title,
    e.g. the label and the top-3 predictions with their scores."""
    n = len(panels)
    rows = max(1, -(-n // cols))
    with figure_grid(path, rows, cols, (tile, tile + 0.45), dpi) as (_, axes):
        for k in range(rows * cols):
            ax = axes[k // cols][k % cols]
            ax.axis("off")
            if k < n:
                ax.imshow(panels[k])
                ax.set_title(titles[k], fontsize=7, loc="left")


def compact_grid(
    path: str | os.PathLike[str], panels: Sequence[np.ndarray], cols: int = 4, pad: int = 2
) -> None:
    """The study's compact grid (3 x 4 for 12 images): panels tiled with ``pad`` pixels between,
    no titles, at the panels' own resolution. ``cols=1`` gives the one-column strip."""
    from torchvision.utils import make_grid

    t = torch.stack([torch.from_numpy(np.ascontiguousarray(p)).permute(2, 0, 1) for p in panels])
    grid = make_grid(t, nrow=cols, padding=pad, pad_value=255)
    with atomic_path(Path(path)) as tmp:
        Image.fromarray(grid.permute(1, 2, 0).numpy()).save(tmp, format="PNG")


def strip(path: str | os.PathLike[str], panels: Sequence[np.ndarray], pad: int = 2) -> None:
    """The study's one-column strip (``make_grid(nrow=1)``), for putting methods side by side."""
    compact_grid(path, panels, cols=1, pad=pad)


def method_comparison(
    path: str | os.PathLike[str],
    images: torch.Tensor,
    maps: Mapping[str, torch.Tensor],
    row_titles: Sequence[str],
    ious: Mapping[str, Sequence[float]] | None = None,
    alpha: float = 0.5,
    cmap: str = DEFAULT_CMAP,
    tile: float = 1.8,
    dpi: int = 100,
) -> None:
    """One row per image: the image, then each method's overlay, titled with its IoU when
    ``ious`` has one. images (B, 3, H, W); maps {method: (B, H, W) in [0, 1]}."""
    names = list(maps)
    n, cols = images.shape[0], len(names) + 1
    with figure_grid(path, n, cols, (tile, tile + 0.25), dpi) as (_, axes):
        for i in range(n):
            axes[i][0].imshow(to_uint8_image(images[i]))
            axes[i][0].set_title(row_titles[i], fontsize=7)
            for j, m in enumerate(names, start=1):
                axes[i][j].imshow(overlay(images[i], maps[m][i], alpha, cmap))
                title = m if ious is None or ious.get(m) is None else f"{m}  IoU {ious[m][i]:.2f}"
                axes[i][j].set_title(title, fontsize=7)
            for ax in axes[i]:
                ax.axis("off")


def top_k_title(
    names: Sequence[str], probs: torch.Tensor, classes: torch.Tensor, label: str | None = None
) -> str:
    """A grid title: the label (if known) and the top-k classes with their probabilities."""
    lines = [f"label: {label}"] if label else []
    lines += [
        f"{names[int(c)] if int(c) < len(names) else int(c)}: {float(p):.2f}"
        for p, c in zip(probs, classes, strict=True)
    ]
    return "\n".join(lines)
