"""tqdm-backed progress bars for the CLI (the library itself never draws)."""

from __future__ import annotations

from typing import Any

from tqdm.auto import tqdm


class TqdmProgress:
    """A Progress that draws a tqdm bar on stderr when it is a terminal."""

    def __init__(self, disable: bool | None = None) -> None:
        self.disable = disable
        self.bar: Any = None

    def start(self, total: int, desc: str) -> None:
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
