"""Progress lines for long work: rows, rows/s and bytes every few seconds.

A task log that says nothing for minutes looks hung; one line every
`MOZART_PROGRESS_SECONDS` (default 5) says it is not, and how fast it goes.
"""

from __future__ import annotations

import logging
import os
import time

DEFAULT_EVERY_SECONDS = 5.0


def _every_seconds() -> float:
    return float(os.environ.get("MOZART_PROGRESS_SECONDS", DEFAULT_EVERY_SECONDS))


def human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


class Progress:
    """Counts rows and bytes of one piece of work and logs them now and then."""

    def __init__(
        self,
        what: str,
        logger: logging.Logger,
        every_seconds: float | None = None,
    ) -> None:
        self.what = what
        self.rows = 0
        self.bytes = 0
        self._log = logger
        self._every = _every_seconds() if every_seconds is None else every_seconds
        self._started = time.monotonic()
        self._last = self._started

    @property
    def seconds(self) -> float:
        return time.monotonic() - self._started

    @property
    def rows_per_second(self) -> float:
        return self.rows / max(self.seconds, 1e-9)

    def add(self, rows: int, nbytes: int) -> None:
        self.rows += rows
        self.bytes += nbytes
        now = time.monotonic()
        if now - self._last >= self._every:
            self._last = now
            self._log.info("%s: %s so far", self.what, self.line())

    def line(self) -> str:
        return (
            f"{self.rows:,} rows, {self.rows_per_second:,.0f} rows/s, "
            f"{human_bytes(self.bytes)} in memory, {self.seconds:.1f} s"
        )
