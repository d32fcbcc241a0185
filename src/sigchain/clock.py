"""The only place that reads wall-clock time. Everything else takes `now` as a parameter."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> int:
        """Seconds since the epoch."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back: for deadlines, not for dates."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait `seconds` (a fake clock moves its monotonic time instead)."""
        ...


class SystemClock:
    def now(self) -> int:
        return int(time.time())

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class FakeClock:
    """A clock tests move by hand; `sleep` returns at once and moves the monotonic time."""

    def __init__(self, start: int = 1_700_000_000):
        self._now = start
        self._monotonic = 0.0

    def now(self) -> int:
        return self._now

    def monotonic(self) -> float:
        return self._monotonic

    def sleep(self, seconds: float) -> None:
        self._monotonic += seconds

    def advance(self, seconds: int) -> None:
        self._now += seconds
        self._monotonic += seconds

    def set(self, value: int) -> None:
        self._now = value


SYSTEM = SystemClock()
