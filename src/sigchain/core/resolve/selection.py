"""Server selection by measured round-trip time (pure; `now` is a monotonic reading passed in):
a smoothed RTT per server address, the timeout it implies, back-off for silent servers, the
probe of the best one when all are backed off (one probe at a time per server), and which
servers need a small EDNS buffer."""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field

from sigchain.core.resolve.exchange import EDNS_PAYLOAD, SMALL_PAYLOAD
from sigchain.core.validate.anchors import Server

UNKNOWN_RTT = (0.001, 0.032)  # seconds: a server never measured starts at random in here (BIND)
ALPHA, BETA = 0.3, 0.25  # weight of a new sample in the smoothed RTT (BIND) and its variance
AGE = 0.98  # a server passed over has its SRTT aged by this, so that it is tried again in time
MIN_TIMEOUT = 0.2  # seconds: a loaded peer may take this long even on loopback
MISSES_TO_HOLD = 2  # timeouts in a row after which a server is held down
HOLD_DOWN = (5.0, 300.0)  # first hold-down, then doubling per further miss up to this
MAX_SERVERS = 10_000  # addresses remembered (the oldest forgotten first)
SMALL_FOR = 900.0  # seconds a server stays on the small EDNS buffer (Unbound's infra-host-ttl)


@dataclass
class _Infra:
    """What is known of one server address (as an entry of Unbound's infra cache)."""

    srtt: float
    rttvar: float = 0.0
    rto: float = 0.0  # the timeout to use next; 0: not measured yet (the maximum)
    misses: int = 0  # timeouts since its last answer
    held_until: float = 0.0
    hold: float = 0.0  # the last hold-down's length
    answered_rto: float = 0.0  # the timeout its last answer implied (for probes)
    small_until: float = 0.0  # until then, ask with SMALL_PAYLOAD: larger answers are lost
    probe_until: float = 0.0  # while held down: a probe of it is under way until then


