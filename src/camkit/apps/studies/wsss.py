"""The WSSS study: the orderings of Bae et al. Table 1, LPCAM Table 1 and ReCAM on the
multi-object benchmark (``fashion-multi``), mean ± std over seeds.

Per seed, three models share data, backbone (ResNet-18 cut after layer2) and budget:

* ``gap``: multi-label BCE with GAP (the CAM baseline);
* ``tap``: the same with TAP (θ_tap = 0.05);
* ``recam``: ReCAM, fine-tuned from ``gap`` with L_bce + λ L_sce, as the paper re-activates a
  converged CAM model.

and LPCAM's prototypes are built from ``gap`` on the training split. Scores, all on test:

* **Bae Table 1** (peak IoU per (image, class) pair): CAM → +PaS → +NWC → +TAP;
* **LPCAM Table 1** (seeds: FP, FN, mIoU, precision, recall): CAM, LPCAM-F, LPCAM;
* **ReCAM** (seed mIoU): CAM against ReCAM with w, w', w + w' and w ⊙ w'.

Seed scores use the background threshold that maximizes the val seed mIoU of each method.
Finished pieces are kept on disk, so an interrupted study resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from camkit.apps.studies.config import check_sections, checked, load_typed, save_study, with_overrides
from camkit.core.dist import resolve_device
from camkit.core.errors import OptionError
from camkit.core.progress import Progress
from camkit.core.runs import load_or_compute
from camkit.data import dataset_len
from camkit.data.datasets import DataConfig, build_split
from camkit.data.fashion import CLASS_NAMES
from camkit.data.registry import get_dataset
from camkit.methods.prototypes import PrototypeConfig, Prototypes, load_prototypes, save_prototypes
from camkit.models.camnet import ModelConfig
from camkit.models.checkpoint import load_checkpoint
from camkit.pipeline.extract import extract
from camkit.train.config import RunConfig, TrainConfig
from camkit.train.loop import train_or_reuse
from camkit.wsss.prototypes import build_prototypes
from camkit.wsss.seeds import class_peak_iou, score_seeds

log = logging.getLogger(__name__)


@dataclass
class WsssStudy:
    """The study's settings (recipes/study-wsss.json spells them all out)."""

    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    data_root: str | None = None  # Fashion-MNIST IDX folder (None: Debian's)
    dataset: str = "fashion-multi"  # a multi-label source (fashion-context-multi: the context benchmark)
    data: dict[str, Any] = field(
        default_factory=dict
    )  # more DataConfig settings (p_context, canvas_size, ...)
    model: dict[str, Any] = field(
        default_factory=dict
    )  # ModelConfig settings (backbone, layer, pretrained, ...)
    n_train: int = 6000
    n_val: int = 500
    n_test: int = 1000
    image_size: int = 64
    max_objects: int = 3
    epochs: int = 6
    lr: float = 2e-3
    batch_size: int = 64
    recam_epochs: int = 3
    recam_lr: float = 5e-4
    recam_weight: float = 1.0
    recam_norm: str = "relu-max"
    tap_theta: float = 0.05
    recam_backbone_lr_mult: float = 0.1
    prototypes: dict[str, float] = field(default_factory=dict)  # PrototypeConfig settings but τ and seed
    lpcam_taus: list[float] = field(default_factory=lambda: [0.1, 0.3, 0.5])
    description: str = ""

    def validate(self) -> None:
        """One-line :class:`OptionError` for settings the study cannot use."""
        names = {f.name for f in dataclasses.fields(PrototypeConfig)} - {"tau", "seed"}
        unknown = sorted(set(self.prototypes) - names)
        if unknown:
            raise OptionError("prototypes", f"unknown key {unknown[0]!r}; valid: {', '.join(sorted(names))}")
        if not self.seeds or not self.lpcam_taus:
            raise OptionError("seeds" if not self.seeds else "lpcam_taus", "give at least one value")
        if not get_dataset(self.dataset).multilabel:
            raise OptionError(
                "dataset",
                "the WSSS study needs a multi-label dataset, e.g. fashion-context-multi",
                self.dataset,
            )
        check_sections(self.data, self.model)


#: --quick: the smoke-size budget
QUICK: dict[str, Any] = {"n_train": 256, "n_val": 64, "n_test": 64, "epochs": 1, "recam_epochs": 1,
                         "prototypes": {"k": 4}, "lpcam_taus": [0.3]}  # fmt: skip
