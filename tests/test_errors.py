"""Library errors name parameters; the CLI shows the flags (camkit.cli.errors)."""

import ast
import pickle
import re
from pathlib import Path

import pytest
import torch

import camkit
from camkit.cli.errors import cli_message, flag_for
from camkit.core.errors import CamkitError, OptionError

SRC = Path(camkit.__file__).parent
FLAG = re.compile(r"(?<![\w-])--[a-z]")

# the renderer itself spells negated flags
RENDERING = {"core/errors.py"}


def test_option_error_names_the_parameter_in_python_and_the_flag_on_the_command_line() -> None:
    e = OptionError("layer", "unknown layer; choose one of layer1, layer2", "layer9")
    assert str(e) == "layer=layer9: unknown layer; choose one of layer1, layer2"
    assert cli_message(e) == "--layer layer9: unknown layer; choose one of layer1, layer2"
    no_value = OptionError("layer_weights", "2 weights for 1 layers")
    assert str(no_value) == "layer_weights: 2 weights for 1 layers"
    assert cli_message(no_value) == "--layer-weights: 2 weights for 1 layers"
    assert cli_message(OptionError("data.seed", "must be >= 0", -1)) == "--data-seed -1: must be >= 0"
    assert cli_message(OptionError("layers", "not a layer", "x")) == "--layer x: not a layer"
    assert cli_message(OptionError("shards.out_dir", "no index.json", "d")) == "--shard-dir d: no index.json"
    assert flag_for("out_dir") == "--out-dir"  # the shard override is qualified, explain's is not


def test_references_to_other_parameters_render_both_ways() -> None:
    e = OptionError(
        "out",
        "already holds a demo run; pass another {out}, or {force} to replace it",
        "d",
        refs={"out": None, "force": True},
    )
    assert str(e) == "out=d: already holds a demo run; pass another out, or force=True to replace it"
    assert cli_message(e) == "--out d: already holds a demo run; pass another --out, or --force to replace it"
    hint = OptionError(
        "pretrained", "or pass {weights}, or use {pretrained}", refs={"weights": "FILE", "pretrained": False}
    )
    assert str(hint) == "pretrained: or pass weights='FILE', or use pretrained=False"
    assert cli_message(hint) == "--pretrained: or pass --weights FILE, or use --no-pretrained"
    plain = CamkitError(
        "/a/{b}/list.txt:3: label 12 out of range; fix {num_classes}", refs={"num_classes": None}
    )
    assert str(plain) == "/a/{b}/list.txt:3: label 12 out of range; fix num_classes"  # other braces stay
    assert cli_message(plain) == "/a/{b}/list.txt:3: label 12 out of range; fix --num-classes"
    assert cli_message(CamkitError("a {set} of braces")) == "a {set} of braces"


def test_errors_survive_pickling_with_their_parts() -> None:
    e = pickle.loads(pickle.dumps(OptionError("target", "use {target}", "pred", refs={"target": "label"})))
    assert (e.option, e.value, str(e)) == ("target", "pred", "target=pred: use target='label'")
    assert cli_message(e) == "--target pred: use --target label"
    no_value = pickle.loads(pickle.dumps(OptionError("layer", "no target layer given")))
    assert not no_value.has_value and cli_message(no_value) == "--layer: no target layer given"
    plain = pickle.loads(pickle.dumps(CamkitError("fix {num_classes}", refs={"num_classes": None})))
    assert cli_message(plain) == "fix --num-classes"


def test_library_errors_keep_the_cli_wording(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from camkit.apps.demo import run_demo
    from camkit.core.dist import resolve_device
    from camkit.core.mapfile import load_maps

    with pytest.raises(OptionError) as e:
        load_maps(tmp_path / "none.npz")
    assert str(e.value) == f"maps={tmp_path / 'none.npz'}: file not found; create it with camkit extract"
    assert (
        cli_message(e.value)
        == f"--maps {tmp_path / 'none.npz'}: file not found; create it with camkit extract"
    )
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(OptionError) as e:
        resolve_device("cuda")
    assert str(e.value) == "device=cuda: CUDA is not available on this machine; use device='cpu'"
    assert cli_message(e.value) == "--device cuda: CUDA is not available on this machine; use --device cpu"
    (tmp_path / "run").mkdir()
    with pytest.raises(OptionError) as e:
        run_demo(tmp_path)
    assert cli_message(e.value) == (
        f"--out {tmp_path}: already holds a demo run; pass another --out, or --force to replace it"
    )


def _docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def flag_messages(source: str) -> list[tuple[int, str]]:
    """(line, text) of each string that names a CLI flag in an error: any literal inside a
    ``raise`` or a ``...Error(...)`` call, and any literal that is a flag itself (a flag handed
    to a helper that builds the message). Docstrings are documentation, not messages, and an
    option's declared flag (``option(..., flag="--data-seed")``) is where flags belong."""
    tree = ast.parse(source)
    skip = _docstrings(tree) | {
        id(kw.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "option"
        for kw in node.keywords
        if kw.arg == "flag"
    }
    found: dict[int, tuple[int, str]] = {}

    def visit(node: ast.AST, in_error: bool) -> None:
        if isinstance(node, ast.Raise):
            in_error = True
        elif isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            in_error = in_error or name.endswith("Error")
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            text = node.value
            if (in_error and FLAG.search(text)) or re.match(r"--[a-z]", text):
                found[id(node)] = (node.lineno, text)
        for child in ast.iter_child_nodes(node):
            visit(child, in_error)

    visit(tree, False)
    return sorted(found.values())


def test_the_scan_finds_flags_in_error_messages() -> None:
    src = '''
def f(x):
    """Pass --layer on the command line."""
    if x:
        raise CamkitError(f"--layer {x}: unknown")
    helper(x, "--data-root")
    e = ValueError("use --device cpu")
    raise e
msg = "a -- b and x--y are no flags"
seed: int = option(0, help="h", flag="--data-seed")
'''
    assert [line for line, _ in flag_messages(src)] == [5, 6, 7]


def test_library_errors_name_parameters_not_flags() -> None:
    files = {
        p.relative_to(SRC).as_posix(): p for p in SRC.rglob("*.py") if p.relative_to(SRC).parts[0] != "cli"
    }
    offenders = [
        f"{rel}:{line}: {text!r}"
        for rel, path in sorted(files.items())
        if rel not in RENDERING
        for line, text in flag_messages(path.read_text())
    ]
    assert not offenders, (
        "name the parameter (OptionError, or {name} with refs), not the flag:\n" + "\n".join(offenders)
    )
