"""The rows of the methods added for issue 16, for ``bench_methods.py`` (same model, batch,
layer and targets; every side builds its extractor inside the timed call). Run them alone with
``bench_methods.py --new-only``.

Sides: camkit vs pytorch-grad-cam (FullGrad, KPCA-CAM, EigenGrad-CAM, Shapley-CAM, FEM,
Finer-CAM, aug_smooth, eigen_smooth) and vs torchcam (SmoothGrad-CAM++, SS-CAM, IS-CAM);
attention rollout on a timm ViT-Tiny against a bare forward (no peer has it).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from typing import Any

import torch

from camkit.methods import get_method
from camkit.methods.augsmooth import AugSmooth
from camkit.methods.eigensmooth import eigen_smoothed

Row = tuple[str, float, float, str, float | None, float | None]


def new_method_rows(
    model: torch.nn.Module,
    x: torch.Tensor,
    targets: list[int],
    reps: int,
    fwd: Callable[[], object],
    fwd_bwd: Callable[[], object],
    interleaved: Callable[[dict[str, Callable[[], object]], int], dict[str, float]],
) -> list[Row]:
    import pytorch_grad_cam as pgc
    import torchcam.methods as tcm
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputReST, ClassifierOutputTarget

    def ck(make: Callable[[], Any], inp: torch.Tensor, tg: object, grad: bool) -> Callable[[], object]:
        def run() -> object:
            with torch.set_grad_enabled(grad):
                return make()(inp, tg)

        return run

    def pg(
        pname: str, inp: torch.Tensor, tg: object, layers: list | None = None, **call: Any
    ) -> Callable[[], object]:
        def run() -> object:
            with (
                getattr(pgc, pname)(
                    model=model, target_layers=[model.layer4] if layers is None else layers
                ) as p,
                contextlib.redirect_stdout(io.StringIO()),
                contextlib.redirect_stderr(io.StringIO()),
            ):
                return p(input_tensor=inp, targets=tg, **call)

        return run

    def tc(tname: str, inp: torch.Tensor, tg: list[int], grad: bool, **kw: Any) -> Callable[[], object]:
        def run() -> object:
            with getattr(tcm, tname)(model, "layer4", **kw) as e, torch.set_grad_enabled(grad):
                return e(class_idx=tg, scores=model(inp))

        return run

    m = lambda name, **kw: lambda: get_method(name)(model, "layer4", **kw)  # noqa: E731
    pt = [ClassifierOutputTarget(c) for c in targets]
    rest = [ClassifierOutputReST(c) for c in targets]
    rows: list[Row] = []

    def row(name: str, ref: str, fns: dict[str, Callable[[], object]], r: int = reps) -> None:
        t = interleaved(fns, r)
        rows.append((name, t["camkit"], t["camkit"] / t["ref"], ref, t["camkit"] / t["pgc"] if "pgc" in t else None,
                     t["camkit"] / t["tc"] if "tc" in t else None))  # fmt: skip

    row("fullgrad", "forward+backward", {"camkit": ck(lambda: get_method("fullgrad")(model), x, targets, True), "ref": fwd_bwd, "pgc": pg("FullGrad", x, pt, layers=[])})  # fmt: skip
    row(
        "kpca-cam",
        "forward",
        {"camkit": ck(m("kpca-cam"), x, targets, False), "ref": fwd, "pgc": pg("KPCA_CAM", x, pt)},
    )
    row("eigengrad-cam", "forward+backward", {"camkit": ck(m("eigengrad-cam"), x, targets, True), "ref": fwd_bwd, "pgc": pg("EigenGradCAM", x, pt)})  # fmt: skip
    row("shapley-cam", "forward+backward", {"camkit": ck(m("shapley-cam"), x, targets, True), "ref": fwd_bwd, "pgc": pg("ShapleyCAM", x, rest)})  # fmt: skip
    row("fem", "forward", {"camkit": ck(m("fem"), x, targets, False), "ref": fwd, "pgc": pg("FEM", x, pt)})
    row("finer-cam", "forward+backward", {"camkit": ck(m("finer-cam"), x, "pred", True), "ref": fwd_bwd, "pgc": pg("FinerCAM", x, None)})  # fmt: skip
    aug = lambda: AugSmooth(get_method("grad-cam")(model, "layer4"))  # noqa: E731
    row("grad-cam + aug smooth (6 copies)", "forward+backward", {"camkit": ck(aug, x, targets, True), "ref": fwd_bwd, "pgc": pg("GradCAM", x, pt, aug_smooth=True)})  # fmt: skip
    eig = lambda: eigen_smoothed(get_method("grad-cam"))(model, "layer4")  # noqa: E731
    row("grad-cam + eigen smooth", "forward+backward", {"camkit": ck(eig, x, targets, True), "ref": fwd_bwd, "pgc": pg("GradCAM", x, pt, eigen_smooth=True)})  # fmt: skip
    row("smoothgrad-cam++ (4 samples)", "forward+backward", {"camkit": ck(m("smoothgrad-cam++"), x, targets, True), "ref": fwd_bwd, "tc": tc("SmoothGradCAMpp", x, targets, True)})  # fmt: skip

    # score smoothing: one 112x112 image, 512 channels x 2 samples -> 1024 masked forwards each
    xs = x[:1, :, :112, :112].contiguous()
    for name, tname in (("ss-cam", "SSCAM"), ("is-cam", "ISCAM")):
        fns = {"camkit": ck(m(name, num_samples=2, batch_size=64), xs, targets[:1], False), "ref": masked_forwards(model, xs, 1024),
               "tc": tc(tname, xs, targets[:1], False, num_samples=2, batch_size=64, input_shape=(3, 112, 112))}  # fmt: skip
        row(f"{name} (2 samples)", "1024 batched forwards", fns, max(2, reps // 2))
    rows.append(rollout_row(reps, interleaved))
    return rows


def masked_forwards(model: torch.nn.Module, xs: torch.Tensor, n: int) -> Callable[[], object]:
    """The bound of a perturbation method: n forwards of the (1, 3, h, w) image, batched 64."""

    def run() -> object:
        with torch.no_grad():
            for _ in range(0, n, 64):
                model(xs.expand(64, -1, -1, -1) * 0.5)
        return None

    return run


def rollout_row(
    reps: int, interleaved: Callable[[dict[str, Callable[[], object]], int], dict[str, float]]
) -> Row:
    """Attention rollout on a random timm ViT-Tiny (batch 8 at 224) against its bare forward."""
    import timm

    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False).eval()
    xv = torch.rand(8, 3, 224, 224)

    def bare() -> object:
        with torch.no_grad():
            return vit(xv)

    def ours() -> object:
        with torch.no_grad():
            return get_method("attention-rollout")(vit)(xv)

    t = interleaved({"camkit": ours, "ref": bare}, reps)
    return (
        "attention-rollout (vit_tiny)",
        t["camkit"],
        t["camkit"] / t["ref"],
        "forward (fused attention)",
        None,
        None,
    )
