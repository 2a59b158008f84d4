"""Atomic file writes: nothing already on disk is lost or half-written."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from camkit.core.errors import CamkitError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it over ``path``.

    If the body raises, the temporary file is removed and ``path`` keeps its old content.
    The temporary name keeps ``path``'s suffix so libraries that dispatch on it still work.
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    problem = output_problem(path)
    if problem:
        raise CamkitError(f"cannot write to {path}: {problem}")
    tmp_path: Path | None = None
    try:
        # SIGTERM/SIGINT are held while the temporary file is created, renamed or removed, so an
        # interruption (a scheduler's SIGTERM raises in the main thread) never strands it
        with _signals_held():
            try:
                parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=parent)
            except OSError as e:
                raise CamkitError(
                    f"cannot write to {parent}: {e.strerror}; choose a writable output folder"
                ) from e
            os.close(fd)
            tmp_path = Path(tmp)
        yield tmp_path
        with _signals_held():
            # mkstemp creates 0600 files; give the result the mode a plain open() would
            os.chmod(tmp_path, path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask())
            os.replace(tmp_path, path)
            tmp_path = None
    except BaseException as e:
        with _signals_held():
            if tmp_path is not None:
                with contextlib.suppress(OSError):
                    tmp_path.unlink()
        if isinstance(e, OSError) and e.errno in (
            errno.ENOSPC,
            errno.EDQUOT,
            errno.EROFS,
            errno.EACCES,
            errno.EPERM,
        ):
            raise CamkitError(
                f"cannot write {path}: {e.strerror or errno.errorcode.get(e.errno or 0, e)}; free space or choose "
                "another output path (the previous file, if any, is untouched)"
            ) from None
        raise


def output_problem(path: str | os.PathLike[str], folder: bool = False) -> str | None:
    """Why ``path`` cannot be written as a file (``folder``: created as a folder), found before
    any work: it is an existing folder (a file is wanted), an existing file (a folder is
    wanted), or a folder above it is a regular file ("Not a directory"). None when fine."""
    path = Path(path)
    if not folder and path.is_dir():
        return "it is an existing folder; name a file (a new name, or one inside the folder)"
    if folder and path.exists() and not path.is_dir():
        return "it is an existing file, not a folder; choose another name"
    for up in path.parents:
        if up.exists():
            if not up.is_dir():
                return f"{up} is a file, not a folder (Not a directory)"
            break
    return None


def ensure_folder(path: str | os.PathLike[str]) -> Path:
    """Create folder ``path`` (and its parents); a one-line error naming it when it cannot be."""
    path = Path(path)
    problem = output_problem(path, folder=True)
    if problem:
        raise CamkitError(f"cannot create folder {path}: {problem}")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CamkitError(f"cannot create folder {path}: {e.strerror}; choose a writable folder") from None
    return path


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGTERM and SIGINT for the body (delivered right after it); a no-op where the
    platform has no signal masks or off the main thread."""
    import signal
    import threading

    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    held = {signal.SIGTERM, signal.SIGINT}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    import dataclasses

    import numpy as np

    from camkit.core.results import Result

    if isinstance(o, Result):
        return o.to_dict()
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return dataclasses.asdict(o)
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serializable: {type(o).__name__}")
