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
