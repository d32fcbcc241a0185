"""The resolver's client side (a part of services.resolver.ResolverService): one client
query read and answered on the event loop's thread — from the bytes of a query answered this
second, from the cache, from the kept NSEC/NSEC3 records (in slices of the loop:
services.loopslices), or handed to the resolution thread and answered when it is done."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import dns.rcode

from sigchain.core.resolve import ede as edes
from sigchain.core.resolve.cache import Answer
from sigchain.core.resolve.fastpath import plain_question
from sigchain.core.resolve.respond import (
    ClientQuery,
    Unanswerable,
    chaos_reply,
    error,
    read_query,
    refusal,
    render,
)
from sigchain.core.validate.verdict import Evidence
from sigchain.services.resolverthread import unanswered

log = logging.getLogger("sigchain.resolver")
T = TypeVar("T")
MAX_FAST = 20_000  # rendered responses (≤ 1232 bytes each: ≤ ~25 MB) and client ACL results kept
TC_BYTE = 0x02  # TC in the header's third byte


class ClientSide:
    """ResolverService's methods for client queries (they use its cache, lock, metrics,
    slices and resolution thread)."""

    def allowed(self, client: str) -> bool:
        """Whether a client address is in --allow (an IPv4-mapped IPv6 address as IPv4)."""
        try:
            address = ipaddress.ip_address(client.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address.version == n.version and address in n for n in self.config.allow)

    def handle(self, wire: bytes, tcp: bool,
               client: str) -> bytes | None | Awaitable[bytes | None] | concurrent.futures.Future[bytes | None]:
        """Answer one client query: at once from the cache, or later (a future): from the kept
        NSEC/NSEC3 records in a slice of the event loop (at once when called with no loop
        running), else once resolved. Runs on the event loop's thread."""
        started = self.clock.monotonic()
        now = self.clock.now()
        allowed = self._acl.get(client)
        if allowed:  # the fast path: this very query answered this second (its ID aside)
            kept = self._exact.get(wire[2:])
            if kept is not None and kept[0] == now:
                rcode = kept[1][1] & 0xF  # the response's header, after its ID
                self.metrics.loop.answer(rcode, True, self.clock.monotonic() - started)
                if rcode == dns.rcode.SERVFAIL:
                    self._count_servfail(kept[2])
                return wire[:2] + kept[1]
        elif allowed is None:
            if len(self._acl) > MAX_FAST:
                self._acl.clear()
            allowed = self._acl[client] = self.allowed(client)
        try:
            q = read_query(wire, tcp)
        except Unanswerable as bad:
            out = bad
            if not allowed:  # REFUSED whatever else is wrong with the query (as Unbound)
                out = Unanswerable(refusal(wire, [self._prohibited(client)]))
            elif bad.chaos is not None and self._about[bad.chaos[1]]:
                out = Unanswerable(chaos_reply(bad.chaos[0], self._about[bad.chaos[1]]))
            if out.rcode is not None:  # the response's (None: none is sent)
                self.metrics.loop.other(out.rcode)
            return out.wire
        if not allowed:
            self.metrics.loop.other(dns.rcode.REFUSED)
            return error(q.message, dns.rcode.REFUSED, [self._prohibited(client)])
        if not q.rd:  # as Unbound's "allow": recursion clients only
            self.metrics.loop.other(dns.rcode.REFUSED)
            return error(q.message, dns.rcode.REFUSED,
                         [(edes.PROHIBITED, "recursion not desired: this is a resolver")])
        with self.lock:
            entry = self.cache.answer(q.qname, q.qtype, now)
            if entry is not None:
                return self._respond(q, entry, now, True, started)
            kept = self.cache.denials(q.qname, now)
        offers = None if kept is None else self._try(lambda: self._offers(q.qname, q.qtype, now, kept))
        answer: concurrent.futures.Future[bytes | None] = concurrent.futures.Future()
        if offers is not None:
            # RFC 8198 on this loop (no thread hand-off for what asks no one), judged in
            # slices between its looks at the sockets: a flood of such names holds hits up
            # for one slice at most, not for the whole backlog
            work = functools.partial(self._deny, q, started, answer, offers, now, self.generation)
            if not _running_loop():  # called directly, no event loop: made at once
                work()
                if answer.done():
                    return answer.result()  # the answer; None: dropped
            elif not self.slices.add(work, lambda: unanswered(answer)):
                self._dropped(q, "queue full (answers from kept records)")
                return None
        elif not self._hand(q, started, answer):
            return None
        return asyncio.wrap_future(answer) if tcp else answer  # over UDP, sent as it completes

    def _deny(self, q: ClientQuery, started: float, answer: concurrent.futures.Future[bytes | None],
              offers: tuple[list[Evidence], int], asked: int, generation: int) -> None:
        """(In a slice of the client loop) the answer from the kept NSEC/NSEC3 records
        `offers` found as the query came in (`asked`, in `generation`; looked for again if
        either has changed since), or from the cache should the question have been answered
        meanwhile; else the query goes to the resolution thread."""
        if answer.done():  # a TCP client gone meanwhile
            return
        try:
            now = self.clock.now()
            with self.lock:
                entry = self.cache.answer(q.qname, q.qtype, now)
                if entry is not None:  # a retransmission, or another client's same question
                    wire = self._respond(q, entry, now, True, started)
            if entry is None:
                current = now == asked and generation == self.generation  # else looked for afresh
                entry = self._try(lambda: self._denied(q.qname, q.qtype, now, offers if current else None))
                if entry is None:
                    self._hand(q, started, answer)
                    return
                with self.lock:
                    wire = self._respond(q, entry, now, False, started)
        except Exception as exc:  # noqa: BLE001 (the listener logs it; a TCP client is let go)
            answer.set_exception(exc)
            return
        answer.set_result(wire)  # sent by the listener's callback, on this thread

    def _try(self, work: Callable[[], T]) -> T | None:
        """`work()`, or None when it raised (logged): the resolution thread then answers."""
        try:
            return work()
        except Exception:  # noqa: BLE001
            log.exception("answer from kept NSEC/NSEC3 records")
            return None

    def _hand(self, q: ClientQuery, started: float, answer: concurrent.futures.Future[bytes | None]) -> bool:
        """The query to the resolution thread; False (dropped, `answer` completed with None)
        when it is stopping."""
        if self.resolutions.hand(self._start, q, started, answer):
            return True
        self._dropped(q, "stopping")
        unanswered(answer)
        return False

    def _start(self, q: ClientQuery, started: float, answer: concurrent.futures.Future[bytes | None]) -> None:
        """(On the resolution thread) resolve a client's question; its answer sets `answer`
        (None: dropped unanswered when too many are queued; the client asks again)."""
        if not self.resolutions.start((q.qname, q.qtype), lambda: self._answer(q, started, answer),
                                      lambda: unanswered(answer)):
            self._dropped(q, "stopping" if self.resolutions.stopping else "queue full")
            unanswered(answer)

    def _dropped(self, q: ClientQuery, reason: str) -> None:
        with self.lock:
            self.stats["dropped"] += 1
        self.metrics.count("dropped", reason)
        log.debug("%d questions (%d clients) queued: %s %s dropped (%s)",
                  *self.resolutions.waiting, q.qname, q.qtype, reason)

    async def _answer(self, q: ClientQuery, started: float,
                      answer: concurrent.futures.Future[bytes | None]) -> None:
        if not answer.set_running_or_notify_cancel():  # a TCP client gone meanwhile
            return
        try:  # cancelled (stopping): `_start`'s abandoned callback answers None
            generation = self.generation
            entry = await self._shared(q.qname, q.qtype)
            now = self.clock.now()
            with self.lock:
                wire = self._render(q, entry, now, fast=generation == self.generation)
                self.metrics.threads.answer(wire[3] & 0xF, False, self.clock.monotonic() - started)
        except Exception as exc:  # noqa: BLE001 (the listener logs it; the client gets nothing)
            answer.set_exception(exc)
            return
        answer.set_result(wire)

    @staticmethod
    def _prohibited(client: str) -> edes.Ede:
        return edes.PROHIBITED, f"{client} may not query this resolver"

    def _respond(self, q: ClientQuery, entry: Answer, now: int, hit: bool, started: float) -> bytes:
        """The response to a query answered on the event loop, counted (with the lock held)."""
        out = self._render(q, entry, now)
        self.metrics.loop.answer(out[3] & 0xF, hit, self.clock.monotonic() - started)
        return out

    def _render(self, q: ClientQuery, entry: Answer, now: int, fast: bool = True) -> bytes:
        """The response wire, pre-rendered per (flags the client set) and second when it is
        not truncated (one truncated for a small UDP buffer is no answer over TCP: made for
        each such client); kept for the fast path under the query's bytes when it is a plain
        UDP query, and `fast` (with the lock held)."""
        key = q.render_key()
        kept = entry.wire.get(key)
        if kept is None or kept[0] != now or len(kept[1]) > q.limit:
            wire = render(q, entry, now)
            if not wire[2] & TC_BYTE:
                self.cache.rendered(q.qname, q.qtype, entry, key, (now, wire))
        else:
            wire = q.with_question(kept[1])
        if fast and not q.tcp and not wire[2] & TC_BYTE and plain_question(q.wire) is not None:
            if len(self._exact) > MAX_FAST:
                self._exact.clear()
            self._exact[q.wire[2:]] = (now, wire[2:], entry)
        if wire[3] & 0xF == dns.rcode.SERVFAIL:
            self._count_servfail(entry)
        return q.wire[:2] + wire[2:]

    def _count_servfail(self, entry: Answer) -> None:
        self.metrics.count("servfail", str(entry.ede[0][0]) if entry.ede else "none",
                           entry.zone or "-")


def _running_loop() -> bool:
    """Whether this thread runs an event loop (the client loop; not a direct caller)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
