"""``camkit report RUN_DIR``: one self-contained HTML page for a training run or a study.

A training run gets its config, its training curves and epoch table, its summary, and for
each map method: overall scores, per-class scores, the IoU-threshold and PR curves, and a
gallery of overlays, worst cases first. Multi-label runs are scored as seeds (mIoU, FP, FN,
precision, recall, per-class IoU). A study folder (``study.json``) gets its config, its
tables and its figures. Everything is embedded; the page needs no server and no network.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from camkit.core.errors import CamkitError
from camkit.core.ops import spatial_size
from camkit.core.progress import NoProgress, Progress
from camkit.data.datasets import build_split
from camkit.methods import method_options
from camkit.metrics.iou import iou_from_counts
from camkit.models.checkpoint import check_run_weights, load_checkpoint
from camkit.pipeline.evaluate import normalized_maps, score_maps
from camkit.pipeline.extract import extract
from camkit.train.config import RunConfig
from camkit.viz import html as H
from camkit.viz.curves import plot_iou_curve, plot_pr_curve, plot_training
from camkit.viz.layouts import draw_boxes, labelled_grid, method_comparison
from camkit.viz.overlay import DEFAULT_CMAP, overlay
from camkit.wsss.seeds import class_scores, score_seeds

log = logging.getLogger(__name__)


def report(
    run_dir: str | Path,
    out: str | Path | None = None,
    split: str = "test",
    methods: Sequence[str] = ("cam",),
    num: int = 12,
    device: torch.device | str = "cpu",
    alpha: float = 0.5,
    cmap: str = DEFAULT_CMAP,
    progress: Progress | None = None,
    method_kw: dict[str, Any] | None = None,
) -> Path:
    """Write the report of ``run_dir`` to ``out`` (default ``RUN_DIR/report.html``).
    ``method_kw``: options of particular methods (``prototypes`` for LPCAM, ``recam_weights``)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CamkitError(f"{run_dir}: no such folder; pass a run folder (camkit train) or a study folder")
    out = Path(out) if out else run_dir / "report.html"
    if (run_dir / "study.json").is_file():
        return _study_report(run_dir, out)
    if not (run_dir / "config.json").is_file() or not (run_dir / "best.safetensors").is_file():
        raise CamkitError(
            f"{run_dir}: neither a run folder (config.json, best.safetensors) nor a study folder (study.json)"
        )
    cfg = RunConfig.load(run_dir / "config.json")
    sections: list[tuple[str, str]] = [
        ("Config", H.details("config.json", json.dumps(cfg.to_dict(), indent=2)))
    ]
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        sections += _training(run_dir, tmp)
        model, meta = load_checkpoint(run_dir / "best.safetensors", device=device)
        check_run_weights(meta, cfg.model, run_dir / "best.safetensors")
        names = list(meta.get("class_names") or [])
        ds = build_split(cfg.data, split, augment=False)
        sections.append(
            (
                "Provenance",
                H.details(
                    "what made this report", json.dumps(_provenance(model, ds, run_dir, methods), indent=2)
                ),
            )
        )
        progress = progress or NoProgress()
        per_method = []
        for m in methods:
            kw = method_options(m, method_kw or {})
            ms = extract(model, ds, m, "label", device=device, progress=progress, **kw)
            per_method.append((m, ms))
        if per_method and per_method[0][1].per_class:
            sections += _seed_sections(per_method, ds, names, tmp, num, alpha, cmap)
        else:
            sections += _map_sections(per_method, ds, names, tmp, num, alpha, cmap)
        sections += faithfulness_sections(run_dir)
        H.write_page(out, f"camkit report: {run_dir.name} ({split})", sections)
    return out


def _provenance(model: Any, ds: Any, run_dir: Path, methods: Sequence[str]) -> dict[str, Any]:
    """The report's provenance: the split's data config and fingerprint, the model, the methods."""
    from camkit.core import provenance

    data, split = getattr(ds, "source_config", (None, None))
    model_desc = {"run": str(run_dir), "weights": provenance.weights_hash(model)}
    return provenance.record(data, split, ds, model_desc, methods=list(methods))


def _training(run_dir: Path, tmp: Path) -> list[tuple[str, str]]:
    out = []
    hist_file = run_dir / "metrics.jsonl"
    if hist_file.is_file():
        hist = [json.loads(x) for x in hist_file.read_text().splitlines() if x.strip()]
        if hist:
            plot_training(tmp / "training.png", hist, run_dir.name)
            keys = list(hist[0])
            out.append(("Training", H.figure(tmp / "training.png", "loss and validation accuracy per epoch")
                        + H.table(keys, [[r.get(k) for k in keys] for r in hist])))  # fmt: skip
    if (run_dir / "summary.json").is_file():
        s = json.loads((run_dir / "summary.json").read_text())
        rows = [[split, *[s[split].get(k) for k in ("loss", "accuracy", "top3", "map", "f1")]]
                for split in ("val", "test") if split in s]  # fmt: skip
        out.append(("Summary", f"<p>best epoch {H.esc(s.get('best_epoch'))}</p>"
                    + H.table(["split", "loss", "accuracy", "top-3", "mAP", "F1"], rows)))  # fmt: skip
    return out


