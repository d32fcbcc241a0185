"""DNS listeners on asyncio: UDP, and TCP with 2-byte length framing (RFC 1035 §4.2,
RFC 7766 §6.2: several queries per connection, idle timeout). They know nothing about zones:
each query's wire goes to a handler, with whether it came over TCP and the client's address;
the handler returns the response wire, None (no answer: over TCP the connection is then
closed, once the answers before it are sent), or — for a zone transfer over TCP — an iterable of
messages, sent one by one as they are produced (RFC 5936 §2.2).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import functools
import inspect
import logging
import os
import signal
import socket
import struct
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sigchain.core.validate.anchors import parse_server
from sigchain.errors import OperationalError

Response = bytes | Iterable[bytes] | None
# (query wire, over TCP, client address) → the response, or an awaitable of it (a resolver's
# answer that needs upstream queries first), or — over UDP — a future another thread
# completes (the answer is then sent from that thread, without a trip through the event loop)
Handler = Callable[[bytes, bool, str],
                   "Response | Awaitable[bytes | None] | concurrent.futures.Future[bytes | None]"]

# A TCP worker's update channel: its file descriptor, what reads it when readable, and
# what applies the updates read (`edge.updatechannel.Channel`).
Updates = tuple[int, Callable[[], bool], Callable[[], None]]
_OPCODE_UPDATE = 5  # RFC 2136

DEFAULT_PORT = 53
DEFAULT_IDLE_TIMEOUT = 10.0  # seconds a TCP connection may sit without a query (RFC 7766 §6.2.3)
DEFAULT_IO_TIMEOUT = 2.0  # seconds to read the rest of a query, or to get one answer out
DEFAULT_TCP_CLIENTS = 256  # connections open at once
DEFAULT_TCP_CLIENTS_PER_ADDRESS = 32
MAX_PIPELINED = 32  # a connection's queries answered at once (RFC 7766 §6.2.1.1)
# How long a TCP worker replaced by a reload may take to finish the answers it is sending
# (an AXFR under way); its idle connections are closed soon (RFC 7766 §6.2.3 lets a server
# close idle connections; clients open a new one, to the new worker).
DRAIN_SECONDS = 30.0
DRAIN_IDLE = 0.5  # seconds an idle connection of a replaced worker may still send a query

log = logging.getLogger("sigchain.server")


@dataclass(frozen=True)
class ListenAddress:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}#{self.port}"


def parse_listen(text: str) -> ListenAddress:
    """`ADDR[#PORT]` as BIND writes it (IPv4 or IPv6 literal, port default 53)."""
    server = parse_server(text, what="listen address")
    return ListenAddress(server.host, server.port)


BATCH = 64  # datagrams read from one UDP socket before the event loop looks at anything else
# A listening UDP socket's receive buffer (asked for; the kernel caps it at net.core.rmem_max):
# the default (~208 KiB, about 200 small queries) overflowed under a burst of queries while a
# resolver's threads held the GIL, and the client's query was lost.
UDP_RCVBUF = 1 << 20


class UdpListener:
    """One bound UDP socket read from the event loop in batches: every readiness drains up to
    BATCH datagrams, and an answer the handler has at once goes out with one `sendto`. (An
    asyncio datagram transport reads one datagram per wake-up of the loop, which cost a
    resolver's cache hits more than the answer itself.) An answer that is not ready yet (a
    resolver's upstream work) is sent when it is. A datagram that cannot be sent at once (a
    full socket buffer) is dropped, as a UDP answer may be: the client asks again."""

    def __init__(self, sock: socket.socket, handler: Handler, loop: asyncio.AbstractEventLoop):
        self.sock, self.handler, self.loop = sock, handler, loop
        self.pending: set[asyncio.Future[None]] = set()
        self.closed = False
        sock.setblocking(False)
        loop.add_reader(sock.fileno(), self._ready)

    @classmethod
    def bind(cls, address: ListenAddress, handler: Handler, reuse_port: bool) -> UdpListener:
        family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RCVBUF)
            sock.bind((address.host, address.port))
            return cls(sock, handler, asyncio.get_running_loop())
        except BaseException:
            sock.close()
            raise

    def get_extra_info(self, name: str) -> object:
        """As an asyncio transport's: "socket" and "sockname"."""
        return {"socket": self.sock, "sockname": self.sock.getsockname()}.get(name)

    def pause_reading(self) -> None:
        """Leave the socket to other readers (forked workers answering on it)."""
        if not self.closed:
            self.loop.remove_reader(self.sock.fileno())

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.loop.remove_reader(self.sock.fileno())
        for task in list(self.pending):
            task.cancel()
        self.sock.close()

    def _ready(self) -> None:
        recvfrom, handler, debug = self.sock.recvfrom, self.handler, log.isEnabledFor(logging.DEBUG)
        for _ in range(BATCH):
            try:
                data, addr = recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # an ICMP error reported on the socket, and the like
                log.debug("UDP receive error: %s", exc)
                return
            if debug:
                log.debug("UDP query from %s: %d bytes", addr[0], len(data))
            try:
                response = handler(data, False, str(addr[0]))
                if isinstance(response, bytes):  # the common case first: an answer at once
                    self._send(response, addr)
                elif isinstance(response, concurrent.futures.Future):
                    response.add_done_callback(functools.partial(self._done, addr))
                elif inspect.isawaitable(response):
                    task = asyncio.ensure_future(self._later(response, addr))
                    self.pending.add(task)  # held until done: the loop keeps only weak references
                    task.add_done_callback(self.pending.discard)
                elif response is not None:
                    for wire in response:
                        self._send(wire, addr)
            except Exception:
                log.exception("error answering a UDP query from %s", addr[0])

    def _send(self, wire: bytes, addr: tuple[str | object, ...]) -> None:
        try:
            self.sock.sendto(wire, addr)
        except OSError as exc:  # a full buffer, an unreachable client: the answer is dropped
            log.debug("UDP send error to %s: %s", addr[0], exc)

    def _done(self, addr: tuple[str | object, ...], future: concurrent.futures.Future[bytes | None]) -> None:
        """Send a future's answer (in the thread that completed it: `sendto` on a UDP socket
        is safe from any thread)."""
        if future.cancelled():
            return
        if (exc := future.exception()) is not None:
            log.error("error answering a UDP query from %s: %s", addr[0], exc)
            return
        wire = future.result()
        if wire is not None and not self.closed:
            self._send(wire, addr)

    async def _later(self, response: Awaitable[bytes | None], addr: tuple[str | object, ...]) -> None:
        try:
            wire = await response
            if wire is not None and not self.closed:
                self._send(wire, addr)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("error answering a UDP query from %s", addr[0])


