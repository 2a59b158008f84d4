"""Output names that stay distinct when input files share a stem."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path


def distinct_stems(paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """The files' stems, lengthened by their parent folders until no two are equal
    (``dup/x/img.png``, ``dup/y/img.png`` -> ``x_img``, ``y_img``); a path given twice gets
    ``_2``, ``_3`` ... so every name is unique."""
    parts = [Path(p).with_suffix("").parts for p in paths]
    longest = max((len(p) for p in parts), default=1)
    for depth in range(1, longest + 1):
        names = ["_".join(p[-depth:]) for p in parts]
        if len(set(names)) == len(names):
            return names
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return out
