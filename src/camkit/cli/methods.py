"""``camkit methods``: the map methods as a markdown table."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("methods", help="list the map methods (markdown table)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from camkit.methods.registry import method_table

    print(method_table(), end="")
    return 0
