"""The ``camkit`` command line: assembles the commands (one module each under
``camkit.cli``), sets up logging and SIGTERM handling, and prints library errors as one line.

User mistakes surface as one line on stderr (``camkit: error: …``) and exit status 2.

Start-up is lazy: a command's options (and the torch, data and model modules they come from)
are built only for the command being run, so ``camkit --help`` and ``--version`` answer at once
and each command pays only for what it uses.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import signal
import sys
from typing import Any

from camkit import __version__
from camkit.cli.errors import cli_message
from camkit.cli.examples import add_example
from camkit.cli.options import show_defaults
from camkit.core.errors import CamkitError

log = logging.getLogger("camkit")

#: the command modules, in the order ``camkit --help`` lists them
COMMANDS = ("train", "sweep", "augment", "study", "evaluate_epochs", "cv", "extract", "faithfulness",
            "evaluate", "visualize", "prototypes", "explain", "report", "methods", "demo")  # fmt: skip


class _Listed(BaseException):  # not caught by a register()'s own "except Exception"
    """Stops a command's ``register`` right after it named itself (see :class:`_Names`)."""

    def __init__(self, name: str, help: str | None) -> None:
        super().__init__(name)
        self.name, self.help = name, help


class _Names:
    """Stands in for the subparsers action while a command's ``register`` runs only as far as
    ``sub.add_parser(NAME, help=...)``: the name and help that ``camkit --help`` lists, without
    building (and importing) the command's options."""

    def add_parser(self, name: str, **kw: Any) -> None:
        raise _Listed(name, kw.get("help"))


def _listing(module: Any) -> tuple[str, str | None]:
    try:
        module.register(_Names())
    except _Listed as e:
        return e.name, e.help
    raise AssertionError(f"{module.__name__}.register() added no parser")  # pragma: no cover


def command_of(argv: list[str]) -> str | None:
    """The command named in ``argv`` (the first word that is not an option: the top-level
    options take no values), or None."""
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(command: str | None = "*") -> argparse.ArgumentParser:
    """The parser: every command's options (``command`` "*"), or only ``command``'s, the others
    listed by name (None: names only, for ``--help`` and ``--version``)."""
    p = argparse.ArgumentParser(
        prog="camkit", description="Class activation maps: train, extract, score, look."
    )
    p.add_argument("--version", action="version", version=f"camkit {__version__}")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for mod in COMMANDS:
        module = importlib.import_module(f"camkit.cli.{mod}")
        name, help_ = _listing(module)
        if command in ("*", name):
            module.register(sub)
            add_example(sub.choices[name], name)
        else:
            sub.add_parser(name, help=help_)
    show_defaults(p)
    return p


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so that every ``with`` block unwinds."""


def _on_term(signum: int, _frame: object) -> None:  # a cluster's scheduler stops jobs with SIGTERM
    raise _Terminated(signum)


def _setup_logging(args: argparse.Namespace) -> None:
    worker = os.environ.get("RANK", "0") != "0"  # under torchrun, rank 0 alone talks
    level = logging.WARNING if args.quiet or worker else (logging.DEBUG if args.verbose > 1 else logging.INFO)
    if worker:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the life of this process
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser(command_of(argv)).parse_args(argv)
    except CamkitError as e:  # a choices list read from a broken plugin, say
        print(f"camkit: error: {cli_message(e)}", file=sys.stderr)
        return e.exit_code
    _setup_logging(args)
    with contextlib.suppress(ValueError):  # only the main thread may install handlers
        signal.signal(signal.SIGTERM, _on_term)
    try:
        from camkit.cli.checks import check_args

        check_args(args)
        return int(args.func(args) or 0)
    except CamkitError as e:
        print(f"camkit: error: {cli_message(e)}", file=sys.stderr)
        return e.exit_code
    except (KeyboardInterrupt, _Terminated) as e:
        # every file is written to a temporary name and renamed, so nothing is half-written
        code = 143 if isinstance(e, _Terminated) else 130
        print(f"camkit: interrupted ({'SIGTERM' if code == 143 else 'Ctrl-C'}); finished files are kept, "
              "rerun the same command (train: with --resume) to continue", file=sys.stderr)  # fmt: skip
        return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
