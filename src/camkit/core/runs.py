"""Run or resume: each result lives in its own file, written once, atomically.

An interrupted job (a study, a sharded extraction, a sweep) is rerun as is: a result whose
file is there and readable is loaded instead of recomputed, a missing or unreadable one is
computed and written through :func:`camkit.core.io.atomic_path`, so a file is either whole
or absent. Training runs resume from their checkpoint (:func:`training_state`).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from camkit.core.io import write_json

log = logging.getLogger(__name__)

T = TypeVar("T")


def read_json(path: Path) -> Any:
    """The JSON value in ``path`` (raises OSError or ValueError when unreadable)."""
    return json.loads(path.read_text())


def load_or_compute(
    path: str | os.PathLike[str],
    compute: Callable[[], T],
    read: Callable[[Path], T] = read_json,
    write: Callable[[Path, T], None] = write_json,
) -> T:
    """``read(path)`` if the file is there and reads back; else ``compute()``, ``write`` it
    (``write`` must be atomic, as :func:`camkit.core.io.write_json` is), and return it.

    A file that exists but does not read back (OSError, ValueError, KeyError) is logged and
    recomputed, never trusted."""
    path = Path(path)
    if path.is_file():
        try:
            value = read(path)
        except (OSError, ValueError, KeyError) as e:
            log.warning("%s: unreadable (%s); computing it again", path, e.__class__.__name__)
        else:
            log.info("%s is already there; reusing it", path)
            return value
    value = compute()
    write(path, value)
    return value


def missing(paths: Sequence[str | os.PathLike[str]]) -> list[int]:
    """Positions of the ``paths`` whose result file is not there yet (files are written
    atomically, so one that exists is whole)."""
    return [i for i, p in enumerate(paths) if not Path(p).is_file()]


class TrainingState(Enum):
    """Where a training run stands: DONE (its summary is written), RESUME (a checkpoint to
    continue from) or FRESH (nothing yet)."""

    DONE = "done"
    RESUME = "resume"
    FRESH = "fresh"


def training_state(
    run_dir: str | os.PathLike[str], summary: str = "summary.json", checkpoint: str = "last.pt"
) -> TrainingState:
    """The state of the training run in ``run_dir``, from its ``summary`` and ``checkpoint`` files."""
    run_dir = Path(run_dir)
    if (run_dir / summary).is_file():
        return TrainingState.DONE
    return TrainingState.RESUME if (run_dir / checkpoint).is_file() else TrainingState.FRESH
