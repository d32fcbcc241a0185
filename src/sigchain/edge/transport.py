"""DNS queries on the wire for the resolver side: UDP with EDNS0 (DO=1, 1232-byte buffer, as
`core.resolve.exchange.Query.message` builds them), TCP when the reply is truncated (RFC 7766 §5),
and the next server when one does not answer in time (for a resolver, once more with a
512-byte buffer when none did: the fallback for paths that lose larger answers).

Hardened as RFC 5452 asks: each query goes out on its own connected UDP socket (a fresh random
source port; the kernel passes on only datagrams from the server's address and port, and
reports ICMP port unreachable, so a refusing server fails at once, as with delv and Unbound's
`udp-connect`), and a datagram that is not the reply to the query (ID, opcode, question, or
malformed) is ignored and counted while the wait for the real one goes on. One `Transport`
serves one trace: it holds the trace's time budget and remembers the servers that did not
answer, which are then skipped for the rest of the run.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Awaitable, Callable, Generator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, TypeVar

import dns.asyncquery
import dns.exception
import dns.flags
import dns.inet
import dns.message
import dns.query

from sigchain.clock import SYSTEM, Clock
from sigchain.core.resolve.exchange import (
    EDNS_PAYLOAD,
    SMALL_PAYLOAD,
    Outcome,
    Outgoing,
    Query,
    Reply,
    query_wire,
)
from sigchain.core.resolve.replywire import read_reply
from sigchain.core.resolve.resolution import Resolution
from sigchain.core.resolve.selection import Selection
from sigchain.core.validate.anchors import Server

SERVER_TIMEOUT = 2.0  # seconds per server and attempt
DEFAULT_BUDGET = 30.0  # seconds for a whole trace
MAX_DATAGRAM = 65535
BATCH = 16  # datagrams read from one query's socket per wake-up of an event loop
# this host out of sockets, buffers or memory: no fault of the server asked, whose standing in
# the selection is left as it was (two such errors would hold a healthy server down)
LOCAL_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class NoReply(TimeoutError):
    """No reply in time; `ignored` datagrams came that were not it."""

    def __init__(self, timeout: float, ignored: int):
        super().__init__(f"no reply within {timeout:g} s")
        self.ignored = ignored


class TcpFailed(dns.exception.DNSException):
    """The retry over TCP after a truncated UDP reply failed (the server did answer)."""


def describe(exc: BaseException) -> str:
    """What went wrong with an exchange, in a few words (for reports and logs)."""
    if isinstance(exc, (dns.exception.Timeout, TimeoutError)):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


def _from_server(source: object, server: Server) -> bool:
    """Whether a datagram's source (address, port, …) is the server queried."""
    if not isinstance(source, tuple) or len(source) < 2:
        return False
    if source[0] == server.host:  # the same text (from the kernel: a valid address)
        return source[1] == server.port
    try:
        same = dns.inet.inet_pton(dns.inet.af_for_address(source[0]), source[0]) == \
            dns.inet.inet_pton(dns.inet.af_for_address(server.host), server.host)
    except (ValueError, OSError):
        return False
    return same and source[1] == server.port


Sendable = dns.message.Message | Outgoing  # a resolution's queries are Outgoing


def _reply_to(query: Sendable, wire: bytes) -> dns.message.Message | None:
    """The message in `wire` if it answers `query` (RFC 5452 §9.1: ID and question match);
    a truncated reply that matches comes back with only its header and question."""
    if wire[:2] != query.id.to_bytes(2, "big"):  # another ID: not read at all
        return None
    try:
        reply = read_reply(wire)
    except dns.message.Truncated as exc:
        reply = exc.message()
    except (dns.exception.DNSException, ValueError, EOFError):
        return None
    return reply if query.is_response(reply) else None


def udp(server: Server, query: Sendable,
        timeout: float) -> tuple[dns.message.Message, int, int, float]:
    """Send `query` over UDP and wait up to `timeout` seconds for its reply; the reply, how
    many datagrams were ignored because they were not it, the reply's size and the seconds
    it took. Raises NoReply, or ConnectionRefusedError when the server's port is closed."""
    family = socket.AF_INET6 if server.ipv6 else socket.AF_INET
    deadline = SYSTEM.monotonic() + timeout
    ignored = 0
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.connect((server.host, server.port))
        sock.send(query.to_wire() if isinstance(query, Outgoing) else query_wire(query))
        sent = SYSTEM.monotonic()
        while (left := deadline - SYSTEM.monotonic()) > 0:
            sock.settimeout(left)
            try:
                wire, source = sock.recvfrom(MAX_DATAGRAM)
            except TimeoutError:
                break
            reply = _reply_to(query, wire) if _from_server(source, server) else None
            if reply is None:
                ignored += 1
                continue
            return reply, ignored, len(wire), SYSTEM.monotonic() - sent
    raise NoReply(timeout, ignored)


