"""Speed of the map methods, side by side in one run: camkit vs a bare forward (and backward),
vs pytorch-grad-cam and vs torchcam, on the same model, batch, layer and targets.

    .venv/bin/python benchmarks/bench_methods.py            # full table (~5 min on 2 CPU cores)
    .venv/bin/python benchmarks/bench_methods.py --quick    # fewer repeats

Each cell is the median of ``--repeats`` timed calls after one warm-up; sides are interleaved
so that machine noise hits them alike. Ratios < 1 mean camkit is faster.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import logging
import statistics
import time
from collections.abc import Callable

import torch
import torchvision

from bench_new_methods import new_method_rows
from camkit.methods import get_method


def median_time(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def interleaved(
    fns: dict[str, Callable[[], object]], repeats: int, clock: Callable[[], float] = time.perf_counter
) -> dict[str, float]:
    for f in fns.values():
        f()
    ts: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            t = clock()
            f()
            ts[k].append(clock() - t)
    return {k: statistics.median(v) for k, v in ts.items()}


#: camkit name: (pytorch-grad-cam class, torchcam class or None) of the gradient methods
GRAD_METHODS = {"grad-cam": ("GradCAM", "GradCAM"), "grad-cam++": ("GradCAMPlusPlus", "GradCAMpp"), "xgrad-cam": ("XGradCAM", "XGradCAM"),
                "hirescam": ("HiResCAM", None), "layercam": ("LayerCAM", "LayerCAM")}  # fmt: skip


def ratio_row(name: str, t: dict[str, float], ref: str) -> tuple:
    """A table row from timings ``t`` (camkit, ref, and pgc / tc when timed): (name, camkit s,
    camkit / ref, the reference's label, camkit / pytorch-grad-cam or None, camkit / torchcam or None)."""
    ck = t["camkit"]
    return (
        name,
        ck,
        ck / t["ref"],
        ref,
        ck / t["pgc"] if "pgc" in t else None,
        ck / t["tc"] if "tc" in t else None,
    )


def print_rows(rows: list[tuple], title: str = "method") -> None:
    """The markdown table of :func:`ratio_row` rows."""
    print(f"| {title} | camkit (ms) | vs reference | reference | vs pytorch-grad-cam | vs torchcam |")
    print("|---|---:|---:|---|---:|---:|")
    for name, tt, ratio, ref, rp, rt in rows:
        f = lambda v: "—" if v is None else f"{v:.2f}×"  # noqa: E731
        print(f"| {name} | {tt * 1e3:.1f} | {ratio:.2f}× | {ref} | {f(rp)} | {f(rt)} |")


def bare_passes(
    model: torch.nn.Module, x: torch.Tensor, targets: list[int]
) -> tuple[Callable[[], object], Callable[[], object]]:
    """The references: a bare forward of ``x`` and a forward+backward of the ``targets`` logits."""

    def fwd() -> object:
        with torch.no_grad():
            return model(x)

    def fwd_bwd() -> object:
        model.zero_grad(set_to_none=True)
        out = model(x)
        out[torch.arange(len(targets)), targets].sum().backward()
        return out

    return fwd, fwd_bwd


# Every side builds its extractor inside the timed call and removes its hooks after, so no
# side's hooks slow another side down (construction is a few microseconds).
def camkit_side(
    model: torch.nn.Module, layer: str, name: str, inp: torch.Tensor, tg: list[int], grad: bool, **kw: object
) -> Callable[[], object]:
    def run() -> object:
        with torch.set_grad_enabled(grad):
            return get_method(name)(model, layer, **kw)(inp, tg)

    return run


def pgc_side(
    model: torch.nn.Module,
    layer: torch.nn.Module,
    pname: str,
    inp: torch.Tensor,
    tg: list,
    reshape: Callable[[torch.Tensor], torch.Tensor] | None = None,
    **attrs: object,
) -> Callable[[], object]:
    import pytorch_grad_cam as pgc

    def run() -> object:
        with getattr(pgc, pname)(model=model, target_layers=[layer], reshape_transform=reshape) as p:
            for k, v in attrs.items():
                setattr(p, k, v)
            with contextlib.redirect_stderr(io.StringIO()):
                return p(input_tensor=inp, targets=tg)

    return run


def torchcam_side(
    model: torch.nn.Module, layer: str, tname: str, inp: torch.Tensor, tg: list[int], grad: bool, **kw: object
) -> Callable[[], object]:
    import torchcam.methods as tcm

    def run() -> object:
        with getattr(tcm, tname)(model, layer, **kw) as e, torch.set_grad_enabled(grad):
            return e(class_idx=tg, scores=model(inp))

    return run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument(
        "--cpu", action="store_true", help="time CPU seconds (user+sys of this process), not wall"
    )
    ap.add_argument("--new-only", action="store_true", help="only the rows of the methods added for issue 16")
    args = ap.parse_args()
    reps = args.repeats or (3 if args.quick else 7)
    timed = functools.partial(interleaved, clock=time.process_time if args.cpu else time.perf_counter)
    logging.disable(logging.WARNING)
    torch.manual_seed(0)
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model = torchvision.models.resnet18(weights=None).eval()
    x = torch.rand(8, 3, 224, 224)
    targets = [int(c) for c in torch.randint(0, 1000, (8,))]
    pgc_targets = [ClassifierOutputTarget(c) for c in targets]
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; resnet18, batch 8 at 224, layer4; median of {reps}, {'CPU' if args.cpu else 'wall'} time\n"
    )

    fwd, fwd_bwd = bare_passes(model, x, targets)
    base = timed({"forward": fwd, "forward+backward": fwd_bwd}, reps)
    if args.new_only:
        print_table(base, new_method_rows(model, x, targets, reps, fwd, fwd_bwd, timed))
        return
    rows = []

    ck = functools.partial(camkit_side, model, "layer4")
    pg = functools.partial(pgc_side, model, model.layer4)
    tc = functools.partial(torchcam_side, model, "layer4")

    t = timed(
        {
            "camkit": ck("cam", x, targets, False, classifier="fc"),
            "ref": fwd,
            "tc": tc("CAM", x, targets, False, fc_layer="fc"),
        },
        reps,
    )
    rows.append(ratio_row("cam", t, "forward"))

    for name, (pname, tname) in GRAD_METHODS.items():
        fns = {"camkit": ck(name, x, targets, True), "ref": fwd_bwd, "pgc": pg(pname, x, pgc_targets)}
        if tname:
            fns["tc"] = tc(tname, x, targets, True)
        t = timed(fns, reps)
        rows.append(ratio_row(name, t, "forward+backward"))

    # perturbation methods: one 112x112 image, 512 channels -> 512 masked forwards each
    xs = x[:1, :, :112, :112].contiguous()

    def masked_forwards() -> object:  # the bound: 512 forwards, batched 64
        with torch.no_grad():
            for _ in range(0, 512, 64):
                model(xs.expand(64, -1, -1, -1) * 0.5)

    r2 = max(2, reps // 2)
    fns = {"camkit": ck("score-cam", xs, targets[:1], False, batch_size=64, align_corners=True), "ref": masked_forwards,
           "pgc": pg("ScoreCAM", xs, pgc_targets[:1], batch_size=64), "tc": tc("ScoreCAM", xs, targets[:1], False, batch_size=64, input_shape=(3, 112, 112))}  # fmt: skip
    t = timed(fns, r2)
    rows.append(ratio_row("score-cam", t, "512 batched forwards"))
    fns = {"camkit": ck("ablation-cam", xs, targets[:1], False, batch_size=64), "ref": masked_forwards,
           "pgc": pg("AblationCAM", xs, pgc_targets[:1], batch_size=64)}  # fmt: skip
    t = timed(fns, r2)
    rows.append(ratio_row("ablation-cam", t, "512 batched forwards"))
    t = timed(
        {"camkit": ck("eigen-cam", x, targets, False), "ref": fwd, "pgc": pg("EigenCAM", x, pgc_targets)},
        reps,
    )
    rows.append(ratio_row("eigen-cam", t, "forward"))

    print_table(base, rows + new_method_rows(model, x, targets, reps, fwd, fwd_bwd, timed))


def print_table(base: dict[str, float], rows: list[tuple]) -> None:
    print(
        f"bare forward {base['forward'] * 1e3:.1f} ms, forward+backward {base['forward+backward'] * 1e3:.1f} ms\n"
    )
    print_rows(rows)


if __name__ == "__main__":
    main()
