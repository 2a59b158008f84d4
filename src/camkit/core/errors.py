"""User-facing errors.

Every mistake a user can make (a wrong path, an unknown layer, a checkpoint for another
model) raises :class:`CamkitError` with a one-line message that names the file or option
and says what to do. The CLI prints that line and exits with status 2; library callers get
an ordinary exception.
"""

from __future__ import annotations


class CamkitError(Exception):
    """A problem with the user's input: one line, naming the file or option and the fix."""

    exit_code = 2


def close_matches(name: str, choices: list[str], n: int = 5) -> str:
    """Format ``choices`` for an error message, closest to ``name`` first."""
    import difflib

    near = difflib.get_close_matches(name, choices, n=n, cutoff=0.3)
    rest = [c for c in choices if c not in near]
    shown = near + rest
    more = "" if len(shown) <= 20 else f", ... ({len(shown) - 20} more)"
    return ", ".join(shown[:20]) + more
