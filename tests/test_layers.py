"""The layers hold at import time: importing a lower layer loads nothing above it (the
import-linter contracts in pyproject.toml check the source; this checks what Python loads)."""

from __future__ import annotations

import subprocess
import sys

import pytest

ABOVE = {
    "camkit.methods": ("train", "data", "wsss", "pipeline", "apps", "cli"),
    "camkit.metrics": ("methods", "train", "data", "wsss", "pipeline", "apps", "cli"),
    "camkit.models": ("methods", "train", "data", "wsss", "pipeline", "apps", "cli"),
    "camkit.data": ("methods", "train", "models", "wsss", "pipeline", "apps", "cli"),
    "camkit.train": ("wsss", "pipeline", "apps", "cli"),
    "camkit.pipeline": ("apps", "cli"),
}


@pytest.mark.parametrize("module", list(ABOVE))
def test_importing_a_layer_loads_nothing_above_it(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        f"{module}.__name__  # use it\n"
        "print('\\n'.join(sorted(m for m in sys.modules if m.startswith('camkit.'))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    above = [m for m in loaded if m.split(".")[1] in ABOVE[module]]
    assert not above, f"import {module} loaded {above}"
    assert module in loaded
