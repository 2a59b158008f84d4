"""Options declared once: the flags generated from the config dataclasses, their help, and
how parsed flags and library errors map back."""

import argparse

import pytest

from camkit.cli.args import method_args, run_config
from camkit.cli.errors import cli_message, flag_for
from camkit.cli.main import build_parser
from camkit.cli.options import apply_args
from camkit.core.errors import CamkitError, OptionError
from camkit.data.augment import AugmentConfig
from camkit.methods.prototypes import PrototypeConfig
from camkit.train.config import RunConfig, TrainConfig

# every data/model/training flag of camkit train before the options were generated
OLD_TRAIN_FLAGS = [
    "--dataset",
    "--max-objects",
    "--data-root",
    "--mask-root",
    "--image-size",
    "--n-train",
    "--n-val",
    "--n-test",
    "--data-seed",
    "--val-fraction",
    "--aug-hflip",
    "--aug-rotate",
    "--aug-shift",
    "--aug-jitter",
    "--aug-crop",
    "--cache-dir",
    "--backbone",
    "--layer",
    "--head",
    "--tap-theta",
    "--pretrained",
    "--no-pretrained",
    "--output-stride",
    "--weights",
    "--freeze-backbone",
    "--num-classes",
    "--epochs",
    "--lr",
    "--batch-size",
    "--weight-decay",
    "--schedule",
    "--step-epochs",
    "--step-gamma",
    "--label-smoothing",
    "--patience",
    "--overfit-ratio",
    "--channels-last",
    "--no-channels-last",
    "--save-every-epoch",
    "--mode",
    "--init",
    "--backbone-lr-mult",
    "--recam-weight",
    "--recam-norm",
    "--transform",
    "--seg-weight",
    "--tensorboard",
    "--config",
    "--seed",
    "--device",
    "--workers",
    "--amp",
    "--out",
    "--exp-id",
    "--resume",
    "--no-test",
]


def _sub(name: str) -> argparse.ArgumentParser:
    p = build_parser()
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


def test_every_old_flag_still_parses() -> None:
    flags = {s for a in _sub("train")._actions for s in a.option_strings}
    assert set(OLD_TRAIN_FLAGS) <= flags, sorted(set(OLD_TRAIN_FLAGS) - flags)


def test_every_option_states_what_it_does_and_its_default() -> None:
    p = build_parser()
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    for name, sp in sub.choices.items():
        for a in sp._actions:
            if not a.option_strings or isinstance(a, argparse._HelpAction) or a.required:
                continue
            what = (a.help or "").split(" (default: ")[0]
            assert "(default: " in (a.help or "") and len(what.split()) >= 2, (name, a.option_strings, a.help)
    helps = {a.option_strings[0]: a.help for a in _sub("train")._actions if a.option_strings}
    assert helps["--image-size"] == "model input side in pixels (default: 64)"
    assert helps["--epochs"] == "passes over the training split (default: 5)"
    assert helps["--no-test"].endswith("(default: on)")


def test_only_the_flags_given_are_applied() -> None:
    argv = ["--epochs", "3", "--data-seed", "7", "--aug-hflip", "--aug-rotate", "15", "--no-test",
            "--transform", "hflip", "--transform", "rot:90", "--no-pretrained", "--mode", "seg"]  # fmt: skip
    args = build_parser().parse_args(["train", *argv])
    cfg = run_config(args)
    assert cfg.train.epochs == 3 and cfg.train.lr == TrainConfig().lr and cfg.train.test is False
    assert cfg.data.seed == 7 and cfg.train.seed == 0 and cfg.mode == "seg"
    assert cfg.data.augment == AugmentConfig(hflip=True, rotate=15.0)
    assert cfg.train.seg_transforms == ["hflip", "rot:90"] and cfg.model.pretrained is False
    assert run_config(build_parser().parse_args(["train"])) == RunConfig()
    protos = apply_args(
        PrototypeConfig(), build_parser().parse_args(["prototypes", "--out", "p", "--k", "4"])
    )
    assert protos == PrototypeConfig(k=4)


@pytest.mark.parametrize(
    ("option", "flag"),
    [("data.seed", "--data-seed"), ("data.root", "--data-root"), ("root", "--data-root"),
     ("train.seed", "--seed"), ("seg_transforms", "--transform"), ("train.seg_transforms", "--transform"),
     ("augment.rotate", "--aug-rotate"), ("data.augment.crop", "--aug-crop"), ("train.test", "--no-test"),
     ("max_objects", "--max-objects"), ("mu_f", "--mu-f"), ("checkpoint_init", "--init"), ("layer", "--layer")],
)  # fmt: skip
def test_parameters_render_as_their_flags(option: str, flag: str) -> None:
    assert flag_for(option) == flag


def test_library_errors_read_as_the_old_cli_messages() -> None:
    with pytest.raises(OptionError) as e:
        TrainConfig(epochs=0).validate()
    assert str(e.value) == "train.epochs=0: must be at least 1"
    assert cli_message(e.value) == "--epochs 0: must be at least 1"
    with pytest.raises(OptionError) as e:
        AugmentConfig(shift=1.5).validate()
    assert cli_message(e.value) == "--aug-shift 1.5: must be in [0, 1)"
    with pytest.raises(OptionError) as e:
        PrototypeConfig(mu_b=2.0).validate()
    assert cli_message(e.value) == "--mu-b 2.0: is a softmax score; give it in [0, 1]"


def test_method_options_belong_to_a_chosen_method() -> None:
    def parse(*argv: str) -> argparse.Namespace:
        return build_parser().parse_args(["extract", "--out", "x.npz", *argv])

    with pytest.raises(CamkitError, match="^--recam-weights goes with --method recam$"):
        method_args(parse("--method", "cam", "--recam-weights", "w"))
    with pytest.raises(CamkitError, match="^--prototypes goes with --method lpcam or lpcam-f$"):
        method_args(parse("--method", "cam,recam", "--prototypes", "p.safetensors"))
    methods, layers, kw = method_args(
        parse("--method", "cam,recam", "--recam-weights", "w", "--layer", "a,b")
    )
    assert methods == ["cam", "recam"] and layers == ["a", "b"] and kw == {"recam_weights": "w"}


def test_sweep_grid_reaches_the_nested_augmentation(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from camkit.train import sweep as sweep_mod

    base = RunConfig()
    base.train.out, base.train.exp_id = str(tmp_path), "sw"
    grid = sweep_mod.parse_grid(["aug_rotate=10,20", "aug-hflip=true"], base)
    assert grid == {"aug_rotate": [10.0, 20.0], "aug_hflip": [True]}
    seen = []

    def fake_train(cfg: RunConfig, progress: object = None) -> dict:
        seen.append(cfg.data.augment)
        raise CamkitError("stop")

    monkeypatch.setattr("camkit.train.loop.train_run", fake_train)
    with pytest.raises(CamkitError, match="stop"):
        sweep_mod.run_sweep(base, grid)
    assert seen == [AugmentConfig(hflip=True, rotate=10.0)]
