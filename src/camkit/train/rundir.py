"""The run folder ``OUT/EXP_ID/``: created once, reopened only to resume the same model."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from torch.utils.data import Dataset

from camkit.core.dist import World, broadcast_object
from camkit.core.errors import CamkitError, OptionError
from camkit.core.io import write_json
from camkit.train.config import RunConfig


def prepare_run_dir(cfg: RunConfig) -> Path:
    """Create (or, with resume, reopen) the run folder; never overwrite a finished run."""
    exp_id = cfg.train.exp_id
    if not exp_id.strip() or Path(exp_id).name in ("", ".", ".."):  # would write into out (or above) itself
        raise OptionError(
            "exp_id", "must name a folder inside the output folder (not empty, . or ..)", exp_id
        )
    run_dir = Path(cfg.train.out) / exp_id
    if cfg.train.resume:
        if not (run_dir / "last.pt").is_file():
            raise OptionError("resume", f"{run_dir}/last.pt not found; start the run without resuming")
    elif (run_dir / "best.safetensors").exists() or (run_dir / "last.pt").exists():
        raise OptionError(
            "exp_id",
            f"{run_dir} already holds a run; pass {{resume}} or choose another {{exp_id}}",
            cfg.train.exp_id,
            refs={"resume": True, "exp_id": None},
        )
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OptionError(
            "out", f"cannot create {run_dir} ({e.strerror}); choose a writable folder", cfg.train.out
        ) from None
    return run_dir


def open_run_dir(cfg: RunConfig, world: World) -> Path:
    """Rank 0 checks and prepares the run folder and writes config.json; every rank learns
    the outcome (rank 0 raises its own error, the others a copy of its message)."""
    err: CamkitError | None = None
    if world.main:
        try:
            run_dir = prepare_run_dir(cfg)
            _check_resume(cfg, run_dir)
            write_json(run_dir / "config.json", cfg.to_dict())
        except CamkitError as e:
            err = e
    msg = broadcast_object(world, str(err) if err else None)
    if err is not None:
        raise err
    if msg:
        raise CamkitError(msg)
    return Path(cfg.train.out) / cfg.train.exp_id


def _check_resume(cfg: RunConfig, run_dir: Path) -> None:
    if cfg.train.resume and (run_dir / "config.json").is_file():
        before = RunConfig.load(run_dir / "config.json").model
        there, asked = before.arch(), cfg.model.arch()
        diff = "; ".join(
            f"{k} {there[k]!r} there, {asked[k]!r} asked for" for k in asked if there[k] != asked[k]
        )
        if diff:
            raise OptionError(
                "resume", f"{run_dir} holds another model: {diff}; resume with the run's settings"
            )


PROVENANCE_FILE = "provenance.json"


def write_run_provenance(run_dir: Path, cfg: RunConfig, splits: dict[str, Dataset], world: World) -> None:
    """Rank 0 writes ``RUN_DIR/provenance.json``: camkit's version, the full data config, the
    model and mode, and each training split's fingerprint (image ids, labels, content hash;
    see :mod:`camkit.core.provenance`)."""
    if not world.main:
        return
    from camkit.core import provenance

    rec = provenance.record(
        asdict(cfg.data), None, None, {"config": asdict(cfg.model)}, mode=cfg.mode,
        splits={name: provenance.fingerprint(ds) for name, ds in splits.items()},
    )  # fmt: skip
    write_json(run_dir / PROVENANCE_FILE, rec)