BAE_ROWS = (("CAM", "gap", "cam", "max"), ("+PaS", "gap", "cam", "percentile"),
            ("+NWC", "gap", "nwc-cam", "percentile"), ("+TAP", "tap", "nwc-cam", "percentile"))  # fmt: skip
LPCAM_ROWS = ("cam", "lpcam-f", "lpcam")
RECAM_ROWS = ("w", "w2", "sum", "prod")
PAPER: dict[str, dict[str, Any]] = {
    "bae": {"CAM": 0.5254, "+PaS": 0.5563, "+NWC": 0.5881, "+TAP": 0.6370},  # ImageNet val, CRF in every row but CAM
    "lpcam": {"cam": (26.5, 26.2, 48.8, 65.0, 65.2), "lpcam-f": (33.1, 16.2, 52.1, 61.3, 76.6),
              "lpcam": (29.8, 16.7, 54.9, 64.9, 77.2)},  # VOC train seeds: FP, FN, mIoU, precision, recall
}  # fmt: skip


def study_config(path: str | Path | None, quick: bool = False) -> WsssStudy:
    """The defaults (``quick``: the smoke budget), with the settings of the JSON file at
    ``path`` (if any); an unknown key or a wrong type is a one-line error naming the file and key."""
    base = dataclasses.replace(WsssStudy(), **QUICK) if quick else WsssStudy()
    return checked(load_typed(WsssStudy, path, dataclasses.asdict(base)) if path else base, path)


def _run_config(out: Path, s: WsssStudy, seed: int, name: str) -> RunConfig:
    data = DataConfig(
        dataset=s.dataset, root=s.data_root, n_train=s.n_train, n_val=s.n_val,
        n_test=s.n_test, image_size=s.image_size, max_objects=s.max_objects, seed=seed,
    )  # fmt: skip
    data = with_overrides(data, s.data, "data")
    model = with_overrides(ModelConfig(backbone="resnet18"), s.model, "model")
    model.head, model.tap_theta = ("tap" if name == "tap" else "gap"), s.tap_theta
    train = TrainConfig(
        epochs=s.epochs, lr=s.lr, batch_size=s.batch_size, schedule="onecycle", seed=seed,
        out=str(out), exp_id=f"{name}-seed{seed}",
    )  # fmt: skip
    cfg = RunConfig(data, model, train, "cam")
    if name == "recam":
        cfg.mode = "recam"
        cfg.model.fc2 = True
        cfg.train.epochs, cfg.train.lr, cfg.train.schedule = s.recam_epochs, s.recam_lr, "cosine"
        cfg.train.recam_weight, cfg.train.recam_norm = s.recam_weight, s.recam_norm
        cfg.train.backbone_lr_mult = s.recam_backbone_lr_mult
        cfg.train.init = str(out / f"gap-seed{seed}" / "best.safetensors")
    return cfg


def _train(cfg: RunConfig, progress: Progress | None) -> Path:
    run_dir = Path(cfg.train.out) / cfg.train.exp_id
    train_or_reuse(cfg, progress)
    return run_dir


def _seed_scores(ms_val: Any, val: Any, ms_test: Any, test: Any) -> dict[str, float]:
    t = score_seeds(ms_val, val)["peak_bg_threshold"]
    r = score_seeds(ms_test, test, bg_threshold=float(t))
    return {k: float(r[k]) for k in ("miou", "fp", "fn", "precision", "recall", "bg_threshold", "peak_miou")}


def score_seed(out: Path, s: WsssStudy, seed: int, mk: Callable[[], Progress | None]) -> dict[str, Any]:
    """Train (or reuse) the three models of ``seed`` and score every row of the three tables
    (or reuse the scores, when ``scores-seed<seed>.json`` is there)."""
    return load_or_compute(out / f"scores-seed{seed}.json", partial(_score_seed, out, s, seed, mk))


def _train_prototypes(
    model: torch.nn.Module, data: DataConfig, cfg: PrototypeConfig, device: torch.device
) -> Prototypes:
    """LPCAM's prototypes from the train split; the split is built only when they are not on disk."""
    return build_prototypes(model, build_split(data, "train", augment=False), cfg, device=device)


