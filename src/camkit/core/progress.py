"""Progress reporting hooks. The library only calls these; the CLI draws the bars."""

from __future__ import annotations

from typing import Any, Protocol


class Progress(Protocol):
    """Receives progress from long loops (training epochs, extraction)."""

    def start(self, total: int, desc: str) -> None: ...
    def advance(self, n: int = 1, **info: Any) -> None: ...
    def close(self) -> None: ...


class NoProgress:
    """The library default: report nothing."""

    def start(self, total: int, desc: str) -> None:
        pass

    def advance(self, n: int = 1, **info: Any) -> None:
        pass

    def close(self) -> None:
        pass
