"""How the CLI shows library errors: an :class:`~camkit.core.errors.OptionError` names a
parameter (``data.seed``); the user typed a flag (``--data-seed``)."""

from __future__ import annotations

from camkit.core.errors import CamkitError, OptionError

# parameter -> flag for parameters that are not config options (those come from the options'
# metadata: option_flag_table)
FLAG_OVERRIDES: dict[str, str] = {
    "checkpoint_init": "--init",
    "run_dir": "--run",
    "layers": "--layer",  # methods: the target layers
    "targets": "--target",  # methods: the classes to map
    "pred_dir": "--pred-masks",  # pipeline.evaluate.folder_iou
    "gt_dir": "--gt-masks",
    "shards.out_dir": "--shard-dir",  # pipeline.shards (explain's out_dir is --out)
}


def option_flag_table() -> dict[str, str]:
    """Parameter -> flag for every config option, generated from the dataclasses' metadata:
    the qualified name (``data.seed``, ``data.augment.rotate``) and every shorter dotted suffix
    that names one flag only (``augment.rotate``, ``root``; ``seed`` is ambiguous, so left out)."""
    from camkit.core.options import option_flags
    from camkit.methods.prototypes import PrototypeConfig
    from camkit.train.config import RunConfig

    full = {**option_flags(RunConfig), **option_flags(PrototypeConfig, "prototypes.")}
    table = dict(full)
    seen: dict[str, set[str]] = {}
    for name, flag in full.items():
        parts = name.split(".")
        for i in range(1, len(parts)):
            seen.setdefault(".".join(parts[i:]), set()).add(flag)
    table.update({k: next(iter(v)) for k, v in seen.items() if len(v) == 1 and k not in table})
    return table


def flag_for(option: str, overrides: dict[str, str] | None = None) -> str:
    """The command-line flag of a parameter name (qualified or not)."""
    table = {**option_flag_table(), **FLAG_OVERRIDES, **(overrides or {})}
    if option in table:
        return table[option]
    last = option.rsplit(".", 1)[-1]
    return table.get(last, "--" + last.replace("_", "-"))


def one_line(msg: str) -> str:
    """A CamkitError raised in a DataLoader worker comes back with the worker's traceback in its
    message; keep the user's one line."""
    if "\n" not in msg:
        return msg
    last = msg.strip().splitlines()[-1]
    return last.split("CamkitError: ", 1)[-1].split("OptionError: ", 1)[-1]


def cli_message(e: CamkitError, overrides: dict[str, str] | None = None) -> str:
    """The one line the CLI prints for a library error."""

    def flag_of(name: str) -> str:
        return flag_for(name, overrides)

    if isinstance(e, OptionError):
        return one_line(e.render(flag_of(e.option), flag_of))
    return one_line(e.text(flag_of))
