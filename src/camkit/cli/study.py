"""``camkit study``: the reproducible studies (equivariance, wsss)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from camkit.cli.sources import progress


def register(sub: Any) -> None:
    p = sub.add_parser(
        "study",
        help="reproducible studies: equivariance (CAM vs SEG transforms), wsss (TAP/NWC/PaS, LPCAM, ReCAM), flower (CAM vs ReCAM vs LayerCAM)",
    )
    p.add_argument("name", choices=("equivariance", "wsss", "flower"), help="which study")
    p.add_argument(
        "--config",
        help="study config JSON (default: recipes/study-equivariance.json's or recipes/study-wsss.json's settings)",
    )
    p.add_argument("--seeds", help="comma-separated seeds (default: 0,1,2)")
    p.add_argument("--quick", action="store_true", help="the demo's smoke-size budget")
    p.add_argument("--data-root", help="folder of the Fashion-MNIST IDX .gz files (default: Debian's)")
    p.add_argument("--out", help="study folder (default: studies/NAME)")
    p.set_defaults(func=run)


def _overrides(study: Any, args: argparse.Namespace) -> Any:
    changes: dict[str, Any] = {}
    if args.seeds:
        changes["seeds"] = [int(s) for s in args.seeds.split(",")]
    if args.data_root:
        changes["data_root"] = args.data_root
    return dataclasses.replace(study, **changes)


def run(args: argparse.Namespace) -> int:
    out = args.out or f"studies/{args.name}"
    if args.name == "flower":
        from camkit.apps.studies.flower import run_flower_study
        from camkit.apps.studies.flower import study_config as flower_config

        study = _overrides(flower_config(args.config, args.quick), args)
        run_flower_study(out, study, quick=args.quick, progress=progress)
        return _report(out, "study.md, study.json, DATASET/maps/, DATASET/runs/")
    if args.name == "wsss":
        from camkit.apps.studies.wsss import run_wsss_study, study_config

        study = _overrides(study_config(args.config, args.quick), args)
        run_wsss_study(out, study, quick=args.quick, progress=progress)
        return _report(out, "study.md, study.json, per-seed scores and runs")
    from camkit.apps.studies.equivariance import load_study_config, run_equivariance_study

    study = _overrides(load_study_config(args.config), args)
    run_equivariance_study(out, study, quick=args.quick, progress=progress)
    return _report(out, "study.md, study.json, overlays.png")


def _report(out: str, contents: str) -> int:
    """Print the study's study.md and where its files are (``contents``: what the folder holds)."""
    print((Path(out) / "study.md").read_text(), end="")
    print(f"study folder: {out} ({contents})")
    return 0