@dataclass(frozen=True)
class TcpLimits:
    """Bounds on TCP clients (as BIND's tcp-clients, Knot's tcp-max-clients, tcp-io-timeout,
    tcp-idle-timeout): no client may hold a connection, or the table, for as long as it likes."""

    idle_timeout: float = DEFAULT_IDLE_TIMEOUT  # waiting for the next query
    io_timeout: float = DEFAULT_IO_TIMEOUT  # reading the rest of a query, writing an answer
    clients: int = DEFAULT_TCP_CLIENTS  # connections open at once, every listener together
    per_address: int = DEFAULT_TCP_CLIENTS_PER_ADDRESS  # of them from one client address


class _Conn:
    """One open TCP connection: who, its task and transport, when it last made progress."""

    __slots__ = ("client", "task", "transport", "last", "busy")

    def __init__(self, client: str, task: asyncio.Task[None] | None,
                 transport: asyncio.BaseTransport, now: float):
        self.client = client
        self.task = task
        self.transport = transport
        self.last = now
        self.busy = False  # answering a query (between reading it and sending the answer)

    def drop(self) -> None:
        """Close at once, discarding what is still unsent."""
        if self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()
        if isinstance(self.transport, asyncio.WriteTransport):
            self.transport.abort()
        else:
            self.transport.close()


