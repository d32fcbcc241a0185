"""Negative trust anchors (RFC 7646, pure): names below which validation is skipped until an
expiry, and the periodic re-check that drops one early once its zone validates again.

Defaults follow BIND's `rndc nta`: a one-hour lifetime, at most one week, re-checked every
five minutes (nta-lifetime, nta-recheck); a forced NTA is never re-checked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import dns.name

from sigchain.core.validate.verdict import Status
from sigchain.errors import InputError

DEFAULT_LIFETIME = 3600
MAX_LIFETIME = 7 * 24 * 3600
RECHECK = 300


@dataclass(frozen=True)
class NegativeAnchor:
    name: dns.name.Name
    added: int
    expiry: int
    next_check: int | None  # None: forced, never re-checked
    recheck: int = RECHECK  # seconds between its re-checks (nta-recheck)


@dataclass(frozen=True)
class NegativeAnchors:
    """The set of NTAs, by name; every operation returns a new set."""

    entries: tuple[NegativeAnchor, ...] = ()

    def add(self, name: dns.name.Name, now: int, lifetime: int = DEFAULT_LIFETIME,
            recheck: int = RECHECK, forced: bool = False) -> NegativeAnchors:
        """Add or renew the NTA for `name` (RFC 7646 §2: it must end; at most a week)."""
        if not 0 < lifetime <= MAX_LIFETIME:
            raise InputError(f"negative trust anchor {name}: lifetime {lifetime} s is not between "
                             f"1 s and one week ({MAX_LIFETIME} s)")
        entry = NegativeAnchor(name, now, now + lifetime, None if forced else now + recheck,
                               recheck)
        return NegativeAnchors(tuple(e for e in self.entries if e.name != name) + (entry,))

    def remove(self, name: dns.name.Name) -> NegativeAnchors:
        return NegativeAnchors(tuple(e for e in self.entries if e.name != name))

    def covering(self, name: dns.name.Name, now: int) -> NegativeAnchor | None:
        """The deepest unexpired NTA at or above `name`."""
        live = [e for e in self.entries if e.expiry > now and name.is_subdomain(e.name)]
        return max(live, key=lambda e: len(e.name), default=None)

    def is_negative(self, name: dns.name.Name, now: int) -> bool:
        return self.covering(name, now) is not None

    def expire(self, now: int) -> tuple[NegativeAnchors, tuple[NegativeAnchor, ...]]:
        """Drop the NTAs whose lifetime is over; (the rest, those dropped)."""
        gone = tuple(e for e in self.entries if e.expiry <= now)
        return NegativeAnchors(tuple(e for e in self.entries if e.expiry > now)), gone

    def due(self, now: int) -> tuple[dns.name.Name, ...]:
        """Names whose re-check is due: ask whether they validate without the NTA."""
        return tuple(e.name for e in self.entries
                     if e.expiry > now and e.next_check is not None and e.next_check <= now)

    def next_event(self) -> int | None:
        """The next time something is due: a re-check or an expiry."""
        times = [e.expiry for e in self.entries] + [e.next_check for e in self.entries
                                                     if e.next_check is not None]
        return min(times, default=None)

    def rechecked(self, name: dns.name.Name, status: Status,
                  now: int) -> tuple[NegativeAnchors, bool]:
        """The re-check's verdict for `name` (validated as if it had no NTA): secure or
        insecure means the zone no longer fails, so the NTA goes (RFC 7646 §2, as BIND's
        nta-recheck); bogus or indeterminate keeps it until the next re-check, its own
        interval later.
        Returns (the new set, whether an NTA was dropped)."""
        if status in (Status.SECURE, Status.INSECURE):
            return self.remove(name), any(e.name == name for e in self.entries)
        entries = tuple(replace(e, next_check=now + e.recheck)
                        if e.name == name and e.next_check is not None else e for e in self.entries)
        return NegativeAnchors(entries), False

    def recheck(self, check: Callable[[dns.name.Name], Status], now: int) -> tuple[
            NegativeAnchors, tuple[NegativeAnchor, ...], tuple[tuple[dns.name.Name, Status], ...]]:
        """Expire the NTAs past their lifetime, then re-check those due (`check`: the status
        the name validates to without its NTA). Returns (the new set, the NTAs expired, the
        names whose NTA the re-check dropped with the status they validated to)."""
        ntas, expired = self.expire(now)
        dropped = []
        for name in ntas.due(now):
            status = check(name)
            ntas, gone = ntas.rechecked(name, status, now)
            if gone:
                dropped.append((name, status))
        return ntas, expired, tuple(dropped)
