"""The first seconds: ``camkit --help`` and ``--version`` answer without importing torch (a
command builds and imports only its own options), every option says what it does and its
default, and every command's --help ends with an example."""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys

import pytest

from camkit.cli.main import COMMANDS, build_parser


def _subparsers(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


HEAVY = ("torch", "torchvision", "matplotlib", "PIL", "numpy", "safetensors")
PROBE = """
import contextlib, io, sys
from camkit.cli.main import main
with contextlib.redirect_stdout(io.StringIO()) as out:
    try:
        main([sys.argv[1]])
    except SystemExit:
        pass
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {heavy})
print(repr((out.getvalue(), heavy, "camkit.cli.train" in sys.modules)))
"""


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_import_no_torch(flag: str) -> None:
    """In a fresh process, as ``camkit --help`` starts: the modules loaded when it is done."""
    p = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), flag], capture_output=True, text=True,
                       timeout=120)  # fmt: skip
    assert p.returncode == 0, p.stderr
    out, heavy, listed = ast.literal_eval(p.stdout.strip())
    assert listed  # the commands were read (for their names), yet:
    assert heavy == [], heavy[:5]
    assert out.startswith("camkit ") if flag == "--version" else "evaluate-epochs" in out


def test_a_command_builds_only_its_own_options() -> None:
    subs = _subparsers(build_parser("methods"))
    assert len(subs) == len(COMMANDS)  # every command is listed
    assert [a.dest for a in subs["train"]._actions] == ["help"]  # but not built
    assert any("--epochs" in a.option_strings for a in _subparsers(build_parser("train"))["train"]._actions)


def test_every_option_has_help_and_its_default() -> None:
    missing = []
    for name, sp in _subparsers(build_parser()).items():
        for a in sp._actions:
            if isinstance(a, argparse._HelpAction):
                continue
            shown = a.help or ""
            if not shown or (a.option_strings and not a.required and "(default" not in shown):
                missing.append(f"{name} {'/'.join(a.option_strings) or a.dest}: {shown!r}")
    assert not missing, missing


def test_every_command_help_ends_with_an_example() -> None:
    for name, sp in _subparsers(build_parser()).items():
        assert sp.epilog and f"camkit {name}" in sp.epilog, name
        assert sp.format_help().rstrip().splitlines()[-1].lstrip().startswith("camkit ")
