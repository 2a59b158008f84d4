"""``camkit explain``: where does this model look? Top-k classes and the maps of several
methods for a handful of images, as PNGs and one self-contained HTML page."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from camkit.core.io import write_json
from camkit.core.ops import logits_of, minmax
from camkit.core.progress import NoProgress, Progress
from camkit.data.base import FileDataset
from camkit.data.folders import Record, find_images
from camkit.methods import get_method, method_options
from camkit.viz import html as H
from camkit.viz.layouts import compact_grid, labelled_grid, method_comparison, overlays, strip, top_k_title
from camkit.viz.overlay import DEFAULT_CMAP, save_png, to_uint8_image

log = logging.getLogger(__name__)


def explain(
    model: nn.Module,
    class_names: Sequence[str],
    inputs: Sequence[str | os.PathLike[str]],
    methods: Sequence[str],
    out_dir: str | os.PathLike[str],
    image_size: int = 224,
    topk: int = 5,
    layers: Any = None,
    device: torch.device | str = "cpu",
    alpha: float = 0.5,
    cmap: str = DEFAULT_CMAP,
    tile: float = 1.8,
    progress: Progress | None = None,
    **method_kw: Any,
) -> dict[str, Any]:
    """Top-``topk`` predictions and the maps of ``methods`` (for the top-1 class) of each image.

    Writes under ``out_dir``: ``comparison.png`` (images x methods), per method
    ``<m>_grid.png`` (top-3 in each title), ``<m>_compact.png`` and ``<m>_strip.png``,
    ``overlays/<image>_<m>.png``, ``predictions.json`` and ``index.html``. Returns the predictions
    and, under ``layers``, each method's target layer names (``layers`` None: the backbone of
    a CAMNet, the automatic layer of any other model).
    """
    for m in methods:
        get_method(m)
    paths = find_images(list(inputs))
    ds = FileDataset([Record(p, -1) for p in paths], image_size)
    images = torch.stack([ds[i]["image"] for i in range(len(ds))]).to(device)
    ids = [p.stem for p in paths]
    progress = progress or NoProgress()
    model.eval().to(device)
    with torch.no_grad():
        out = model(images)
    logits = logits_of(out)
    probs = logits.softmax(1)
    k = min(topk, probs.shape[1])
    top_p, top_c = probs.topk(k, dim=1)
    preds = [
        [{"class": int(c), "name": class_names[int(c)] if int(c) < len(class_names) else str(int(c)), "prob": float(p)}
         for p, c in zip(top_p[i], top_c[i], strict=True)]
        for i in range(len(paths))
    ]  # fmt: skip
    out_dir = Path(out_dir)
    maps: dict[str, torch.Tensor] = {}
    chosen: dict[str, list[str]] = {}
    progress.start(len(methods), "methods")
    for m in methods:
        with get_method(m)(model, layers, **method_options(m, method_kw)) as cam:
            r = cam(images, top_c[:, 0])
            chosen[m] = [name for name, _ in cam.layers]
        maps[m] = minmax(r.maps).cpu()
        progress.advance(1)
    progress.close()
    images = images.cpu()
    titles3 = [top_k_title(class_names, top_p[i, :3], top_c[i, :3]) for i in range(len(paths))]
    rows = [f"{ids[i]}: {preds[i][0]['name']} ({preds[i][0]['prob']:.2f})" for i in range(len(paths))]
    method_comparison(out_dir / "comparison.png", images, maps, rows, None, alpha, cmap, tile)
    for m in methods:
        panels = overlays(images, maps[m], alpha, cmap)
        labelled_grid(out_dir / f"{m}_grid.png", panels, titles3, cols=min(4, len(panels)), tile=tile + 0.4)
        compact_grid(out_dir / f"{m}_compact.png", panels, cols=min(4, len(panels)))
        strip(out_dir / f"{m}_strip.png", panels)
        for i, p in enumerate(panels):
            save_png(out_dir / "overlays" / f"{ids[i]}_{m}.png", p)
    write_json(
        out_dir / "predictions.json",
        {"images": [str(p) for p in paths], "methods": list(methods), "layers": chosen, "top_k": preds},
    )
    sections = [
        ("Predictions", "".join(
            f"<h3>{H.esc(ids[i])}</h3>" + H.table(["rank", "class", "probability"],
            [[j + 1, q["name"], q["prob"]] for j, q in enumerate(preds[i])]) for i in range(len(paths))
        )),
        ("Methods side by side (top-1 class)", H.figure(out_dir / "comparison.png", "images x methods")),
        ("Per method", "".join(
            "<h3>" + H.esc(m) + "</h3>" + H.figure(out_dir / f"{m}_grid.png", f"{m}: top-3 in each title")
            + H.figure(out_dir / f"{m}_compact.png", f"{m}: compact grid") for m in methods
        )),
        ("Inputs", "".join(H.figure(to_uint8_image(images[i]), ids[i], 160) for i in range(len(paths)))),
    ]  # fmt: skip
    H.write_page(out_dir / "index.html", "camkit explain", sections)
    return {"images": [str(p) for p in paths], "top_k": preds, "out": str(out_dir), "layers": chosen}
