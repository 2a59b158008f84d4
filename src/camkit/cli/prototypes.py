"""``camkit prototypes``: build LPCAM's local prototypes from a trained model."""

from __future__ import annotations

import argparse
from typing import Any

from camkit.cli.args import add_device_arg, add_layer_arg, add_source_args
from camkit.cli.checks import check_out_file
from camkit.cli.options import add_dataclass_args, apply_args
from camkit.cli.sources import class_name, model_and_data, progress


def register(sub: Any) -> None:
    p = sub.add_parser("prototypes", help="build LPCAM's local prototypes from a trained model; save them")
    from camkit.methods.prototypes import PrototypeConfig

    add_source_args(p, split="train")
    add_layer_arg(p, several=False)
    add_dataclass_args(p.add_argument_group("prototypes"), PrototypeConfig)
    p.add_argument("--batch-size", type=int, default=64, help="images per batch")
    add_device_arg(p)
    p.add_argument("--out", required=True, help="output .safetensors file")
    p.set_defaults(func=run)


def _notes(row: dict[str, Any]) -> str:
    return ", ".join(
        f"{side} {why}"
        for side in ("fg", "bg")
        for why, bad in (
            ("fallback", row[side].get("fallback")),
            ("not converged", row[side].get("converged") is False),
        )
        if bad
    )


def run(args: argparse.Namespace) -> int:
    from camkit.core.dist import resolve_device
    from camkit.data.datasets import build_split
    from camkit.methods.prototypes import PrototypeConfig, save_prototypes
    from camkit.models.checkpoint import load_checkpoint
    from camkit.wsss.prototypes import build_prototypes

    check_out_file("--out", args.out)  # before the clustering, not after it
    device = resolve_device(args.device)
    data, ckpt = model_and_data(args)
    model, meta = load_checkpoint(ckpt, device=device)
    cfg = apply_args(PrototypeConfig(), args)
    ds = build_split(data, args.split, augment=False)
    protos = build_prototypes(model, ds, cfg, args.layer, args.batch_size, device, progress())
    protos.meta.update({"checkpoint": str(ckpt), "split": args.split})
    save_prototypes(args.out, protos)
    print(f"{'class':<12} {'FG kept/K':>9} {'BG kept/K':>9} {'FG points':>10} {'BG points':>10}  notes")
    names = list(meta.get("class_names") or [])
    for row in protos.meta["classes"]:
        print(
            f"{class_name(names, row['class']):<12} {row['fg']['kept']:>5}/{cfg.k:<3} {row['bg']['kept']:>5}/{cfg.k:<3} "
            f"{row['fg']['points']:>10} {row['bg']['points']:>10}  {_notes(row)}"
        )
    print(
        f"wrote {args.out} (layer {protos.layer}; reuse it with camkit extract --method lpcam --prototypes)"
    )
    return 0
