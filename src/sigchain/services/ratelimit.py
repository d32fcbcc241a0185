"""Response-rate limiting as the authoritative server runs it: one `RateLimiter` per process
answering UDP, their counts summed over every process (memory shared across fork, see
`edge.udpworkers.SharedCounters`), and the log lines that report them."""

from __future__ import annotations

import logging

from sigchain.core.serve.index import ZoneSet
from sigchain.core.serve.rrl import (
    SEND,
    SLIP,
    STATS,
    RateLimit,
    RateLimiter,
    RrlStats,
    network,
    response_key,
    slipped,
)
from sigchain.edge.udpworkers import SharedCounters

log = logging.getLogger("sigchain.rrl")

# How often the dropped/slipped totals are logged while they grow.
REPORT_SECONDS = 10


class RateLimiting:
    """The server's RRL: `apply` in whichever process answers, `totals` in the main one."""

    def __init__(self, limit: RateLimit, workers: bool):
        self.limiter = RateLimiter(limit)
        # A slot per UDP worker, given in `in_worker`; the main process counts in its own.
        self.counters = SharedCounters(len(STATS)) if workers else None
        self._limited_logged = 0
        self._reported = (0, 0, 0.0)  # dropped, slipped, when logged

    def in_worker(self, counters: memoryview) -> None:
        """In a new UDP worker: count in `counters`, where the main process sums them."""
        self.limiter.stats = RrlStats(counters)

    def apply(self, zones: ZoneSet, response: bytes, client: str, now: int) -> bytes | None:
        """`response`, its truncated stand-in (slip), or None (dropped), as RRL decides."""
        key = response_key(response)
        if key is None:
            return response
        if key[2]:  # NXDOMAIN and errors count per zone, whatever the (random) name
            zone = zones.find_key(key[0], key[1])
            key = (zone.okey if zone is not None else b"", 0, key[2])
        limiter = self.limiter
        verdict = limiter.decide(client, key, now)
        if verdict == SEND:
            return response
        if limiter.stats["limited"] != self._limited_logged:
            self._limited_logged = limiter.stats["limited"]
            log.info("rate limit: responses to %s limited (%d dropped, %d slipped so far)",
                     network(client, limiter.limit), limiter.stats["dropped"],
                     limiter.stats["slipped"])
        return slipped(response) if verdict == SLIP else None

    def totals(self) -> dict[str, int]:
        """The counts of every process that answered UDP."""
        totals = self.limiter.stats.as_dict()
        if self.counters is not None:
            for name, n in zip(STATS, self.counters.totals(), strict=True):
                totals[name] += n
        return totals

    def report(self, now: float) -> None:
        """Log the dropped/slipped totals when they grew, at most every REPORT_SECONDS."""
        totals = self.totals()
        dropped, slips, when = self._reported
        if now - when < REPORT_SECONDS or (totals["dropped"], totals["slipped"]) == (dropped, slips):
            return
        self._reported = (totals["dropped"], totals["slipped"], now)
        log.info("rate limit: %d answers dropped, %d slipped so far (all UDP processes)",
                 totals["dropped"], totals["slipped"])

    def final(self) -> None:
        totals = self.totals()
        log.info("rate limit: %d answers sent, %d dropped, %d slipped (all UDP processes)",
                 totals["send"], totals["dropped"], totals["slipped"])
