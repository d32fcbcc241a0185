"""The only place that reads wall-clock time. Everything else takes `now` as a parameter."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> int:
        """Seconds since the epoch."""
        ...


class SystemClock:
    def now(self) -> int:
        return int(time.time())


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, start: int = 1_700_000_000):
        self._now = start

    def now(self) -> int:
        return self._now

    def advance(self, seconds: int) -> None:
        self._now += seconds

    def set(self, value: int) -> None:
        self._now = value


SYSTEM = SystemClock()