class TcpTable:
    """The open TCP connections of a server (shared by its listeners). A client address at
    its cap gets no more; when the table is full the connection that has made no progress
    for longest (the oldest idle one, or one whose client stopped reading) is closed to make
    room, as Knot and NSD do, so a new client is always served."""

    def __init__(self, limits: TcpLimits):
        self.limits = limits
        self.open: dict[_Conn, None] = {}  # in opening order
        self.per_client: Counter[str] = Counter()
        self.stats: Counter[str] = Counter()  # rejected, evicted, io-timeout: for logs and tests
        self.draining = False  # no new queries: each connection closes after its answer
        self.closed = False  # the server is closing: no query is answered any more

    def admit(self, conn: _Conn) -> bool:
        """Take `conn` in (closing the stalest connection if the table is full), or refuse it
        because its address holds its share already."""
        if self.per_client[conn.client] >= self.limits.per_address:
            self.stats["rejected"] += 1
            log.warning("TCP client %s has %d connections open already: new one refused",
                        conn.client, self.per_client[conn.client])
            return False
        while len(self.open) >= self.limits.clients and self.open:
            stale = min(self.open, key=lambda c: c.last)
            self.stats["evicted"] += 1
            log.warning("TCP connections full (%d): closing the longest idle one, from %s",
                        self.limits.clients, stale.client)
            self.release(stale)
            stale.drop()
        self.open[conn] = None
        self.per_client[conn.client] += 1
        return True

    def release(self, conn: _Conn) -> None:
        if self.open.pop(conn, 0) is None:
            self.per_client[conn.client] -= 1
            if self.per_client[conn.client] <= 0:
                del self.per_client[conn.client]

    def drain(self) -> None:
        """Stop taking queries: each connection closes after its next answer, or after
        DRAIN_IDLE seconds more without a query (one already on its way is answered)."""
        self.draining = True
        asyncio.get_running_loop().call_later(DRAIN_IDLE, self._close_idle)

    def _close_idle(self) -> None:
        for conn in [c for c in self.open if not c.busy]:
            self.release(conn)
            conn.drop()

    def close_all(self) -> None:
        """The server closes: every connection's task cancelled and its transport closed at
        once. A task whose query arrived in the same turn of the loop may not see the
        cancellation (`asyncio.wait_for` on Python 3.11 gives the read's result instead): it
        finds the table closed and answers nothing."""
        self.closed = True
        for conn in list(self.open):
            self.release(conn)
            conn.drop()

    def __len__(self) -> int:
        return len(self.open)


class _Stalled(Exception):
    """The client did not read its answer within the I/O timeout."""


async def _answered(pending: set[asyncio.Future[None]]) -> None:
    """Wait for the answers under way (each ends by itself: its resolution's budget)."""
    if pending:
        await asyncio.wait(set(pending))