def ask(server: Server, message: Sendable, timeout: float = SERVER_TIMEOUT) -> Reply:
    """One exchange with one server: UDP, then TCP if the UDP reply has TC set."""
    reply, ignored, size, rtt = udp(server, message, timeout)
    if not reply.flags & dns.flags.TC:
        return Reply(server, reply, False, size, ignored, rtt)
    return _over_tcp(server, message, timeout, ignored)


async def udp_async(server: Server, query: Sendable,
                    timeout: float) -> tuple[dns.message.Message, int, int, float]:
    """As `udp`, on the running event loop: the socket is read when it is readable, at most
    BATCH datagrams at a time (a server flooding its port holds up nothing else), and the
    reply's time is taken as it is read (not when the resolution gets to it)."""
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if server.ipv6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sock.connect((server.host, server.port))
        sock.send(query.to_wire() if isinstance(query, Outgoing) else query_wire(query))
        sent = loop.time()
        got: asyncio.Future[tuple[dns.message.Message, int, float]] = loop.create_future()
        ignored = 0

        def readable() -> None:
            nonlocal ignored
            for _ in range(BATCH):
                if got.done():
                    return
                try:
                    wire, source = sock.recvfrom(MAX_DATAGRAM)
                    reply = _reply_to(query, wire) if _from_server(source, server) else None
                except (BlockingIOError, InterruptedError):
                    return
                except Exception as exc:  # ICMP port unreachable: ConnectionRefusedError
                    got.set_exception(exc)
                    return
                if reply is None:
                    ignored += 1
                else:
                    got.set_result((reply, len(wire), loop.time() - sent))

        def late() -> None:
            if not got.done():
                got.set_exception(NoReply(timeout, ignored))

        loop.add_reader(sock.fileno(), readable)
        timer = loop.call_later(timeout, late)
        try:
            reply, size, rtt = await got
        finally:
            timer.cancel()
            loop.remove_reader(sock.fileno())
        return reply, ignored, size, rtt


async def ask_async(server: Server, message: Sendable, timeout: float = SERVER_TIMEOUT) -> Reply:
    """As `ask`, on the running event loop."""
    reply, ignored, size, rtt = await udp_async(server, message, timeout)
    if not reply.flags & dns.flags.TC:
        return Reply(server, reply, False, size, ignored, rtt)
    try:
        tcp = await dns.asyncquery.tcp(_message(message), server.host, timeout=timeout,
                                       port=server.port)
    except (OSError, EOFError, dns.exception.DNSException) as exc:
        raise _tcp_failed(exc) from None
    return Reply(server, tcp, True, len(tcp.to_wire()), ignored)


def _over_tcp(server: Server, message: Sendable, timeout: float, ignored: int) -> Reply:
    """The retry over TCP of a query whose UDP reply was truncated."""
    try:
        tcp = dns.query.tcp(_message(message), server.host, timeout=timeout, port=server.port)
    except (OSError, EOFError, dns.exception.DNSException) as exc:
        raise _tcp_failed(exc) from None
    return Reply(server, tcp, True, len(tcp.to_wire()), ignored)


def _message(message: Sendable) -> dns.message.Message:
    return message.message() if isinstance(message, Outgoing) else message


def _tcp_failed(exc: BaseException) -> TcpFailed:
    return TcpFailed(f"truncated over UDP, then over TCP: {describe(exc)}")


T = TypeVar("T")
# Work that needs the network, written once for both ways of doing I/O: a generator that
# yields (server, message, timeout) for each exchange and is sent the Reply, or has the
# exchange's exception thrown into it; what it returns is the result. `drive` runs it with
# blocking sockets (`ask`), `drive_async` on an event loop (`ask_async`).
Asking = Generator[tuple[Server, Sendable, float], Reply, T]


def drive(work: Asking[T], exchange: Callable[[Server, Sendable, float], Reply] = ask) -> T:
    """Run `work`, each exchange by `exchange` (blocking)."""
    outcome: tuple[Any, Exception | None] = (None, None)
    while True:
        done, value = _advance(work, outcome)
        if done:
            return value  # type: ignore[no-any-return]
        try:
            outcome = (exchange(*value), None)
        except Exception as exc:  # noqa: BLE001 (thrown into `work`, which decides)
            outcome = (None, exc)


