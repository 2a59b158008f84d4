"""Pictures: overlays, masks and grids."""

from camkit.viz.overlay import colorize, comparison_grid, mask_image, overlay, save_png, write_visuals

__all__ = ["colorize", "comparison_grid", "mask_image", "overlay", "save_png", "write_visuals"]