def _score_seed(out: Path, s: WsssStudy, seed: int, mk: Callable[[], Progress | None]) -> dict[str, Any]:
    cfgs = {n: _run_config(out, s, seed, n) for n in ("gap", "tap", "recam")}
    runs = {n: _train(cfgs[n], mk()) for n in ("gap", "tap", "recam")}
    device = resolve_device("auto")
    data = cfgs["gap"].data
    val, test = build_split(data, "val"), build_split(data, "test")
    models = {n: load_checkpoint(runs[n] / "best.safetensors", device=device)[0] for n in runs}

    def maps(model: str, method: str, ds: Any, **kw: Any) -> Any:
        return extract(models[model], ds, method, "label", device=device, **kw)

    # LPCAM's τ is chosen per seed on val (seed mIoU of LPCAM) among ``lpcam_taus``
    best: tuple[float, float, Any] | None = None
    for tau in s.lpcam_taus:
        pcfg = PrototypeConfig(**{**s.prototypes, "tau": tau, "seed": seed})  # type: ignore[arg-type]
        p = load_or_compute(
            out / f"prototypes-seed{seed}-tau{tau}.safetensors",
            partial(_train_prototypes, models["gap"], data, pcfg, device),
            read=load_prototypes,
            write=save_prototypes,
        )
        v = score_seeds(maps("gap", "lpcam", val, prototypes=p), val)["peak_miou"]
        if best is None or v > best[0]:
            best = (v, tau, p)
    assert best is not None
    _, tau, protos = best

    res: dict[str, Any] = {"classification": {}, "bae": {}, "lpcam": {}, "recam": {}}
    for n in runs:
        res["classification"][n] = json.loads((runs[n] / "summary.json").read_text())["test"]["map"]
    cache: dict[tuple[str, str], Any] = {}
    for row, model, method, ref in BAE_ROWS:
        key = (model, method)
        if key not in cache:
            cache[key] = maps(model, method, test)
        res["bae"][row] = class_peak_iou(cache[key], test, ref)["peak_iou"]
    for method in LPCAM_ROWS:
        kw = {"prototypes": protos} if method.startswith("lpcam") else {}
        ms_test = cache.get(("gap", method)) or maps("gap", method, test, **kw)
        res["lpcam"][method] = _seed_scores(maps("gap", method, val, **kw), val, ms_test, test)
    res["recam"]["cam"] = res["lpcam"]["cam"]
    for w in RECAM_ROWS:
        kw = {"recam_weights": w}
        res["recam"][w] = _seed_scores(
            maps("recam", "recam", val, **kw), val, maps("recam", "recam", test, **kw), test
        )
    res["lpcam_tau"] = tau
    res["prototypes"] = [
        {side: {k: row[side].get(k) for k in ("kept", "converged", "fallback")} for side in ("fg", "bg")}
        for row in protos.meta.get("classes", [])
    ]
    return res


def _ms(v: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(v), "std": statistics.pstdev(v) if len(v) > 1 else 0.0}


