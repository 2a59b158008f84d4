"""Where the demo's time goes: canvas generation, training epochs, extraction, scoring.

Runs ``camkit demo`` (full, or ``--quick``) in this process from an empty cache (a fresh
``$CAMKIT_CACHE``) and prints, per phase, wall and CPU time (user + sys). On a shared machine
wall time is inflated by other load; CPU time / cores is the quiet-machine estimate.

``--set SECTION.FIELD=VALUE`` overrides one demo setting (``data.image_size=48``,
``train.epochs=5``, ``model.head=tap``) to compare choices. Choose on the val numbers this
prints (val accuracy, val peak IoU per method); the test numbers are printed last, for the
record only, with ``--show-test``.

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/bench_demo.py [--quick] [--set ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any


def _parse(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def _override(sets: list[str]) -> Any:
    import camkit.apps.demo as demo

    base = demo.demo_config

    def config(*args: Any, **kwargs: Any) -> Any:
        cfg = base(*args, **kwargs)
        for s in sets:
            key, value = s.split("=", 1)
            section, name = key.split(".")
            part = getattr(cfg, section)
            setattr(cfg, section, dataclasses.replace(part, **{name: _parse(value)}))
        return cfg

    demo.demo_config = config


def step_speed(rounds: int = 7) -> None:
    """The demo model's training step (batch 64 and 128 at 64 px), float32 against bf16
    autocast, interleaved; median CPU and wall ms per image."""
    import statistics
    import time

    import torch

    from camkit.models.camnet import CAMNet, ModelConfig

    sides: dict[tuple[int, bool], Any] = {}
    for bs in (64, 128):
        for bf16 in (False, True):
            torch.manual_seed(0)
            m = CAMNet(ModelConfig(backbone="resnet18", layer="layer2")).to(memory_format=torch.channels_last)
            x = torch.rand(bs, 3, 64, 64).contiguous(memory_format=torch.channels_last)
            sides[(bs, bf16)] = (m, torch.optim.Adam(m.parameters()), x, torch.randint(0, 10, (bs,)), [])
    for r in range(rounds + 1):
        for (bs, bf16), (m, opt, x, y, times) in sides.items():
            w0, c0 = time.perf_counter(), time.process_time()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = torch.nn.functional.cross_entropy(m(x).logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if r:  # the first round warms up
                times.append(((time.perf_counter() - w0) * 1e3 / bs, (time.process_time() - c0) * 1e3 / bs))
    print(f"training step at 64 px, {torch.get_num_threads()} threads, median of {rounds}")
    print(f"{'batch':>5} {'amp':>5} {'wall ms/img':>12} {'CPU ms/img':>11}")
    for (bs, bf16), side in sides.items():
        times = side[4]
        wall, cpu = statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)
        print(f"{bs:>5} {'bf16' if bf16 else 'off':>5} {wall:>12.2f} {cpu:>11.2f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", action="store_true", help="only time the training step, float32 vs bf16")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE")
    ap.add_argument("--show-test", action="store_true", help="also print the test numbers")
    ap.add_argument("--keep", help="write the demo here instead of a temporary folder")
    args = ap.parse_args()
    if args.steps:
        step_speed()
        return 0
    _override(args.set)
    from camkit.apps.demo import run_demo

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["CAMKIT_CACHE"] = str(Path(tmp) / "cache")  # empty: canvases are generated
        out = Path(args.keep or Path(tmp) / "demo")
        m = run_demo(out, quick=args.quick, force=True)
        epochs = [json.loads(line) for line in (out / "run" / "metrics.jsonl").read_text().splitlines()]
    cores = len(os.sched_getaffinity(0))
    print(f"settings: {' '.join(args.set) or 'the demo defaults'} ({'quick' if args.quick else 'full'})")
    print(f"{'phase':<10} {'wall s':>8} {'CPU s':>8} {'CPU/' + str(cores):>8}")
    for name, p in m["timings_s"].items():
        print(f"{name:<10} {p['wall']:>8.1f} {p['cpu']:>8.1f} {p['cpu'] / cores:>8.1f}")
    print(f"{'total':<10} {m['wall_time_s']:>8.1f} {m['cpu_time_s']:>8.1f} {m['cpu_time_s'] / cores:>8.1f}")
    ips = ", ".join(f"{e['images_per_s']:.0f}" for e in epochs)
    val_acc = ", ".join(f"{e['val_accuracy']:.3f}" for e in epochs)
    print(f"epochs: {len(epochs)}; train images/s per epoch: {ips}; val accuracy per epoch: {val_acc}")
    val = ", ".join(f"{k} {r['val_peak_iou']:.4f}" for k, r in m["methods"].items())
    print(f"val: accuracy {m['val_accuracy']:.4f} (best epoch {m['best_epoch']}); peak IoU {val}")
    if args.show_test:
        rows = ", ".join(f"{k} {r['peak_iou']:.4f}" for k, r in m["methods"].items() if "peak_iou" in r)
        base = ", ".join(f"{k} {b['peak_iou']:.4f}" for k, b in m["baselines"].items())
        print(f"test: accuracy {m['accuracy']:.4f}; peak IoU {rows}; baselines {base}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
