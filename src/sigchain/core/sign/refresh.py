"""Signature refresh planning (pure): which RRsets' signatures are due at `now` under the
policy's signatures-refresh, in bounded batches, earliest expiration first; the window they
are re-signed in spreads their new expirations over signatures-jitter, so a zone signed at
one moment never comes due all at once again. A heap with lazy deletion keeps each call's
cost to the batch, not the zone."""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass

from dns.rdatatype import RdataType

from sigchain.core.dnssec.rrsig import SigWindow
from sigchain.core.sign.difference import Diff
from sigchain.core.sign.rrsigs import covered_type, expiration_of
from sigchain.core.zone.records import Key

INCEPTION_SKEW = 3600  # inception an hour back, for validators whose clocks are behind (BIND)


@dataclass(frozen=True)
class RefreshPolicy:
    """dnssec-policy's signatures-validity, -refresh and -jitter (seconds), the most RRsets
    one refresh call re-signs, and the least time between two calls that are not cut short
    by a full batch (so that signatures coming due one by one are re-signed together)."""

    validity: int
    refresh: int
    jitter: int = 0
    batch: int = 1000
    interval: int = 3600

    def __post_init__(self) -> None:
        if not 0 <= self.jitter < self.validity or not 0 < self.refresh < self.validity - self.jitter:
            raise ValueError("signatures-refresh must be positive and below validity - jitter")
        if self.interval >= self.refresh:
            raise ValueError("the refresh interval must be shorter than signatures-refresh")
        if self.batch < 1:
            raise ValueError("a refresh batch holds at least one RRset")


@dataclass(frozen=True)
class RefreshPlan:
    """What to re-sign now (owner, type covered), the window to sign it in, and when to plan
    again (None: nothing is signed)."""

    due: tuple[tuple[Key, int], ...]
    window: SigWindow
    wake: int | None


class RefreshQueue:
    """Every RRSIG RRset's earliest expiration, in a heap; `track` follows each change."""

    def __init__(self, expirations: Iterable[tuple[Key, int, int]]) -> None:
        self.current: dict[tuple[Key, int], int] = {}
        for key, rdtype, exp in expirations:
            self.current[(key, rdtype)] = exp
        self.heap = [(exp, key, rdtype) for (key, rdtype), exp in self.current.items()]
        heapq.heapify(self.heap)

    def __len__(self) -> int:
        return len(self.current)

    def set(self, key: Key, rdtype: int, expiration: int | None) -> None:
        if expiration is None:
            self.current.pop((key, rdtype), None)
            return
        if self.current.get((key, rdtype)) == expiration:
            return  # its entry is in the heap already
        self.current[(key, rdtype)] = expiration
        heapq.heappush(self.heap, (expiration, key, rdtype))

    def track(self, diff: Diff) -> None:
        """Follow a change of the zone: its RRSIGs removed and added."""
        for r in diff.removed:
            if r.rdtype == RdataType.RRSIG:
                self.set(r.key, covered_type(r.wires[0]), None)
        for r in diff.added:
            if r.rdtype == RdataType.RRSIG:
                self.set(r.key, covered_type(r.wires[0]), expiration_of(r))

    def _top(self) -> tuple[int, Key, int] | None:
        """The live entry expiring first (stale heap entries dropped on the way)."""
        heap = self.heap
        while heap:
            exp, key, rdtype = heap[0]
            if self.current.get((key, rdtype)) == exp:
                return heap[0]
            heapq.heappop(heap)
        return None

    def plan(self, now: int, policy: RefreshPolicy, seed: bytes = b"") -> RefreshPlan:
        """Up to `policy.batch` RRsets whose signatures expire within signatures-refresh of
        `now`, earliest first; wake again at once when more are due, else when the next
        one comes due (`policy.interval` from now at the earliest)."""
        window = SigWindow(now - INCEPTION_SKEW, policy.validity + INCEPTION_SKEW,
                           policy.jitter, seed)
        due: list[tuple[Key, int]] = []
        taken: list[tuple[int, Key, int]] = []
        while len(due) < policy.batch:
            top = self._top()
            if top is None or top[0] - policy.refresh > now:
                break
            entry = heapq.heappop(self.heap)
            if taken and entry == taken[-1]:
                continue  # a second entry for the same expiration (removed, re-added): dropped
            taken.append(entry)
            due.append((top[1], top[2]))
        nxt = self._top()  # the first one not taken
        for entry in taken:  # still live until re-signed: `track` replaces them
            heapq.heappush(self.heap, entry)
        if nxt is None:
            wake = None
        elif len(due) >= policy.batch:
            wake = max(now, nxt[0] - policy.refresh)  # more due: at once
        else:
            wake = max(now + policy.interval, nxt[0] - policy.refresh)
        return RefreshPlan(tuple(due), window, wake)
