"""Run the command line as a user would (a subprocess), and check one-line errors.

``run`` starts a new ``python -m camkit.cli.main`` process: the console-script path, kept for
at least one test of each command. ``run_here`` runs the same argument list through the same
``main`` (parser, command, one-line error rendering, exit status) inside the test process, which
spares the seconds each new process spends importing torch; most command-line tests use it.
"""

import contextlib
import io
import os
import signal
import subprocess
import sys
from pathlib import Path

CAMKIT = [sys.executable, "-m", "camkit.cli.main"]


def run(*args: str, env_cache: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if env_cache:
        env["CAMKIT_CACHE"] = env_cache
    return subprocess.run([*CAMKIT, *args], capture_output=True, text=True, env=env, timeout=600)


def run_here(*args: str, env_cache: str | None = None) -> subprocess.CompletedProcess:
    """``camkit ARGS`` in this process: stdout, stderr and the exit status, as ``run`` returns them."""
    from camkit.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    saved_cache, saved_term = os.environ.get("CAMKIT_CACHE"), signal.getsignal(signal.SIGTERM)
    if env_cache:
        os.environ["CAMKIT_CACHE"] = env_cache
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as e:  # argparse: --help, usage errors
                code = e.code if isinstance(e.code, int) else int(e.code is not None)
    finally:
        signal.signal(signal.SIGTERM, saved_term)  # main() installs its own handler
        if saved_cache is None:
            os.environ.pop("CAMKIT_CACHE", None)
        else:
            os.environ["CAMKIT_CACHE"] = saved_cache
    return subprocess.CompletedProcess(["camkit", *args], code, out.getvalue(), err.getvalue())


def assert_one_line_error(p: subprocess.CompletedProcess, *needles: str) -> None:
    assert p.returncode == 2, p.stderr
    err = [ln for ln in p.stderr.strip().splitlines() if not ln.startswith(("INFO", "WARNING"))]
    assert len(err) == 1, p.stderr
    assert "Traceback" not in p.stderr
    for n in needles:
        assert n in err[0], err[0]


def train_extract_evaluate(
    tmp_path: Path, data: list[str], exp_id: str, batch_size: int
) -> tuple[Path, subprocess.CompletedProcess]:
    """``train`` (one epoch, no test) on the ``data`` options into ``tmp_path/runs/exp_id``, then
    ``extract`` of the test split's CAM maps into ``tmp_path/m.npz`` and ``evaluate`` of them into
    ``tmp_path/e.json``, each asserted to succeed. Returns (the run folder, evaluate's process)."""
    p = run_here("train", *data, "--epochs", "1", "--batch-size", str(batch_size), "--out", str(tmp_path / "runs"),
                 "--exp-id", exp_id, "--no-test")  # fmt: skip
    assert p.returncode == 0, p.stderr
    run = tmp_path / "runs" / exp_id
    p = run_here(
        "extract", "--run", str(run), "--split", "test", "--method", "cam", "--out", str(tmp_path / "m.npz")
    )
    assert p.returncode == 0, p.stderr
    p = run_here("evaluate", "--maps", str(tmp_path / "m.npz"), "--out", str(tmp_path / "e.json"))
    assert p.returncode == 0, p.stderr
    return run, p


def report_html(run: Path, tmp_path: Path) -> str:
    """``report`` of two test images of ``run`` into ``tmp_path/r.html`` (asserted to succeed): its text."""
    p = run_here("report", str(run), "--split", "test", "--num", "2", "--out", str(tmp_path / "r.html"))
    assert p.returncode == 0, p.stderr
    return (tmp_path / "r.html").read_text()
