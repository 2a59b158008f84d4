"""A tiny trained run for the provenance and output tests: 64 training canvases of 32 px from
the synthetic IDX files, one epoch, trained through the command line in this process."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cli_helpers import run_here
from conftest import _shapes, write_idx

DATA = ["--n-train", "64", "--n-val", "16", "--n-test", "16", "--image-size", "32"]


def train_tiny(out: Path, root: Path, exp_id: str = "r") -> Path:
    """``camkit train`` of a tiny run into ``out/exp_id``; returns the run folder."""
    p = run_here(
        "train", "--data-root", str(root), *DATA, "--epochs", "1", "--batch-size", "32",
        "--out", str(out), "--exp-id", exp_id,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    return out / exp_id


def extract_tiny(run: Path, out: Path) -> Path:
    """``camkit extract`` of the run's maps into ``out`` (asserted to succeed); returns ``out``."""
    assert run_here("extract", "--run", str(run), "--out", str(out)).returncode == 0
    return out


def other_fmnist(root: Path, seed: int = 7) -> Path:
    """Synthetic IDX files like the ``fake_fmnist`` fixture's, from another seed (other content)."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for prefix, n in (("train", 600), ("t10k", 200)):
        x, y = _shapes(n, rng)
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", x)
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", y)
    return root


def leftovers(folder: Path) -> list[str]:
    """Hidden temporary files of atomic writes left in ``folder`` (there should be none)."""
    return sorted(p.name for p in folder.rglob(".*tmp*"))