def _name(names: list[str], k: int) -> str:
    return names[k] if 0 <= k < len(names) else str(k)


def _map_sections(per_method: list[tuple[str, Any]], ds: Any, names: list[str], tmp: Path, num: int,
                  alpha: float, cmap: str) -> list[tuple[str, str]]:  # fmt: skip
    overall, curves, blocks = [], {}, []
    side: dict[str, Any] = {}
    for m, ms in per_method:
        r = score_maps(ms, ds, wsol=True)
        w = r.wsol
        assert w is not None  # asked for with wsol=True
        overall.append([m, r.miou, r.threshold, r.peak_iou, w.pxap, w.max_box_acc,
                        w.max_box_acc_v2, w.top1_loc, float((ms.preds == ms.labels).float().mean())])  # fmt: skip
        curves[m] = (r.thresholds, r.miou_curve)
        ious = torch.tensor(r.per_image_iou)
        idx = torch.tensor(r.image_index, dtype=torch.long)  # the images with masks, in order
        labels = ms.labels[idx]
        rows = []
        for k in sorted(set(labels.tolist())):
            sel = labels == k
            acc = float((ms.preds[idx][sel] == k).float().mean())
            rows.append([_name(names, k), int(sel.sum()), float(ious[sel].mean()), acc])
        plot_pr_curve(tmp / f"pr_{m}.png", w.pr_curve["precision"], w.pr_curve["recall"], w.pxap, m)
        order = torch.argsort(ious)[:num]  # worst first
        sub = idx[order]
        images = torch.stack([ds[int(i)]["image"] for i in sub])
        maps = normalized_maps(ms.maps[sub], spatial_size(images))
        panels = [
            _boxed(images[j], maps[j], ds[int(i)]["mask"], r.threshold, alpha, cmap)
            for j, i in enumerate(sub)
        ]
        side[m] = (ms, ious, idx)
        titles = [
            f"{ms.ids[int(i)]} {_name(names, int(ms.labels[i]))}\nIoU {float(ious[o]):.2f}"
            for i, o in zip(sub, order, strict=True)
        ]
        labelled_grid(tmp / f"gallery_{m}.png", panels, titles, cols=min(6, len(panels)))
        blocks.append(f"<h3>{H.esc(m)}</h3>" + H.table(["class", "images", f"mean IoU at t={r.threshold:.2f}", "accuracy"], rows)
                      + H.figure(tmp / f"pr_{m}.png", f"{m}: pixel precision-recall")
                      + H.figure(tmp / f"gallery_{m}.png", f"{m}: the {len(sub)} lowest IoUs"))  # fmt: skip
    plot_iou_curve(tmp / "iou_curve.png", curves, "mean IoU against threshold")
    compare = ""
    if side:  # the first images with masks, every method side by side with its IoU
        ms0, _, idx0 = next(iter(side.values()))
        first = idx0[: min(num, 6)]
        images = torch.stack([ds[int(i)]["image"] for i in first])
        by_method = {
            m: normalized_maps(ms.maps[first], spatial_size(images)) for m, (ms, _, _) in side.items()
        }
        ious_by = {m: [float(v) for v in iou[: len(first)]] for m, (_, iou, _) in side.items()}
        row_titles = [f"{ms0.ids[int(i)]} {_name(names, int(ms0.labels[i]))}" for i in first]
        method_comparison(tmp / "methods.png", images, by_method, row_titles, ious_by, alpha, cmap)
        compare = H.figure(tmp / "methods.png", "methods side by side, IoU at each method's threshold")
    head = [
        "method",
        "mIoU",
        "threshold",
        "peak IoU",
        "PxAP (%)",
        "MaxBoxAcc (%)",
        "MaxBoxAccV2 (%)",
        "top-1 loc (%)",
        "accuracy",
    ]
    return [
        (
            "Scores",
            H.table(head, overall) + H.figure(tmp / "iou_curve.png", "mean IoU against threshold") + compare,
        ),
        ("Per class and galleries (worst first)", "".join(blocks)),
    ]


def _boxed(image: torch.Tensor, m: torch.Tensor, gt: torch.Tensor, t: float, alpha: float, cmap: str) -> Any:
    """An overlay with the ground-truth box (green) and the box of the thresholded map's
    largest component (red)."""
    from camkit.core.ops import masks_to_boxes

    panel = overlay(image, m, alpha, cmap)
    if bool(gt.any()):
        panel = draw_boxes(panel, masks_to_boxes(gt.bool()[None], "largest")[0], (0, 255, 0))
    return draw_boxes(panel, masks_to_boxes((m >= t)[None], "largest")[0], (255, 0, 0))