@dataclass
class Listeners:
    """The sockets one server holds; `close()` releases them all."""

    handler: Handler
    table: TcpTable = field(default_factory=lambda: TcpTable(TcpLimits()))
    udp: list[UdpListener] = field(default_factory=list)
    tcp: list[asyncio.Server] = field(default_factory=list)
    reuse_port: bool = False  # several processes answering on one address (SO_REUSEPORT)
    tcp_sockets: list[socket.socket] = field(default_factory=list)  # listening, served or not
    # RFC 7766 §6.2.1.1: a connection's queries whose answers come later (a resolver's) are
    # answered as they come, up to MAX_PIPELINED at once, not one after another; off, each
    # query is answered before the next is read (an UPDATE before the query that follows it)
    pipelined: bool = False

    async def _send(self, writer: asyncio.StreamWriter, wire: bytes) -> None:
        writer.write(struct.pack("!H", len(wire)) + wire)
        try:
            await asyncio.wait_for(writer.drain(), self.table.limits.io_timeout)
        except TimeoutError:
            raise _Stalled from None

    async def _close(self, writer: asyncio.StreamWriter) -> None:
        """Close once what was written is sent (an answer still buffered, the end of a
        transfer), within the I/O timeout; the caller's `drop` then ends whatever is left."""
        writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), self.table.limits.io_timeout)
        except (TimeoutError, OSError):
            pass

    async def _query(self, reader: asyncio.StreamReader) -> bytes:
        """The next query: its length within the idle timeout, the rest within the I/O one."""
        limits = self.table.limits
        head = await asyncio.wait_for(reader.readexactly(2), limits.idle_timeout)
        (length,) = struct.unpack("!H", head)
        return await asyncio.wait_for(reader.readexactly(length), limits.io_timeout)

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        client = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        loop = asyncio.get_running_loop()
        conn = _Conn(client, asyncio.current_task(), writer.transport, loop.time())
        if not self.table.admit(conn):
            conn.drop()
            return
        pending: set[asyncio.Future[None]] = set()  # answers still to come (`pipelined`)
        sending = asyncio.Lock()  # one answer (or transfer) written at a time
        try:
            while True:
                try:
                    data = await self._query(reader)
                except (TimeoutError, asyncio.IncompleteReadError):  # idle, or the client done
                    await _answered(pending)  # the answers under way go out first,
                    await self._close(writer)  # then the last ones still buffered
                    return
                except ConnectionError:
                    return
                if self.table.closed:  # read as the server closed: not answered
                    return
                conn.last = loop.time()
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("TCP query from %s: %d bytes", peer, len(data))
                conn.busy = True
                try:
                    response = self.handler(data, True, client)
                    if inspect.isawaitable(response) and self.pipelined:
                        task = asyncio.ensure_future(self._later(response, writer, conn, pending, sending))
                        pending.add(task)
                        task.add_done_callback(pending.discard)
                        while len(pending) >= MAX_PIPELINED:  # read no more until one is answered
                            await asyncio.wait(set(pending), return_when=asyncio.FIRST_COMPLETED)
                        continue
                    if inspect.isawaitable(response):
                        response = await response
                    if response is None:  # no answer will come (dropped, a message that is no
                        log.debug("TCP query from %s not answered: connection closed", peer)
                        await _answered(pending)  # query): the client learns it at once, as
                        await self._close(writer)  # from Unbound (once the answers before
                        return  # it are sent)
                    async with sending:
                        for wire in (response,) if isinstance(response, bytes) else response:
                            await self._send(writer, wire)  # a transfer: each message once made
                            conn.last = loop.time()
                except (ConnectionError, _Stalled):
                    raise
                except Exception:
                    log.exception("error answering a TCP query from %s", peer)
                    return
                conn.busy = bool(pending)
                if self.table.draining:
                    await _answered(pending)
                    await self._close(writer)
                    return
        except _Stalled:
            self.table.stats["io-timeout"] += 1
            log.warning("TCP client %s did not read its answer within %gs: connection closed",
                        client, self.table.limits.io_timeout)
        except ConnectionError:
            return
        except asyncio.CancelledError:  # the server closing (`close_all`): end, not raise;
            return  # on 3.11 the stream server's callback logs a traceback for a cancelled task
        finally:
            for task in list(pending):
                task.cancel()
            self.table.release(conn)
            conn.drop()

    async def _later(self, response: Awaitable[bytes | None], writer: asyncio.StreamWriter,
                     conn: _Conn, pending: set[asyncio.Future[None]], sending: asyncio.Lock) -> None:
        """One pipelined query's answer, sent when it comes (out of order: RFC 7766 §7). No
        answer, an error or a client that stops reading ends the connection (once the
        answers before it are out, for no answer), as in the sequential case."""
        loop = asyncio.get_running_loop()
        try:
            wire = await response
            if wire is None:
                log.debug("TCP query from %s not answered: connection closed", conn.client)
                await _answered(pending - {asyncio.current_task()})  # type: ignore[operator]
                await self._close(writer)
                return
            async with sending:
                await self._send(writer, wire)
            conn.last = loop.time()
            conn.busy = len(pending) > 1
            if self.table.draining and len(pending) <= 1:
                await self._close(writer)
        except asyncio.CancelledError:
            raise
        except ConnectionError:
            conn.drop()
        except _Stalled:
            self.table.stats["io-timeout"] += 1
            log.warning("TCP client %s did not read its answer within %gs: connection closed",
                        conn.client, self.table.limits.io_timeout)
            conn.drop()
        except Exception:
            log.exception("error answering a TCP query from %s", conn.client)
            conn.drop()

    async def start(self, addresses: list[ListenAddress], serve_tcp: bool = True) -> None:
        """Bind UDP and TCP on every address; on failure release what was bound and raise.
        With `serve_tcp` False the TCP sockets listen but are left to a TCP worker process
        (`tcp_sockets`, `serve_tcp_worker`)."""
        backlog = max(128, self.table.limits.clients)
        try:
            for a in addresses:
                self.udp.append(UdpListener.bind(a, self.handler, self.reuse_port))
                family = socket.AF_INET6 if ":" in a.host else socket.AF_INET
                sock = socket.create_server((a.host, a.port), family=family, backlog=backlog,
                                            reuse_port=self.reuse_port)
                self.tcp_sockets.append(sock)
                if serve_tcp:
                    self.tcp.append(await asyncio.start_server(self._tcp_client, sock=sock))
                log.info("listening on %s (UDP and TCP)", a)
        except OSError as exc:
            await self.close()
            if exc.errno == errno.EADDRINUSE:
                why = "address already in use (another DNS server is running there?)"
            elif exc.errno in (errno.EACCES, errno.EPERM):
                why = "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
            elif exc.errno == errno.EADDRNOTAVAIL:
                why = "address not available on any interface"
            else:
                why = exc.strerror or str(exc)
            raise OperationalError(f"cannot listen on {a}: {why}") from None

    async def close(self) -> None:
        for t in self.udp:
            t.close()
        for s in self.tcp:
            s.close()
        self.table.close_all()
        for s in self.tcp:
            await s.wait_closed()
        for sock in self.tcp_sockets:
            sock.close()
        self.udp.clear()
        self.tcp.clear()
        self.tcp_sockets.clear()


