"""Run the command line as a user would (a subprocess), and check one-line errors."""

import os
import subprocess
import sys

CAMKIT = [sys.executable, "-m", "camkit.cli.main"]


def run(*args: str, env_cache: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if env_cache:
        env["CAMKIT_CACHE"] = env_cache
    return subprocess.run([*CAMKIT, *args], capture_output=True, text=True, env=env, timeout=600)


def assert_one_line_error(p: subprocess.CompletedProcess, *needles: str) -> None:
    assert p.returncode == 2, p.stderr
    err = [ln for ln in p.stderr.strip().splitlines() if not ln.startswith(("INFO", "WARNING"))]
    assert len(err) == 1, p.stderr
    assert "Traceback" not in p.stderr
    for n in needles:
        assert n in err[0], err[0]
