"""Rate limits on log lines a client can cause (one per NOTIFY, refused transfer, rejected
TCP connection): the first few of a kind per interval, then one summary with the count."""

from __future__ import annotations

import logging

LOG_FIRST = 10  # lines of one kind logged per interval
LOG_INTERVAL = 60.0  # seconds


class LogThrottle(logging.Filter):
    """A filter for a logger: lines of one kind (the same message template) pass `first`
    times per `interval` seconds; the rest are counted and summed up in one line when the
    interval is over (`flush`, or the next line of that kind). Time is the records' own."""

    def __init__(self, logger: logging.Logger, first: int = LOG_FIRST,
                 interval: float = LOG_INTERVAL):
        super().__init__()
        self.logger = logger
        self.first = first
        self.interval = interval
        self._windows: dict[str, list[float]] = {}  # template → [start, lines, level]

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "throttle_summary", False):
            return True
        key = str(record.msg)
        window = self._windows.get(key)
        if window is None or record.created - window[0] >= self.interval:
            if window is not None:
                self._summarise(key, window)
            self._windows[key] = [record.created, 1, record.levelno]
            return True
        window[1] += 1
        return window[1] <= self.first

    def _summarise(self, key: str, window: list[float]) -> None:
        dropped = int(window[1]) - self.first
        if dropped > 0:
            self.logger.log(int(window[2]), "%d more line(s) like %r not logged in %g s",
                            dropped, key, self.interval, extra={"throttle_summary": True})

    def flush(self, now: float) -> None:
        """Sum up the intervals over by `now` (seconds since the epoch, as record times)."""
        for key, window in list(self._windows.items()):
            if now - window[0] >= self.interval:
                self._summarise(key, window)
                del self._windows[key]

    @property
    def suppressed(self) -> int:
        """Lines not logged in the intervals still open."""
        return sum(max(0, int(w[1]) - self.first) for w in self._windows.values())


def throttle(names: tuple[str, ...], first: int = LOG_FIRST,
             interval: float = LOG_INTERVAL) -> list[LogThrottle]:
    """Install a `LogThrottle` on each named logger (replacing one installed before)."""
    out = []
    for name in names:
        logger = logging.getLogger(name)
        for f in [f for f in logger.filters if isinstance(f, LogThrottle)]:
            logger.removeFilter(f)
        t = LogThrottle(logger, first, interval)
        logger.addFilter(t)
        out.append(t)
    return out


def flush_all(now: float = float("inf")) -> None:
    """Sum up every installed throttle's intervals over by `now` (default: all of them, for
    a process about to end)."""
    loggers = [logging.getLogger(n) for n in list(logging.root.manager.loggerDict)]
    for logger in loggers:
        for f in logger.filters:
            if isinstance(f, LogThrottle):
                f.flush(now)
