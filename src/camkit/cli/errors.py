"""How the CLI shows library errors: an :class:`~camkit.core.errors.OptionError` names a
parameter (``data.seed``); the user typed a flag (``--data-seed``)."""

from __future__ import annotations

from camkit.core.errors import CamkitError, OptionError

# parameter -> flag, where the flag is not ``--`` + the parameter's last part with dashes
FLAG_OVERRIDES: dict[str, str] = {
    "data.seed": "--data-seed",
    "data.root": "--data-root",
    "root": "--data-root",
    "seg_transforms": "--transform",
    "train.seg_transforms": "--transform",
    "checkpoint_init": "--init",
    "run_dir": "--run",
    "layers": "--layer",  # methods: the target layers
    "targets": "--target",  # methods: the classes to map
    "pred_dir": "--pred-masks",  # pipeline.evaluate.folder_iou
    "gt_dir": "--gt-masks",
    "shards.out_dir": "--shard-dir",  # pipeline.shards (explain's out_dir is --out)
}


def flag_for(option: str, overrides: dict[str, str] | None = None) -> str:
    """The command-line flag of a parameter name (qualified or not)."""
    table = {**FLAG_OVERRIDES, **(overrides or {})}
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
