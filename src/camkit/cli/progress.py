"""Progress for the CLI (the library itself never draws): a tqdm bar on a terminal, and log
lines at a steady interval when stderr goes to a file or a pipe (a job's log), so a long step
(score-cam on a photo, faithfulness, a report) shows it is alive even between advances."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from typing import Any

log = logging.getLogger("camkit.progress")

#: seconds between log lines when stderr is not a terminal (``CAMKIT_PROGRESS_SECONDS``)
DEFAULT_INTERVAL = 30.0


def rate_text(count: float, seconds: float, unit: str = "images") -> str:
    """A throughput that never reads 0: ``120 images/s``, ``2.5 images/s``, ``0.31 images/s``,
    or ``40 s per image`` below one every 10 seconds."""
    if count <= 0 or seconds <= 0:
        return f"- {unit}/s"
    r = count / seconds
    if r >= 10:
        return f"{r:.0f} {unit}/s"
    if r >= 0.1:
        return f"{r:.2g} {unit}/s"
    return f"{1 / r:.0f} s per {unit.removesuffix('s')}"


class LogProgress:
    """A Progress that logs ``desc: n/total (p%), elapsed, rate, ETA`` every ``interval``
    seconds from a background thread, and a last line at close for steps that took longer."""

    def __init__(self, interval: float | None = None) -> None:
        self.interval = interval or float(os.environ.get("CAMKIT_PROGRESS_SECONDS", DEFAULT_INTERVAL))
        self.total, self.desc, self.n, self.t0 = 0, "", 0, 0.0
        self._stop: threading.Event | None = None
        self._thread: threading.Thread | None = None

    def start(self, total: int, desc: str) -> None:
        self.close()
        self.total, self.desc, self.n, self.t0 = total, desc, 0, time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(self._stop,), daemon=True)
        self._thread.start()

    def _beat(self, stop: threading.Event) -> None:
        while not stop.wait(self.interval):
            log.info(self.line())

    def line(self) -> str:
        """The state now, as one log line."""
        spent = time.monotonic() - self.t0
        done = f"{self.n}/{self.total} ({100 * self.n / self.total:.0f}%)" if self.total else str(self.n)
        eta = ""
        if 0 < self.n < self.total:
            eta = f", about {spent * (self.total - self.n) / self.n:.0f} s left"
        rate = f", {rate_text(self.n, spent, 'steps')}" if self.n else ""
        return f"{self.desc}: {done} after {spent:.0f} s{rate}{eta}"

    def advance(self, n: int = 1, **info: Any) -> None:
        self.n += n

    def close(self) -> None:
        if self._stop is None:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if time.monotonic() - self.t0 >= self.interval:
            log.info(self.line())
        self._stop = self._thread = None


class TqdmProgress:
    """A Progress that draws a tqdm bar on stderr when it is a terminal."""

    def __init__(self, disable: bool | None = None) -> None:
        self.disable = disable
        self.bar: Any = None

    def start(self, total: int, desc: str) -> None:
        from tqdm.auto import tqdm

        self.close()
        self.bar = tqdm(total=total, desc=desc, leave=False, disable=self.disable, dynamic_ncols=True)

    def advance(self, n: int = 1, **info: Any) -> None:
        if self.bar is not None:
            self.bar.update(n)
            if info:
                self.bar.set_postfix(info, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def cli_progress() -> TqdmProgress | LogProgress:
    """A bar on a terminal, steady log lines otherwise."""
    return TqdmProgress() if sys.stderr.isatty() else LogProgress()
