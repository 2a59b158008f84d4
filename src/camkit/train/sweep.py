"""Grid sweeps: one run folder per point, a summary of each point's best epoch, resumable.

A grid maps config field names (of DataConfig, ModelConfig or TrainConfig) to value lists,
e.g. ``{"lr": [1e-5, 5e-5, 1e-4, 2e-4], "schedule": ["constant", "cosine"]}``; every
combination runs as ``OUT/EXP_ID/<field=value,...>/``. A point whose ``summary.json`` exists
is skipped; one with a resume state but no summary continues from it. The summary lists, per
point, the best epoch's validation top-1/3/5 accuracy and loss (the Flower-17 study's Table 2)
and the test metrics of that checkpoint.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
from pathlib import Path
from typing import Any

from camkit.core.errors import OptionError, close_matches
from camkit.core.io import atomic_path, write_json
from camkit.core.progress import Progress
from camkit.train.config import RunConfig
from camkit.train.loop import train_or_reuse

log = logging.getLogger(__name__)


def _fields(cfg: RunConfig) -> dict[str, tuple[str, type]]:
    """field name -> (section, type) over data, model and train; the augmentation settings
    as ``aug_<name>`` in section ``data.augment``."""
    out = {}
    for section in ("data", "model", "train"):
        for f in dataclasses.fields(getattr(cfg, section)):
            value = getattr(getattr(cfg, section), f.name)
            if dataclasses.is_dataclass(value):
                for g in dataclasses.fields(value):
                    out[f"aug_{g.name}"] = (f"{section}.{f.name}", type(getattr(value, g.name)))
            else:
                out[f.name] = (section, type(value))
    return out


def parse_grid(items: list[str], base: RunConfig) -> dict[str, list[Any]]:
    """``["lr=1e-5,5e-5", "schedule=constant,cosine"]`` -> {"lr": [1e-05, 5e-05], ...}, typed."""
    fields = _fields(base)
    grid: dict[str, list[Any]] = {}
    for item in items:
        if "=" not in item:
            raise OptionError("grid", "use FIELD=V1,V2,...", item)
        name, values = item.split("=", 1)
        name = name.strip().replace("-", "_")
        if name not in fields:
            raise OptionError(
                "grid", f"not a config field; close matches: {close_matches(name, list(fields))}", name
            )
        kind = fields[name][1]
        try:
            parsed = [_coerce(v.strip(), kind) for v in values.split(",")]
        except ValueError:
            raise OptionError("grid", f"{values!r} are not valid {kind.__name__} values", name) from None
        grid[name] = parsed
    if not grid:
        raise OptionError("grid", "give at least one FIELD=V1,V2,...")
    return grid


def _coerce(v: str, kind: type) -> Any:
    if kind is bool:
        return v.lower() in ("1", "true", "yes", "on")
    if kind is int:
        return int(v)
    if kind is float:
        return float(v)
    if kind is str:
        return v
    for f in (int, float):  # a field whose default is None: the most specific number, else text
        try:
            return f(v)
        except ValueError:
            pass
    return v


def point_name(point: dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in point.items())


def run_sweep(
    base: RunConfig, grid: dict[str, list[Any]], progress: Progress | None = None
) -> dict[str, Any]:
    fields = _fields(base)
    root = Path(base.train.out) / base.train.exp_id
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    keys = list(grid)
    for values in itertools.product(*(grid[k] for k in keys)):
        point = dict(zip(keys, values, strict=True))
        name = point_name(point)
        d = json.loads(json.dumps(base.to_dict()))
        for k, v in point.items():
            section, *sub = fields[k][0].split(".")
            if sub:  # data.augment
                d[section][sub[0]][k.split("_", 1)[1]] = v
            else:
                d[section][k] = v
        cfg = RunConfig.from_dict(d)
        cfg.train.out, cfg.train.exp_id = str(root), name
        run_dir = root / name
        summary = train_or_reuse(cfg, progress)
        history = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        best = next(h for h in history if h["epoch"] == summary["best_epoch"])
        rows.append({"point": point, "run_dir": str(run_dir), "best_epoch": summary["best_epoch"],
                     "val_top1": best["val_accuracy"], "val_top3": best.get("val_top3"), "val_top5": best.get("val_top5"),
                     "val_loss": best["val_loss"], "test": summary.get("test"), "stopped": summary.get("stopped")})  # fmt: skip
    result = {"grid": grid, "points": rows}
    write_json(root / "sweep.json", result)
    with atomic_path(root / "sweep.md") as tmp:
        tmp.write_text(summary_table(rows))
    return result


def summary_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: one row per point, best epoch and its validation metrics."""
    lines = [
        "| point | best epoch | val top-1 | val top-3 | val top-5 | val loss | test top-1 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        test = r["test"]["accuracy"] if r.get("test") else None
        cells = [r["val_top1"], r["val_top3"], r["val_top5"], r["val_loss"], test]
        lines.append(
            f"| {point_name(r['point'])} | {r['best_epoch']} | "
            + " | ".join("—" if c is None else f"{c:.4f}" for c in cells)
            + " |"
        )
    return "\n".join(lines) + "\n"