def _seed_sections(per_method: list[tuple[str, Any]], ds: Any, names: list[str], tmp: Path, num: int,
                   alpha: float, cmap: str) -> list[tuple[str, str]]:  # fmt: skip
    overall, curves, blocks = [], {}, []
    for m, ms in per_method:
        r = score_seeds(ms, ds)
        overall.append([m, r.miou, r.bg_threshold, r.fp, r.fn, r.precision, r.recall])
        curves[m] = (r.thresholds, r.miou_curve)
        rows = [["background" if c == 0 else _name(names, c - 1), v] for c, v in enumerate(r.per_class_iou)]
        # per (image, class) pair: IoU of the class's seed region with its mask, worst first
        pairs, ious = [], []
        for i in range(len(ds)):
            present = torch.nonzero(ms.targets[i].bool(), as_tuple=True)[0].tolist()
            if not present:
                continue
            gt = ds[i]["mask"].long()
            scores = class_scores(ms.maps[i : i + 1], tuple(gt.shape))[0]  # every class of the image at once
            for c in present:
                pred, true = scores[c] > r.bg_threshold, gt == c + 1
                pairs.append((i, c))
                counts = [(a & b).sum().double() for a, b in ((pred, true), (pred, ~true), (~pred, true))]
                ious.append(float(iou_from_counts(*counts)))
        order = sorted(range(len(pairs)), key=lambda j: ious[j])[:num]
        panels = []
        for j in order:  # only the gallery's maps are kept, not every pair's
            sample = ds[pairs[j][0]]
            size = tuple(sample["mask"].shape)
            panels.append(
                overlay(
                    sample["image"],
                    class_scores(ms.maps[pairs[j][0] : pairs[j][0] + 1], size)[0, pairs[j][1]],
                    alpha,
                    cmap,
                )
            )
        titles = [f"{ms.ids[pairs[j][0]]} {_name(names, pairs[j][1])}\nIoU {ious[j]:.2f}" for j in order]
        if panels:
            labelled_grid(tmp / f"gallery_{m}.png", panels, titles, cols=min(6, len(panels)))
        blocks.append(f"<h3>{H.esc(m)}</h3>" + H.table(["class", "IoU"], rows)
                      + (H.figure(tmp / f"gallery_{m}.png", f"{m}: the {len(panels)} lowest (image, class) IoUs") if panels else ""))  # fmt: skip
    plot_iou_curve(tmp / "seed_curve.png", curves, "seed mIoU against background threshold")
    head = ["method", "seed mIoU", "bg threshold", "FP", "FN", "precision", "recall"]
    return [
        (
            "Seed scores",
            H.table(head, overall)
            + H.figure(tmp / "seed_curve.png", "seed mIoU against background threshold"),
        ),
        ("Per class and galleries (worst first)", "".join(blocks)),
    ]


def faithfulness_sections(run_dir: Path) -> list[tuple[str, str]]:
    """A "Faithfulness" section per ``faithfulness*.json`` in the run folder (written by
    ``camkit faithfulness --out``): one row per score, one column per method, and the MPRT
    steps."""
    out = []
    for f in sorted(run_dir.glob("faithfulness*.json")):
        r = json.loads(f.read_text())
        methods = r.get("methods") or {}
        if not methods:
            continue
        names = list(methods)
        keys = [k for k, v in methods[names[0]].items() if not isinstance(v, (dict, list))]
        body = f"<p>{H.esc(f.name)}: {H.esc(r.get('images'))} images of {H.esc(r.get('split'))}</p>"
        body += H.table(["score", *names], [[k, *[methods[m].get(k) for m in names]] for k in keys])
        steps = [[m, s["modules"], s["count"], s["spearman"], s["ssim"]]
                 for m in names for s in methods[m].get("mprt_steps", [])]  # fmt: skip
        if steps:
            body += "<h3>MPRT, cascading from the output</h3>" + H.table(
                ["method", "randomized up to", "modules", "Spearman", "SSIM"], steps
            )
        out.append(("Faithfulness" if f.name == "faithfulness.json" else f"Faithfulness ({f.stem})", body))
    return out


def _study_report(study_dir: Path, out: Path) -> Path:
    study = json.loads((study_dir / "study.json").read_text())
    cfg = study.get("config") or {k: study[k] for k in ("variants", "seeds") if k in study}
    sections = [("Config", H.details("study config", json.dumps(cfg, indent=2, default=str)))]
    md = study_dir / "study.md"
    if md.is_file():
        sections.append(("Tables", H.markdown_to_html(md.read_text())))
    figs = sorted(study_dir.glob("*.png"))
    if figs:
        sections.append(("Figures", "".join(H.figure(p, p.name) for p in figs)))
    H.write_page(out, f"camkit study report: {study_dir.name}", sections)
    return out