async def drive_async(work: Asking[T], exchange: Callable[[Server, Sendable, float], Awaitable[Reply]]
                      = ask_async) -> T:
    """Run `work` on the running event loop, each exchange awaited."""
    outcome: tuple[Any, Exception | None] = (None, None)
    while True:
        done, value = _advance(work, outcome)
        if done:
            return value  # type: ignore[no-any-return]
        try:
            outcome = (await exchange(*value), None)
        except Exception as exc:  # noqa: BLE001 (thrown into `work`, which decides)
            outcome = (None, exc)


def _advance(work: Asking[Any], outcome: tuple[Any, Exception | None]) -> tuple[bool, Any]:
    """Hand `work` the last exchange's reply (or throw in its exception): (False, the next
    exchange) or (True, what `work` returned)."""
    reply, failure = outcome
    try:
        return False, (work.send(reply) if failure is None else work.throw(failure))
    except StopIteration as stop:
        return True, stop.value


@dataclass(frozen=True)
class _Missed:
    """A query that timed out: when it was sent, and whether its miss held the server down."""

    sent: float
    held: bool


@dataclass
class Transport:
    """The network for one trace: its time budget, the servers that did not answer (skipped
    from then on) and the count of datagrams ignored as not being the reply. With a
    `selection` (a resolver's, shared by its resolutions under `lock`), each query's servers
    are asked fastest first, each with a timeout from its measured RTT, and what happens is
    measured into it; without one, in the order given, each with `server_timeout`."""

    budget: float = DEFAULT_BUDGET
    server_timeout: float = SERVER_TIMEOUT
    clock: Clock = SYSTEM
    unanswered: dict[Server, str] = field(default_factory=dict)
    ignored: int = 0
    queries: int = 0
    selection: Selection | None = None
    lock: AbstractContextManager[Any] = field(default_factory=nullcontext)
    deadline: float = field(init=False)

    def __post_init__(self) -> None:
        self.deadline = self.clock.monotonic() + self.budget

    @property
    def spent(self) -> bool:
        return self.clock.monotonic() >= self.deadline

    def _order(self, servers: tuple[Server, ...],
               errors: list[str]) -> tuple[list[Server], Server | None]:
        """The servers to try, in order, and the one among them probed although held down
        (all are held down: it is asked anyway, briefly, unless another query is probing it
        already); those skipped said in `errors`."""
        probe = None
        if self.selection is None:
            order = list(servers)
        else:
            now = self.clock.monotonic()
            with self.lock:
                order = self.selection.order(servers, now)
                held = self.selection.held(servers, now)
                probe = self.selection.probe([s for s in servers if s not in self.unanswered],
                                             now)
                probed = {s for s in held if s != probe and self.selection.probing(s, now)}
            for server, left in held.items():
                if server != probe:
                    also = ", being probed" if server in probed else ""
                    errors.append(f"{server}: no answer earlier, held down {left:.0f} s "
                                  f"more{also}, skipped")
            order += [probe] if probe is not None else []
        for server in [s for s in order if s in self.unanswered]:
            errors.append(f"{server}: {self.unanswered[server]} earlier, skipped")
            order.remove(server)
        return order, probe

    def _timeout(self, server: Server, probe: bool = False) -> float:
        if self.selection is None:
            return self.server_timeout
        with self.lock:
            return self.selection.probe_timeout(server) if probe else self.selection.timeout(server)

    def _message(self, query: Query, server: Server, small: bool = False) -> Outgoing:
        """`query` for `server`: with the small EDNS buffer if asked or if the selection
        remembers that larger answers from it are lost; DO=1 always (EDNS is dropped only by
        the resolution, for a server that answered FORMERR to it)."""
        if self.selection is not None and not small:
            with self.lock:
                return query.outgoing(self.selection.payload(server, self.clock.monotonic()))
        return query.outgoing(SMALL_PAYLOAD if small else EDNS_PAYLOAD)

    def exchanging(self, query: Query) -> Asking[tuple[Reply | None, str]]:
        """Send `query` to its servers in order until one answers; (None, why) if none does.
        With a selection, a server that timed out is asked once more when no other answered,
        with the full timeout and a 512-byte EDNS buffer (as BIND falls back: an answer lost
        on the path at 1232 bytes comes back truncated, then over TCP); when that answer
        needed TCP, the selection remembers to ask that server so from then on. A held-down
        server's probe is asked with the 512-byte buffer from the start (it is not retried)."""
        errors: list[str] = []
        again: list[tuple[Server, _Missed]] = []
        order, probe = self._order(query.servers, errors)
        for server in order:
            retry = self.selection is not None and server != probe
            reply, missed = yield from self._trying(  # a probe: with the small buffer, as a retry
                server, self._message(query, server, small=server == probe),
                self._timeout(server, server == probe), errors, retry, server == probe)
            if reply is not None:
                return reply, ""
            if missed is not None and retry:
                again.append((server, missed))
        for server, missed in again:
            if not missed.held and self._held(server):  # other queries' misses meanwhile
                errors.append(f"{server}: held down since, not asked again")
                continue
            # its miss, if any, is this query's silence still (sent as the first was: the
            # hold-down that one began, if it did, is not lengthened by it)
            reply, _ = yield from self._trying(server, self._message(query, server, small=True),
                                               self.server_timeout, errors, sent_as=missed.sent)
            if reply is not None:
                if reply.tcp and self.selection is not None:
                    with self.lock:
                        self.selection.needs_small(server, self.clock.monotonic())
                return reply, ""
        return None, "; ".join(errors) or "no server to ask"

    def _held(self, server: Server) -> bool:
        if self.selection is None:
            return False
        with self.lock:
            return bool(self.selection.held((server,), self.clock.monotonic()))

    def _trying(self, server: Server, message: Sendable, timeout: float, errors: list[str],
                retry: bool = False, probe: bool = False,
                sent_as: float | None = None) -> Asking[tuple[Reply | None, _Missed | None]]:
        """One exchange with `server`, measured into the selection (a miss as of `sent_as`,
        default the send time): (the reply, None), or (None, the miss if it timed out) with
        why in `errors`. A server that failed is skipped for the rest of the run, unless it
        timed out and is to be asked again (`retry`). A `probe` of a held-down server not
        sent after all gives its claim back."""
        left = self.deadline - self.clock.monotonic()
        if left <= 0:
            errors.append(f"{server}: not asked, time budget spent")
            if probe and self.selection is not None:
                with self.lock:
                    self.selection.unprobe(server)
            return None, None
        self.queries += 1
        wait = min(timeout, left)
        started = self.clock.monotonic()
        try:
            reply = yield server, message, wait
        except (TimeoutError, OSError) as exc:  # silent, refused, unreachable network
            self.ignored += getattr(exc, "ignored", 0)
            errors.append(f"{server}: {describe(exc)}")
            timed_out, local = isinstance(exc, TimeoutError), exc.errno in LOCAL_ERRNOS
            if not (timed_out and retry) and not local:
                self.unanswered[server] = describe(exc)  # skipped from now on, and reported
            sent, held = started if sent_as is None else sent_as, False
            if self.selection is not None and not local:
                with self.lock:
                    held = self.selection.timed_out(server, wait, self.clock.monotonic(),
                                                    sent=sent) > 0
            elif self.selection is not None and probe:
                with self.lock:
                    self.selection.unprobe(server)
            return None, _Missed(sent, held) if timed_out else None
        except (dns.exception.DNSException, EOFError, ValueError) as exc:
            errors.append(f"{server}: {describe(exc)}")
            return None, None
        self.ignored += reply.ignored
        if self.selection is not None:
            with self.lock:
                if reply.tcp:
                    self.selection.reached(server)
                else:
                    self.selection.answered(server, reply.rtt if reply.rtt is not None
                                            else self.clock.monotonic() - started)
        return reply, None

    def budget_reason(self) -> str:
        silent = ", ".join(f"{s} ({why})" for s, why in self.unanswered.items())
        n = self.queries
        return (f"time budget of {self.budget:g} s spent after {n} {'query' if n == 1 else 'queries'}"
                + (f"; no answer from {silent}" if silent else ""))

    def running(self, resolution: Resolution,
                ask: Callable[[Query], Asking[tuple[Reply | None, str]]] | None = None) -> Asking[Outcome]:
        """Drive a resolution until it has an outcome or the budget is spent; each query is
        answered by `ask` (a resolver's cache in front of `exchanging`), by default over the
        network."""
        ask = ask or self.exchanging
        while (query := resolution.next_query()) is not None:
            if self.spent:
                resolution.give_up(self.budget_reason())
                break
            reply, error = yield from ask(query)
            if reply is None and self.spent:
                resolution.give_up(self.budget_reason(), error)
                break
            resolution.result(reply, error)
        assert resolution.outcome is not None
        return resolution.outcome

    def run(self, resolution: Resolution) -> Outcome:
        """`running`, with blocking sockets."""
        return drive(self.running(resolution))
