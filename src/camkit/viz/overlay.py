"""Heatmap overlays, binary masks and comparison grids (matplotlib colormaps, PIL for I/O).

Maps stay tensors until this module turns them into uint8 pictures at write time.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from camkit.core.io import atomic_path
from camkit.viz.grid import figure_grid

DEFAULT_CMAP = "jet"


def colorize(m: torch.Tensor, cmap: str = DEFAULT_CMAP) -> np.ndarray:
    """(H, W) map in [0, 1] -> (H, W, 3) uint8 RGB through a matplotlib colormap."""
    import matplotlib

    rgba = matplotlib.colormaps[cmap](m.detach().float().clamp(0, 1).cpu().numpy())
    return (rgba[..., :3] * 255 + 0.5).astype(np.uint8)


def to_uint8_image(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) float in [0, 1] -> (H, W, 3) uint8."""
    return (image.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255 + 0.5).astype(np.uint8)


def overlay(image: torch.Tensor, m: torch.Tensor, alpha: float = 0.5, cmap: str = DEFAULT_CMAP) -> np.ndarray:
    """Blend a colorized (H, W) map over a (3, H, W) image: (1-alpha)·image + alpha·heat. -> (H, W, 3) uint8."""
    img = to_uint8_image(image).astype(np.float32)
    heat = colorize(m, cmap).astype(np.float32)
    return ((1 - alpha) * img + alpha * heat + 0.5).clip(0, 255).astype(np.uint8)


def mask_image(mask: torch.Tensor) -> np.ndarray:
    """(H, W) bool -> (H, W) uint8 in {0, 255}."""
    return mask.detach().bool().cpu().numpy().astype(np.uint8) * 255


def save_png(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write an (H, W) or (H, W, 3) uint8 array as PNG, atomically."""
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")


def comparison_grid(
    path: str | os.PathLike[str],
    images: torch.Tensor,
    maps: torch.Tensor,
    gt: torch.Tensor | None,
    threshold: float,
    titles: Sequence[str],
    alpha: float = 0.5,
    cmap: str = DEFAULT_CMAP,
    tile: float = 1.6,
) -> None:
    """One row per image: image | overlay | predicted mask | ground truth (if any).

    images (B, 3, H, W) in [0, 1]; maps (B, H, W) in [0, 1]; gt (B, H, W) bool or None.
    """
    cols = 4 if gt is not None else 3
    n = images.shape[0]
    heads = ["image", "CAM overlay", f"mask (t={threshold:.2f})", "ground truth"][:cols]
    with figure_grid(path, n, cols, tile) as (_, axes):
        for i in range(n):
            panels = [
                to_uint8_image(images[i]),
                overlay(images[i], maps[i], alpha, cmap),
                mask_image(maps[i] >= threshold),
            ]
            if gt is not None:
                panels.append(mask_image(gt[i]))
            for j, p in enumerate(panels):
                ax = axes[i][j]
                ax.imshow(p, cmap="gray" if p.ndim == 2 else None, vmin=0, vmax=255)
                ax.set_xticks([])
                ax.set_yticks([])
                if i == 0:
                    ax.set_title(heads[j], fontsize=8)
            axes[i][0].set_ylabel(titles[i], fontsize=7)


def write_visuals(
    out_dir: str | os.PathLike[str],
    images: torch.Tensor,
    maps: torch.Tensor,
    masks: torch.Tensor | None,
    ids: Sequence[str],
    titles: Sequence[str],
    threshold: float,
    alpha: float = 0.5,
    cmap: str = DEFAULT_CMAP,
) -> list[Path]:
    """Write ``overlays/<id>.png``, ``masks/<id>.png`` and ``grid.png`` under ``out_dir``.

    images (B, 3, H, W); maps (B, H, W) in [0, 1]; masks (B, H, W) bool or None.
    """
    out = Path(out_dir)
    written = []
    for i, name in enumerate(ids):
        safe = name.replace("/", "_")
        p = out / "overlays" / f"{safe}.png"
        save_png(p, overlay(images[i], maps[i], alpha, cmap))
        q = out / "masks" / f"{safe}.png"
        save_png(q, mask_image(maps[i] >= threshold))
        written += [p, q]
    grid = out / "grid.png"
    comparison_grid(grid, images, maps, masks, threshold, titles, alpha, cmap)
    return [*written, grid]
