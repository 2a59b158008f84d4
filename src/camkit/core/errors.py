"""User-facing errors.

Every mistake a user can make (a wrong path, an unknown layer, a checkpoint for another
model) raises :class:`CamkitError` with a one-line message that names the file or parameter
and says what to do. The library names *parameters* (``layer``, ``data.seed``), never
command-line flags: a bad value for a parameter raises :class:`OptionError`, which the CLI
shows with the flag that sets it (``--layer``, ``--data-seed``). A fix that mentions another
parameter writes it as ``{name}`` and gives its value in ``refs``: ``str()`` spells it as the
parameter (``device='cpu'``), the CLI as the flag (``--device cpu``). The CLI prints that line
and exits with status 2; library callers get an ordinary exception.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

_UNSET = object()
_REF = re.compile(r"\{([\w.]+)\}")


class CamkitError(Exception):
    """A problem with the user's input: one line, naming the file or parameter and the fix.

    ``refs`` maps the ``{name}`` placeholders of ``message`` to values: ``str()`` spells each
    as ``name='v'`` (None: the bare name); :meth:`text` with a ``flag_of`` (parameter -> flag)
    spells it as the CLI does: ``--name v``, ``--name`` for True or None, ``--no-name`` for
    False. Without refs the message is taken as it is (braces and all).
    """

    exit_code = 2

    def __init__(self, message: str = "", *, refs: Mapping[str, object] | None = None) -> None:
        self.message = message
        self.refs = dict(refs or {})
        super().__init__(self.text())

    def text(self, flag_of: Callable[[str], str] | None = None) -> str:
        """The message with its parameter references spelled for Python (``flag_of`` None) or
        as the flags ``flag_of`` names."""
        return _spell(self.message, self.refs, flag_of)

    def __reduce__(self) -> tuple[object, ...]:
        # rebuild from the parts, so the refs survive pickling (a process pool, torchrun)
        return (_rebuild, (self.__class__, (self.message,), {"refs": self.refs}))


class OptionError(CamkitError):
    """A bad value for one parameter.

    ``option`` is the parameter's name as the Python API spells it, optionally qualified by
    its config section (``"layer"``, ``"data.seed"``, ``"train.epochs"``); ``problem`` says
    what is wrong and how to fix it. ``str()`` reads ``layer=layer9: unknown layer; ...``; the
    CLI renders the same error as ``--layer layer9: unknown layer; ...``. ``problem`` may
    refer to other parameters as ``{name}`` with ``refs``, as :class:`CamkitError`'s message:
    ``OptionError("out", "already holds a run; pass {force} to replace it", out,
    refs={"force": True})``.
    """

    def __init__(
        self, option: str, problem: str, value: object = _UNSET, *, refs: Mapping[str, object] | None = None
    ) -> None:
        self.option = option
        self.problem = problem
        self.value = value
        self.refs = dict(refs or {})
        shown = option if value is _UNSET else f"{option}={value}"
        self.message = f"{shown}: {problem}"
        Exception.__init__(self, self.text())

    @property
    def has_value(self) -> bool:
        return self.value is not _UNSET

    def render(self, flag: str, flag_of: Callable[[str], str] | None = None) -> str:
        """The message with the option spelled as ``flag`` and the parameters it refers to as
        ``flag_of(name)`` (the CLI's view)."""
        problem = _spell(self.problem, self.refs, flag_of or _default_flag)
        return f"{flag}: {problem}" if not self.has_value else f"{flag} {self.value}: {problem}"

    def __reduce__(self) -> tuple[object, ...]:
        args = (self.option, self.problem) + (() if self.value is _UNSET else (self.value,))
        return (_rebuild, (self.__class__, args, {"refs": self.refs}))


def _default_flag(name: str) -> str:
    return "--" + name.rsplit(".", 1)[-1].replace("_", "-")


def _spell(message: str, refs: dict[str, object], flag_of: Callable[[str], str] | None) -> str:
    if not refs:
        return message
    spelled = {}
    for name, v in refs.items():
        if flag_of is None:
            spelled[name] = name if v is None else f"{name}={v!r}"
        elif v is None or v is True:
            spelled[name] = flag_of(name)
        elif v is False:
            spelled[name] = "--no-" + flag_of(name).removeprefix("--")
        else:
            spelled[name] = f"{flag_of(name)} {v}"
    # only the {name}s of refs: a path in the message may hold other braces
    return _REF.sub(lambda m: spelled.get(m.group(1), m.group(0)), message)


def _rebuild(cls: type[CamkitError], args: tuple[Any, ...], kw: dict[str, Any]) -> CamkitError:
    """Unpickle: the constructor arguments that ``__reduce__`` saved."""
    return cls(*args, **kw)


def close_matches(name: str, choices: list[str], n: int = 5) -> str:
    """Format ``choices`` for an error message, closest to ``name`` first."""
    import difflib

    near = difflib.get_close_matches(name, choices, n=n, cutoff=0.3)
    rest = [c for c in choices if c not in near]
    shown = near + rest
    more = "" if len(shown) <= 20 else f", ... ({len(shown) - 20} more)"
    return ", ".join(shown[:20]) + more
