"""The Flower-17 study's maps: CAM, the three ReCAMs and LayerCAM on the same images, drawn
in the study's three layouts with its display stretch, and, where the dataset has masks,
scored (peak IoU, MaxBoxAccV2, PxAP).

Map of each method, for the predicted class (figures) or the label (scores):

* ``CAM``: the CAM model's w_c^T f, min-max normalized;
* ``ReCAM-<norm>``: the ReCAM model trained with ``norm``, camkit's ``recam`` map (w ⊙ w'),
  normalized with that same ``norm`` (the study normalizes each model's maps as it trained);
* ``LayerCAM``: the CAM model, LayerCAM on three blocks fused with weights 0.4/0.4/0.2 after
  the study's tanh(2 M / max M) per block.

Figures then apply the study's display stretch (zero below 0.3, ×1.5, clamp at 1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, Subset

from camkit.core.ops import display_stretch, normalize, upsample
from camkit.models.camnet import CAMNet
from camkit.pipeline.evaluate import score_maps
from camkit.pipeline.extract import extract

LAYERCAM = "LayerCAM"


def method_kwargs(name: str, layers: Sequence[str], weights: Sequence[float]) -> tuple[str, dict[str, Any]]:
    """(camkit method, its options) for one of the study's map columns."""
    if name == LAYERCAM:
        return "layercam", {"layers": [f"backbone.{n}" for n in layers], "layer_weights": list(weights),
                            "layer_norm": "tanh"}  # fmt: skip
    if name.startswith("ReCAM"):
        return "recam", {"recam_weights": "prod"}
    return "cam", {}


def display_norm(name: str) -> str | None:
    """How a column's raw maps become [0, 1] (None: LayerCAM's fusion already did)."""
    if name == LAYERCAM:
        return None
    return name.split("-", 1)[1] if name.startswith("ReCAM-") else "minmax"


def study_maps(
    models: Mapping[str, CAMNet],
    ds: Dataset,
    target: str,
    layers: Sequence[str],
    weights: Sequence[float],
    device: str | torch.device = "cpu",
) -> dict[str, torch.Tensor]:
    """{column: (N, H, W) maps in [0, 1] at input size} for every model of ``models``."""
    out: dict[str, torch.Tensor] = {}
    for name, model in models.items():
        method, kw = method_kwargs(name, layers, weights)
        ms = extract(model, ds, method, target, device=device, **kw)
        m = ms.maps.float()
        norm = display_norm(name)
        out[name] = (upsample(normalize(m, norm), ms.image_size) if norm else m).clamp(0, 1)
    return out


def localization(
    models: Mapping[str, CAMNet],
    ds: Dataset,
    layers: Sequence[str],
    weights: Sequence[float],
    device: str | torch.device = "cpu",
) -> dict[str, dict[str, float]]:
    """{column: {peak_iou, max_box_acc_v2, pxap}} of each column's label-class maps on ``ds``
    (masks required; scores as ``camkit evaluate`` does)."""
    res = {}
    for name, model in models.items():
        method, kw = method_kwargs(name, layers, weights)
        r = score_maps(extract(model, ds, method, "label", device=device, **kw), ds, wsol=True)
        res[name] = {"peak_iou": float(r["peak_iou"]), "max_box_acc_v2": float(r["max_box_acc_v2"] or 0.0),
                     "pxap": float(r["pxap"] or 0.0)}  # fmt: skip
    return res


def claim(loc: Mapping[str, Mapping[str, float]], metrics: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per metric: the best and worst column and whether the study's ordering holds (LayerCAM
    best and a ReCAM worst)."""
    out = {}
    for k in metrics:
        order = sorted(loc, key=lambda n: loc[n][k], reverse=True)
        out[k] = {"best": order[0], "worst": order[-1],
                  "holds": order[0] == LAYERCAM and order[-1].startswith("ReCAM")}  # fmt: skip
    return out


def pick_images(n_total: int, n: int, seed: int) -> list[int]:
    """The ``n`` images of the figures: a seeded random draw from the split (the study's
    "randomly choose 12 images from the validation set"), in split order."""
    g = torch.Generator().manual_seed(seed)
    return sorted(torch.randperm(n_total, generator=g)[:n].tolist())


def figures(
    out: Path,
    models: Mapping[str, CAMNet],
    ds: Dataset,
    idx: list[int],
    names: Sequence[str],
    layers: Sequence[str],
    weights: Sequence[float],
    cut: float = 0.3,
    gain: float = 1.5,
    device: str | torch.device = "cpu",
) -> list[str]:
    """The study's three layouts of the same images, every map display-stretched:
    ``comparison.png`` (one row per image: the image, then each column; the strips side by side),
    ``labelled.png`` (the labelled grid, one row per image; titles: the column, the label and
    that model's top-3 predictions), ``grid-<column>.png`` (the compact 3 x 4 grid) and
    ``strip-<column>.png`` (one column). Returns the files written."""
    from camkit.viz.layouts import compact_grid, labelled_grid, strip, top_k_title
    from camkit.viz.overlay import overlay, to_uint8_image

    out.mkdir(parents=True, exist_ok=True)
    sub = Subset(ds, idx)
    maps = {
        k: display_stretch(v, cut, gain)
        for k, v in study_maps(models, sub, "pred", layers, weights, device).items()
    }
    images = torch.stack([sub[i]["image"] for i in range(len(idx))])
    labels = [int(sub[i]["label"]) for i in range(len(idx))]
    rows: list[Any] = []
    titles: list[str] = []
    panels: dict[str, list[Any]] = {k: [] for k in maps}
    for i in range(len(idx)):
        rows.append(to_uint8_image(images[i]))
        for k in maps:
            panels[k].append(overlay(images[i], maps[k][i]))
            rows.append(panels[k][-1])
    compact_grid(out / "comparison.png", rows, cols=len(maps) + 1)
    files = ["comparison.png", "labelled.png"]
    tops = {}
    for k in maps:
        with torch.no_grad():
            probs = models[k].eval().to(device)(images.to(device)).logits.softmax(1).cpu()
        tops[k] = probs.topk(min(3, probs.shape[1]), dim=1)
        slug = k.lower()
        compact_grid(out / f"grid-{slug}.png", panels[k], cols=4)
        strip(out / f"strip-{slug}.png", panels[k])
        files += [f"grid-{slug}.png", f"strip-{slug}.png"]
    for i in range(len(idx)):
        for k in maps:
            t = top_k_title(names, tops[k].values[i], tops[k].indices[i], names[labels[i]])
            titles.append(f"{k}\n{t}")
    labelled_grid(out / "labelled.png", [p for i in range(len(idx)) for p in (panels[k][i] for k in maps)],
                  titles, cols=len(maps), tile=1.6)  # fmt: skip
    return files