def serve_tcp_worker(sockets: Sequence[tuple[int, Handler]], limits: TcpLimits,
                     alive: Callable[[], bool], tick: Callable[[], None],
                     released: Callable[[], None],
                     updates: Updates | None = None) -> None:
    """A TCP worker process's life (see `edge.udpworkers`): answer TCP on the listening
    sockets `sockets` (file descriptors, with their handlers) on an event loop of its own,
    until SIGTERM/SIGINT (stop now) or `alive()` turns false; SIGHUP (replaced by a newer
    worker after a reload) stops accepting and finishes the answers under way, for at most
    DRAIN_SECONDS; `released` is called once it accepts no more. `tick` runs every quarter
    second (log throttles). `updates` (a file descriptor, what to call when it is readable,
    and what applies the updates read) brings the zones' new versions: they are applied
    before the next query is answered — but for an UPDATE, which the main process answers —
    and when idle; answers under way keep the version they began with. A failing update
    ends the worker (raised again once its loop has stopped)."""
    asyncio.events._set_running_loop(None)  # the forked parent's loop is not ours (3.11)
    failed: list[BaseException] = []
    asyncio.run(_tcp_worker(sockets, limits, alive, tick, released, updates, failed))
    if failed:
        raise failed[0]


async def _tcp_worker(sockets: Sequence[tuple[int, Handler]], limits: TcpLimits,
                      alive: Callable[[], bool], tick: Callable[[], None],
                      released: Callable[[], None],
                      updates: Updates | None,
                      failed: list[BaseException]) -> None:
    loop = asyncio.get_running_loop()
    table = TcpTable(limits)
    servers = []
    stop = asyncio.Event()

    def take() -> bool:
        """The updates read so far applied; false (and the worker stopping) if one fails."""
        if updates is None or failed:
            return not failed
        try:
            updates[2]()
        except BaseException as exc:  # noqa: BLE001 — ends the worker, see above
            failed.append(exc)
            loop.remove_reader(updates[0])
            stop.set()
        return not failed

    for fd, handler in sockets:
        group = Listeners(_taking(handler, take) if updates is not None else handler, table)
        sock = socket.socket(fileno=fd)
        servers.append(await asyncio.start_server(group._tcp_client, sock=sock))
    deadline: list[float] = []  # set once draining

    def drain() -> None:
        """Replaced: stop accepting at once (the new worker accepts from now on, connections
        queued meanwhile included), then finish what is under way."""
        if not deadline:
            deadline.append(loop.time() + DRAIN_SECONDS)
            for server in servers:
                server.close()  # this process's copy of the socket only
            released()
            table.drain()

    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, drain)
    if updates is not None:
        fd, receive, _ = updates

        def on_update() -> None:
            try:
                if not receive():
                    loop.remove_reader(fd)
            except BaseException as exc:  # noqa: BLE001 — ends the worker, see above
                failed.append(exc)
                loop.remove_reader(fd)
                stop.set()

        loop.add_reader(fd, on_update)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
    while not stop.is_set() and alive():
        try:
            await asyncio.wait_for(stop.wait(), 0.25)
        except TimeoutError:
            pass
        tick()
        take()  # idle: what came meanwhile, so that it does not pile up
        if deadline and (not table.open or loop.time() > deadline[0]):
            break
    for server in servers:
        server.close()
    table.close_all()
    await asyncio.sleep(0)  # let the cancelled connections close their transports
    log.debug("TCP worker %d leaves", os.getpid())


def _taking(handler: Handler, take: Callable[[], bool]) -> Handler:
    """`handler` once the updates read so far are applied (`take`) — but for an UPDATE
    (opcode 5), forwarded to the main process, which answers it from its own zones."""
    def answer(wire: bytes, tcp: bool, client: str) -> Any:
        if (len(wire) < 3 or (wire[2] >> 3) & 0xF != _OPCODE_UPDATE) and not take():
            return None  # the worker is ending: a fresh one answers from the current zones
        return handler(wire, tcp, client)
    return answer
