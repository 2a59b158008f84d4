"""User-facing errors.

Every mistake a user can make (a wrong path, an unknown layer, a checkpoint for another
model) raises :class:`CamkitError` with a one-line message that names the file or parameter
and says what to do. The library names *parameters* (``layer``, ``data.seed``), never
command-line flags: a bad value for a parameter raises :class:`OptionError`, which the CLI
shows with the flag that sets it (``--layer``, ``--data-seed``). The CLI prints that line and
exits with status 2; library callers get an ordinary exception.
"""

from __future__ import annotations

_UNSET = object()


class CamkitError(Exception):
    """A problem with the user's input: one line, naming the file or parameter and the fix."""

    exit_code = 2


class OptionError(CamkitError):
    """A bad value for one parameter.

    ``option`` is the parameter's name as the Python API spells it, optionally qualified by
    its config section (``"layer"``, ``"data.seed"``, ``"train.epochs"``); ``problem`` says
    what is wrong and how to fix it. ``str()`` reads ``layer=layer9: unknown layer; ...``; the
    CLI renders the same error as ``--layer layer9: unknown layer; ...``.
    """

    def __init__(self, option: str, problem: str, value: object = _UNSET) -> None:
        self.option = option
        self.problem = problem
        self.value = value
        shown = option if value is _UNSET else f"{option}={value}"
        super().__init__(f"{shown}: {problem}")

    @property
    def has_value(self) -> bool:
        return self.value is not _UNSET

    def render(self, flag: str) -> str:
        """The message with the option spelled as ``flag`` (the CLI's view)."""
        return f"{flag}: {self.problem}" if not self.has_value else f"{flag} {self.value}: {self.problem}"


def close_matches(name: str, choices: list[str], n: int = 5) -> str:
    """Format ``choices`` for an error message, closest to ``name`` first."""
    import difflib

    near = difflib.get_close_matches(name, choices, n=n, cutoff=0.3)
    rest = [c for c in choices if c not in near]
    shown = near + rest
    more = "" if len(shown) <= 20 else f", ... ({len(shown) - 20} more)"
    return ", ".join(shown[:20]) + more