@dataclass
class Selection:
    """Which of a zone's servers to ask first and how long to wait: the lowest smoothed RTT
    among those not held down; the others age towards being tried again (exploration)."""

    max_timeout: float = 1.5
    rng: random.Random = field(default_factory=random.Random)
    _infra: dict[Server, _Infra] = field(default_factory=dict)

    def _entry(self, server: Server) -> _Infra:
        entry = self._infra.get(server)
        if entry is None:
            if len(self._infra) >= MAX_SERVERS:
                del self._infra[next(iter(self._infra))]
            entry = self._infra[server] = _Infra(self.rng.uniform(*UNKNOWN_RTT))
        return entry

    def order(self, servers: Iterable[Server], now: float) -> list[Server]:
        """`servers` not held down at `now`, the one to ask first first; those passed over
        are aged so that a slower server is measured again now and then."""
        usable = [s for s in dict.fromkeys(servers) if self._entry(s).held_until <= now]
        usable.sort(key=lambda s: self._infra[s].srtt)
        for s in usable[1:]:
            self._infra[s].srtt *= AGE
        return usable

    def probe(self, servers: Iterable[Server], now: float) -> Server | None:
        """When every one of `servers` is held down at `now`, the one whose hold-down ends
        first, to be asked anyway (with `probe_timeout`): as Unbound and BIND, a zone is never
        left with no server to ask. One probe at a time per server (as Unbound lets one query
        through to a blocked server): the server returned is marked as probed until its probe
        times out or it answers, and while it is, None. None too when some server is not held
        down (or none given)."""
        entries = [(self._entry(s).held_until, s) for s in dict.fromkeys(servers)]
        if not entries or any(until <= now for until, _ in entries):
            return None
        free = [e for e in entries if self._infra[e[1]].probe_until <= now]
        if not free:
            return None
        server = min(free, key=lambda e: e[0])[1]
        self._infra[server].probe_until = now + self.probe_timeout(server)
        return server

    def unprobe(self, server: Server) -> None:
        """The probe `probe` handed out was not sent after all: another query may probe."""
        entry = self._infra.get(server)
        if entry is not None:
            entry.probe_until = 0.0

    def probing(self, server: Server, now: float) -> bool:
        """Whether a probe of held-down `server` is under way at `now`."""
        entry = self._infra.get(server)
        return entry is not None and entry.probe_until > now

    def probe_timeout(self, server: Server) -> float:
        """A short wait for a held-down server: twice the timeout its last answer implied,
        within [MIN_TIMEOUT, max_timeout / 2]."""
        entry = self._infra.get(server)
        rto = entry.answered_rto if entry is not None else 0.0
        return max(MIN_TIMEOUT, min(self.max_timeout / 2, 2 * rto or self.max_timeout))

    def payload(self, server: Server, now: float) -> int:
        """The EDNS buffer size to advertise to `server` at `now`."""
        entry = self._infra.get(server)
        return SMALL_PAYLOAD if entry is not None and entry.small_until > now else EDNS_PAYLOAD

    def needs_small(self, server: Server, now: float) -> None:
        """`server` answered only once asked with the small buffer (the larger answer was lost
        on the path): keep asking it so, for SMALL_FOR seconds."""
        self._entry(server).small_until = now + SMALL_FOR

    def held(self, servers: Iterable[Server], now: float) -> dict[Server, float]:
        """Those of `servers` held down at `now`, with the seconds the hold-down has left."""
        out = {}
        for s in servers:
            entry = self._infra.get(s)
            if entry is not None and entry.held_until > now:
                out[s] = entry.held_until - now
        return out

    def timeout(self, server: Server) -> float:
        """How long to wait for `server`: from its RTT (srtt + 4 rttvar, RFC 6298), doubled
        per timeout since its last answer, within [MIN_TIMEOUT, max_timeout]; the maximum
        for a server never measured."""
        entry = self._infra.get(server)
        if entry is None or not entry.rto:
            return self.max_timeout
        return min(self.max_timeout, max(MIN_TIMEOUT, entry.rto))

    def srtt(self, server: Server) -> float | None:
        entry = self._infra.get(server)
        return entry.srtt if entry is not None else None

    def answered(self, server: Server, rtt: float) -> None:
        """`server` answered after `rtt` seconds: smooth it in; any back-off is over."""
        entry = self._entry(server)
        if not entry.rto:  # the first sample (RFC 6298 §2.2)
            entry.srtt, entry.rttvar = rtt, rtt / 2
        else:
            entry.rttvar = (1 - BETA) * entry.rttvar + BETA * abs(entry.srtt - rtt)
            entry.srtt = (1 - ALPHA) * entry.srtt + ALPHA * rtt
        entry.rto = entry.answered_rto = entry.srtt + 4 * entry.rttvar
        self.reached(server)

    def reached(self, server: Server) -> None:
        """`server` answered (over TCP too, which gives no RTT sample): any back-off is over."""
        entry = self._entry(server)
        entry.misses, entry.held_until, entry.hold, entry.probe_until = 0, 0.0, 0.0, 0.0

    def timed_out(self, server: Server, waited: float, now: float,
                  sent: float | None = None) -> float:
        """`server` did not answer the query `sent` at that time (default: `now` - `waited`)
        within `waited` seconds: its timeout doubles, its SRTT rises at least to the wait (it
        goes to the back of the line), and after repeated misses it is held down (HOLD_DOWN,
        doubling per further miss, as Unbound backs off). Returns the hold-down begun now, 0
        if none. A query sent before the hold-down began (one of many asking at once) is that
        same silence: its miss changes nothing."""
        entry = self._entry(server)
        if entry.hold and (now - waited if sent is None else sent) < entry.held_until - entry.hold:
            return 0.0
        entry.misses += 1
        entry.rto = min(self.max_timeout, max(entry.rto, waited) * 2)
        entry.srtt = max(entry.srtt * 2, waited, entry.rto)
        if entry.misses < MISSES_TO_HOLD:
            return 0.0
        first, cap = HOLD_DOWN
        entry.hold = min(cap, entry.hold * 2) if entry.hold else first
        entry.held_until = now + entry.hold
        return entry.hold
