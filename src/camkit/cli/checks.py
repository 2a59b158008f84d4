"""Value checks shared by every command, made once after parsing and before any work: a
count of 0, an image side of 1 or an unknown colormap gives a one-line error naming the flag."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from camkit.core.errors import CamkitError

#: the smallest input side the backbones and the benchmark generator take
MIN_IMAGE_SIZE = 16

#: argument -> (test, what the value must be); each applies to every command with that argument
RULES: dict[str, tuple[Callable[[float], bool], str]] = {
    "batch_size": (lambda v: v >= 1, "must be at least 1"),
    "num": (lambda v: v >= 1, "must be at least 1"),
    "steps": (lambda v: v >= 1, "must be at least 1"),
    "topk": (lambda v: v >= 1, "must be at least 1"),
    "image_size": (lambda v: v >= MIN_IMAGE_SIZE, f"must be at least {MIN_IMAGE_SIZE} pixels"),
    "step": (lambda v: 0 < v <= 1, "must be in (0, 1], e.g. 0.01"),
    "alpha": (lambda v: 0 <= v <= 1, "the heatmap opacity must be in [0, 1]"),
}


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def check_cmap(name: str) -> None:
    """A one-line error for a name matplotlib does not know as a colormap."""
    import matplotlib

    if name not in matplotlib.colormaps:
        import difflib

        near = difflib.get_close_matches(name, list(matplotlib.colormaps), n=3, cutoff=0.5)
        raise CamkitError(
            f"--cmap {name}: not a matplotlib colormap; try {', '.join(near or ['jet', 'viridis', 'magma'])}"
        )


def check_args(args: argparse.Namespace) -> None:
    """Refuse out-of-range values of the shared arguments (None: not given, left to the command)."""
    for dest, (ok, problem) in RULES.items():
        value = getattr(args, dest, None)
        if value is not None and not isinstance(value, bool) and not ok(value):
            raise CamkitError(f"{_flag(dest)} {value}: {problem}")
    if getattr(args, "cmap", None) is not None:
        check_cmap(args.cmap)
    if getattr(args, "model", None) and (getattr(args, "run", None) or getattr(args, "checkpoint", None)):
        other = "--run" if getattr(args, "run", None) else "--checkpoint"
        raise CamkitError(f"--model {args.model} and {other} name two models; pass one of them")


def check_out_file(flag: str, path: str) -> None:
    """Before the work: refuse an output file that cannot be written (an existing folder, a
    folder that cannot be created or written to), so the work is not lost at the end."""
    import os
    import tempfile
    from pathlib import Path

    out = Path(path)
    if out.is_dir():
        raise CamkitError(f"{flag} {path}: a folder; pass a file name")
    parent = out.parent if str(out.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".probe", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        why = "a file is in the way" if isinstance(e, (FileExistsError, NotADirectoryError)) else e.strerror
        raise CamkitError(f"{flag} {path}: cannot write there ({why}); choose a writable folder") from None