def run_wsss_study(
    out: str | Path,
    study: WsssStudy,
    quick: bool = False,
    progress: Callable[[], Progress | None] | None = None,
) -> dict[str, Any]:
    """Run (or resume) the study into ``out``; writes study.json and study.md."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    mk = progress or (lambda: None)
    per_seed = [score_seed(out, study, seed, mk) for seed in study.seeds]
    table: dict[str, Any] = {
        "classification_map": {
            n: _ms([r["classification"][n] for r in per_seed]) for n in ("gap", "tap", "recam")
        },
        "bae": {row: _ms([r["bae"][row] for r in per_seed]) for row, *_ in BAE_ROWS},
        "lpcam": {
            m: {
                k: _ms([r["lpcam"][m][k] for r in per_seed])
                for k in ("fp", "fn", "miou", "precision", "recall")
            }
            for m in LPCAM_ROWS
        },
        "recam": {m: _ms([r["recam"][m]["miou"] for r in per_seed]) for m in ("cam", *RECAM_ROWS)},
    }
    result = {"config": dataclasses.asdict(study), "quick": quick, "table": table, "seeds": per_seed}
    save_study(out, result, markdown, partial(overlays, out, study, per_seed[0].get("lpcam_tau")))
    return result


OVERLAY_COLUMNS: tuple[tuple[str, str, str, dict[str, Any] | None], ...] = (("CAM", "gap", "cam", {}), ("NWC (TAP model)", "tap", "nwc-cam", {}),
                   ("ReCAM w", "recam", "recam", {"recam_weights": "w"}), ("LPCAM-F", "gap", "lpcam-f", None),
                   ("LPCAM", "gap", "lpcam", None))  # fmt: skip


def overlays(out: Path, s: WsssStudy, tau: float | None, n: int = 6) -> None:
    """``overlays.png``: the first test (image, class) pairs of the first seed, one column per
    map (normalized as the seeds are), with the class mask as the last column."""
    from camkit.viz.layouts import labelled_grid
    from camkit.viz.overlay import mask_image, overlay
    from camkit.wsss.seeds import class_scores

    seed = s.seeds[0]
    cfg = _run_config(out, s, seed, "gap")
    test = build_split(cfg.data, "test")
    pairs = [
        (i, int(c))
        for i in range(min(dataset_len(test), n))
        for c in torch.nonzero(test[i]["label"]).flatten()
    ][:n]
    if not pairs:
        return
    idx = sorted({i for i, _ in pairs})
    sub = torch.utils.data.Subset(test, idx)
    protos = load_prototypes(out / f"prototypes-seed{seed}-tau{tau}.safetensors") if tau is not None else None
    panels, titles = [], []
    maps = {}
    for name, model, method, kw in OVERLAY_COLUMNS:
        if kw is None:
            if protos is None:
                continue
            kw = {"prototypes": protos}
        m, _ = load_checkpoint(out / f"{model}-seed{seed}" / "best.safetensors")
        ms = extract(m, sub, method, "label", **kw)
        maps[name] = class_scores(ms.maps, (cfg.data.image_size, cfg.data.image_size))
    for i, c in pairs:
        j = idx.index(i)
        sample = test[i]
        for name, sc in maps.items():
            panels.append(overlay(sample["image"], sc[j, c]))
            titles.append(f"{name}\n{CLASS_NAMES[c]}")
        panels.append(np.repeat(mask_image(sample["mask"] == c + 1)[..., None], 3, axis=2))
        titles.append("mask")
    labelled_grid(out / "overlays.png", panels, titles, cols=len(maps) + 1, tile=1.5)


def markdown(result: dict[str, Any]) -> str:
    t, s = result["table"], result["config"]

    def f(v: dict[str, float], scale: float = 1.0, nd: int = 4) -> str:
        return f"{v['mean'] * scale:.{nd}f} ± {v['std'] * scale:.{nd}f}"

    seeds = s["seeds"]
    mc = {"backbone": "resnet18", **s.get("model", {})}
    net = (
        f"{mc['backbone']} to {mc.get('layer') or 'its default cut'}"
        + (f" at output stride {mc['output_stride']}" if mc.get("output_stride") else "")
        + (", ImageNet-pretrained" if mc.get("pretrained") else ", from scratch")
    )
    knobs = "".join(f", {k} {v}" for k, v in s.get("data", {}).items())
    out = [
        f"Multi-object benchmark ({s.get('dataset', 'fashion-multi')}, {s['n_train']} train / {s['n_test']} test "
        f"canvases, 1–{s['max_objects']} items{knobs}), {net}, seeds {seeds}: mean ± std (population) over seeds.",
        "",
        "Test mAP of the classifiers: "
        + ", ".join(f"{n} {f(v)}" for n, v in t["classification_map"].items())
        + ".",
        "",
        "**Bae et al. Table 1** (peak IoU over every (image, present class) pair):",
        "",
        "| row | model / map / threshold reference | ours | paper (ImageNet, +CRF) |",
        "|---|---|---:|---:|",
    ]
    for row, model, method, ref in BAE_ROWS:
        out.append(f"| {row} | {model} / {method} / {ref} | {f(t['bae'][row])} | {PAPER['bae'][row]:.4f} |")
    out += [
        "",
        "**LPCAM Table 1** (seeds on test at the val-chosen background threshold; %; τ chosen on val per seed: "
        + ", ".join(str(r.get("lpcam_tau")) for r in result["seeds"])
        + "):",
        "",
        "| method | FP | FN | mIoU | precision | recall | paper (VOC): FP / FN / mIoU / prec. / rec. |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for m in LPCAM_ROWS:
        cells = " | ".join(f(t["lpcam"][m][k], 100, 1) for k in ("fp", "fn", "miou", "precision", "recall"))
        out.append(f"| {m} | {cells} | {' / '.join(str(v) for v in PAPER['lpcam'][m])} |")
    out += [
        "",
        "**ReCAM** (seed mIoU on test, %; CAM from the BCE model, ReCAM fine-tuned from it):",
        "",
        "| CAM | ReCAM w | ReCAM w' | ReCAM w + w' | ReCAM w ⊙ w' |",
        "|---:|---:|---:|---:|---:|",
        "| " + " | ".join(f(t["recam"][m], 100, 1) for m in ("cam", *RECAM_ROWS)) + " |",
        "",
        "![maps of the first test images, seed " + str(seeds[0]) + "](overlays.png)",
        "",
    ]
    return "\n".join(out)
