"""The Flower-17 study's write-up: Table 2 in the study's layout (rows: models, columns:
learning rates; each cell the best eligible epoch's val top-1/3/5 and loss), ours beside the
paper's, the maps figure and, where masks exist, the localization scores and the verdict on
"LayerCAM localizes best, ReCAM worst"."""

from __future__ import annotations

from typing import Any

from camkit.apps.studies.flower import LOC_METRICS, PAPER, ROW_NAMES

LOC_NAMES = {"peak_iou": "peak IoU", "max_box_acc_v2": "MaxBoxAccV2 (%)", "pxap": "PxAP (%)"}


def _pm(v: dict[str, float] | None, scale: float = 100.0, nd: int = 2) -> str:
    if v is None:
        return "—"
    return f"{v['mean'] * scale:.{nd}f}" + (f" ± {v['std'] * scale:.{nd}f}" if v["std"] else "")


def ours_cell(c: dict[str, Any]) -> str:
    """A Table 2 cell: (epoch E) Top1 / Top3 / Top5 / Loss; "discarded" when no seed's model survived."""
    if not c["kept"]:
        return f"discarded ({c['n']}/{c['n']} overfit)"
    kept = "" if c["kept"] == c["n"] else f" [{c['kept']}/{c['n']} kept]"
    return (f"(epoch {_pm(c['epoch'], 1, 1)}){kept}<br>Top1: {_pm(c['top1'])}%<br>Top3: {_pm(c['top3'])}%"
            f"<br>Top5: {_pm(c['top5'])}%<br>Loss: {_pm(c['val_loss'], 1, 4)}")  # fmt: skip


def paper_cell(v: str, lr: float) -> str:
    p = PAPER.get(v, {}).get(lr)
    if p is None:
        return "—"
    return (
        f"(epoch {p[0]})<br>Top1: {p[1]:.2f}%<br>Top3: {p[2]:.2f}%<br>Top5: {p[3]:.2f}%<br>Loss: {p[4]:.6f}"
    )


def table2(table: dict[str, dict[float, dict[str, Any]]], paper: bool = False) -> list[str]:
    lrs = sorted({lr for by_lr in table.values() for lr in by_lr})
    lines = ["| Model/LR | " + " | ".join(f"{lr:g}" for lr in lrs) + " |", "|---" * (len(lrs) + 1) + "|"]
    for v, by_lr in table.items():
        cells = [paper_cell(v, lr) if paper else ours_cell(by_lr[lr]) for lr in lrs]
        lines.append(f"| {ROW_NAMES.get(v, v)} | " + " | ".join(cells) + " |")
    return lines


def _verdict(r: dict[str, Any]) -> list[str]:
    loc, claim = r["localization"], r["claim"]
    cols = list(loc["mean"])
    lines = [
        f"**Localization** on the {loc['n_test']} test images (label-class maps, scored as `camkit evaluate` scores maps; "
        "mean ± std over seeds):",
        "",
        "| map | " + " | ".join(LOC_NAMES[m] for m in LOC_METRICS) + " |",
        "|---|" + "---:|" * len(LOC_METRICS),
    ]
    for c in cols:
        cells = [
            _pm(
                {"mean": loc["mean"][c][m], "std": loc["std"][c][m]},
                1.0,
                4 if m == "peak_iou" else 2,
            )
            for m in LOC_METRICS
        ]
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    lines.append("")
    held = [m for m in LOC_METRICS if claim[m]["holds"]]
    lines.append(
        '"LayerCAM localizes best, ReCAM worst": '
        + "; ".join(
            f"{LOC_NAMES[m]}: best {claim[m]['best']}, worst {claim[m]['worst']}" for m in LOC_METRICS
        )
        + f". **It holds on {len(held)} of {len(LOC_METRICS)} metrics**"
        + (f" ({', '.join(LOC_NAMES[m] for m in held)})." if held else ".")
    )
    return lines


def _cam_vs_recam(table: dict[str, dict[float, dict[str, Any]]]) -> list[str]:
    """The paper's classification claim, per learning rate: CAM's top-1 above every ReCAM's."""
    per_lr = []
    for lr, cam in table.get("CAM", {}).items():
        recam = [by[lr]["top1"]["mean"] for v, by in table.items() if v != "CAM" and by[lr]["kept"]]
        if cam["kept"] and recam:
            per_lr.append((lr, cam["top1"]["mean"], max(recam)))
    if not per_lr:
        return ['"Every ReCAM below CAM": not testable here (models discarded).']
    held = [lr for lr, c, r in per_lr if c > r]
    detail = "; ".join(f"lr {lr:g}: CAM {c * 100:.2f}% vs best ReCAM {r * 100:.2f}%" for lr, c, r in per_lr)
    return [
        f'"Every ReCAM below CAM" (top-1, per learning rate): holds at {len(held)} of {len(per_lr)} ({detail}).'
    ]


def markdown(result: dict[str, Any]) -> str:
    s = result["config"]
    out = [
        "# The Flower-17 study, reproduced",
        "",
        f"Frozen ImageNet EfficientNet-Lite0 (cut at `head`) + GAP + linear; offline augmentation ×{s['augment_copies']}; "
        f"Adam for {s['epochs']} epochs, batch {s['batch_size']}; seeds {s['seeds']} (mean ± std over the seeds' kept models); "
        f"discard rule: a model is discarded from its first epoch with training loss < val loss / {s['overfit_ratio']}. "
        f"LayerCAM on {', '.join(s['layercam_layers'])} with weights {', '.join(str(w) for w in s['layercam_weights'])} "
        f"(tanh(2M/max M) per block); display: zero below {s['display_cut']}, ×{s['display_gain']}.",
        "",
        "**Paper, Table 2** (Flower-17 val, frozen VGG16, 40 epochs):",
        "",
        *table2(PAPER_TABLE, paper=True),
        "",
    ]
    for name, r in result["datasets"].items():
        out += [
            f"## {name}",
            "",
            f"**Ours, Table 2** ({len(r['classes'])} classes, val split):",
            "",
            *table2(r["table"]),
            "",
        ]
        out += [*_cam_vs_recam(r["table"]), ""]
        out += ["Models of the figures: " + ", ".join(f"{v} at lr {lr:g}" if lr else f"{v}: all discarded"
                                                     for v, lr in r["main_lr"].items()) + ".", ""]  # fmt: skip
        if "figures" in r:
            out += [
                f"![CAM, ReCAMs and LayerCAM on the same {s['n_maps']} val images]({name}/maps/comparison.png)",
                "",
            ]
        if "localization" in r:
            out += [*_verdict(r), ""]
    return "\n".join(out)


PAPER_TABLE: dict[str, dict[float, dict[str, Any]]] = {
    v: dict.fromkeys(by_lr, {}) for v, by_lr in PAPER.items()
}
