"""The resolver's upstream side: one client question resolved by the core resolution machine
over the network, its queries answered from the cache where it can, and what the replies
taught (answers, delegations) kept for the next question."""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import dns.flags
import dns.name
import dns.rcode
from dns.rdatatype import RdataType

from sigchain.clock import SYSTEM, Clock
from sigchain.core.resolve.cache import Cache
from sigchain.core.resolve.exchange import Outcome, Query, Reply, ResolutionLimits, rcode_of
from sigchain.core.resolve.resolution import Resolution
from sigchain.core.resolve.selection import Selection
from sigchain.core.validate.anchors import Server
from sigchain.core.validate.verdict import Question
from sigchain.edge import transport

BUDGET = 8.0  # seconds for one client question (dig waits 5 s and retries twice)
SERVER_TIMEOUT = 1.5
DELEGATION_TTL = 3600  # when the referral's NS RRset did not say (capped by the cache)


@dataclass(frozen=True)
class Fetched:
    """A resolution's outcome and the (name, type) of every query it made: what to forget
    from the cache when the outcome turns out bogus, so that a retry fetches afresh."""

    outcome: Outcome
    used: tuple[tuple[dns.name.Name, int], ...]
    seconds: float = 0.0  # how long it took


@dataclass
class Upstream:
    """Resolves questions iteratively from `hints`, sharing `cache` (under `lock`)."""

    hints: tuple[Server, ...]
    cache: Cache
    lock: threading.Lock
    limits: ResolutionLimits = field(default_factory=ResolutionLimits)
    budget: float = BUDGET
    server_timeout: float = SERVER_TIMEOUT
    minimise: bool = True  # QNAME minimisation (RFC 9156), as Unbound does by default
    stats: Counter[str] = field(default_factory=Counter)  # queries, cached, ignored
    on_error: Callable[[str, str], None] = lambda server, error: None
    clock: Clock = SYSTEM
    # each server's measured RTT and back-off, shared by all questions (under `lock`)
    selection: Selection = field(default_factory=Selection)

    def __post_init__(self) -> None:
        self.selection.max_timeout = self.server_timeout

    def resolve(self, question: Question, anchor_names: set[dns.name.Name], now: int,
                forwarders: tuple[Server, ...] = ()) -> Fetched:
        """`resolving`, with blocking sockets."""
        return transport.drive(self.resolving(question, anchor_names, now, forwarders))

    def resolving(self, question: Question, anchor_names: set[dns.name.Name], now: int,
                  forwarders: tuple[Server, ...] = (), spent: Fetched | None = None
                  ) -> transport.Asking[Fetched]:
        """Iteratively from the hints, or through `forwarders` (RD=1, CD=1: validated here).
        `spent`: an earlier resolution for the same client question, whose queries and time
        count against this one's limits (one client question, one budget)."""
        limits, budget = self.limits, self.budget
        if spent is not None:
            limits = dataclasses.replace(limits, max_queries=max(
                1, limits.max_queries - len(spent.outcome.exchanges)))
            budget = max(0.0, budget - spent.seconds)
        if forwarders:
            resolution = Resolution(question, anchor_names, server=forwarders[0], cd=True,
                                    fallbacks=forwarders[1:], limits=limits)
        else:
            with self.lock:
                known = self.cache.delegations(question.name, now)
            resolution = Resolution(question, anchor_names, hints=self.hints, limits=limits,
                                    known=known, minimise=self.minimise)
        started = self.clock.monotonic()
        net = transport.Transport(budget, self.server_timeout, self.clock,
                                  selection=self.selection, lock=self.lock)
        used: list[tuple[dns.name.Name, int]] = []
        ns_ttl: dict[dns.name.Name, int] = {}

        def ask(query: Query) -> transport.Asking[tuple[Reply | None, str]]:
            """From the cache if kept there; else over the network, what it teaches kept."""
            used.append((query.qname, query.rdtype))
            with self.lock:
                cached = self.cache.message(query.qname, query.rdtype, now)
                if cached is not None:
                    self.stats["cached"] += 1
            if cached is not None:
                return Reply(query.servers[0], cached), ""
            reply, error = yield from net.exchanging(query)
            if reply is not None:
                self._learn(query, reply, ns_ttl, now)
            return reply, error

        outcome = yield from net.running(resolution, ask)
        with self.lock:
            self.stats["queries"] += net.queries
            self.stats["ignored"] += net.ignored
        for server, why in net.unanswered.items():
            self.on_error(str(server), why)
        with self.lock:
            for zone, servers in resolution.zones.items():
                if zone in ns_ttl:
                    self.cache.store_delegation(zone, servers.servers, ns_ttl[zone], now)
        return Fetched(outcome, tuple(used), self.clock.monotonic() - started)

    def probing(self, server: Server, zone: dns.name.Name) -> transport.Asking[str]:
        """Whether a forwarder passes DNSSEC records on: asked for `zone`'s DNSKEY RRset with
        DO=1 and CD=1, it must answer with the keys and their RRSIGs and echo DO. Returns
        what is wrong ("strips DNSSEC records", …), or "" when nothing is — nor when it
        refuses or fails the probe: that says nothing about what it does to DNSSEC records
        (a forwarder for one private zone may well refuse the root's keys)."""
        query = Query(zone, RdataType.DNSKEY, (server,), rd=True, cd=True)
        try:
            reply = yield server, query.message(), self.server_timeout
        except Exception as exc:  # noqa: BLE001 (any failure: the probe has no verdict)
            return f"did not answer a DNSKEY probe ({type(exc).__name__})"
        m = reply.message
        if rcode_of(m) != dns.rcode.NOERROR:
            return ""
        if m.edns < 0 or not m.ednsflags & dns.flags.DO:
            return "ignores DO (no DNSSEC records asked for come back)"
        keys = [r for r in m.answer if r.rdtype == RdataType.DNSKEY and r.name == zone]
        sigs = [r for r in m.answer if r.rdtype == RdataType.RRSIG and r.covers == RdataType.DNSKEY]
        if not keys:
            return "strips DNSSEC records (no DNSKEY)"
        if not sigs:
            return "strips DNSSEC records (no RRSIG)"
        return ""

    def _learn(self, query: Query, reply: Reply, ns_ttl: dict[dns.name.Name, int], now: int) -> None:
        """Keep an answer (never a referral's glue or other additional data: those are used
        for this resolution only, within bailiwick); note the TTL of referrals' NS RRsets."""
        m = reply.message
        if rcode_of(m) not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            return
        zone = query.zone or dns.name.root
        kind, child = Resolution._classify(m, zone, query.qname, query.rdtype)
        if kind == "answer":
            with self.lock:
                self.cache.store_message(query.qname, query.rdtype, m, now)
        elif kind == "referral" and isinstance(child, dns.name.Name):
            ttls = [r.ttl for r in m.authority if r.rdtype == RdataType.NS and r.name == child]
            ns_ttl[child] = min(ttls, default=DELEGATION_TTL)
