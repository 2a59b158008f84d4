"""The ``camkit`` command line: assembles the commands (one module each under
``camkit.cli``), sets up logging and SIGTERM handling, and prints library errors as one line.

User mistakes surface as one line on stderr (``camkit: error: …``) and exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import signal
import sys

from camkit import __version__
from camkit.cli.errors import cli_message
from camkit.cli.options import show_defaults
from camkit.core.errors import CamkitError

log = logging.getLogger("camkit")

#: the command modules, in the order ``camkit --help`` lists them
COMMANDS = ("train", "sweep", "augment", "study", "evaluate_epochs", "cv", "extract", "faithfulness",
            "evaluate", "visualize", "prototypes", "explain", "report", "methods", "demo")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="camkit", description="Class activation maps: train, extract, score, look."
    )
    p.add_argument("--version", action="version", version=f"camkit {__version__}")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"camkit.cli.{name}").register(sub)
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
    args = build_parser().parse_args(argv)
    _setup_logging(args)
    with contextlib.suppress(ValueError):  # only the main thread may install handlers
        signal.signal(signal.SIGTERM, _on_term)
    try:
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
