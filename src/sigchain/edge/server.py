"""DNS listeners on asyncio: UDP, and TCP with 2-byte length framing (RFC 1035 §4.2,
RFC 7766 §6.2: several queries per connection, idle timeout). They know nothing about zones:
each query's wire goes to a handler, with whether it came over TCP and the client's address;
the handler returns the response wire, None (no answer), or — for a zone transfer over TCP — an
iterable of messages, sent one by one as they are produced (RFC 5936 §2.2).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sigchain.core.validate.anchors import parse_server
from sigchain.errors import OperationalError

Response = bytes | Iterable[bytes] | None
Handler = Callable[[bytes, bool, str], Response]  # (query wire, over TCP, client address)

DEFAULT_PORT = 53
DEFAULT_IDLE_TIMEOUT = 10.0  # seconds a TCP connection may sit without a query (RFC 7766 §6.2.3)
MAX_TCP_CLIENTS = 256

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


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, handler: Handler):
        self.handler = handler
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("UDP query from %s: %d bytes", addr[0], len(data))
        try:
            response = self.handler(data, False, str(addr[0]))
            if response is None or self.transport is None:
                return
            for wire in (response,) if isinstance(response, bytes) else response:
                self.transport.sendto(wire, addr)
        except Exception:
            log.exception("error answering a UDP query from %s", addr[0])

    def error_received(self, exc: Exception) -> None:
        log.debug("UDP error: %s", exc)


@dataclass
class Listeners:
    """The sockets one server holds; `close()` releases them all."""

    handler: Handler
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    udp: list[asyncio.DatagramTransport] = field(default_factory=list)
    tcp: list[asyncio.Server] = field(default_factory=list)
    clients: set[asyncio.Task[None]] = field(default_factory=set)

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        client = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        task = asyncio.current_task()
        if len(self.clients) >= MAX_TCP_CLIENTS:
            log.warning("too many TCP clients: closing %s", peer)
            writer.close()
            return
        if task is not None:
            self.clients.add(task)
        try:
            while True:
                try:
                    head = await asyncio.wait_for(reader.readexactly(2), self.idle_timeout)
                    (length,) = struct.unpack("!H", head)
                    data = await asyncio.wait_for(reader.readexactly(length), self.idle_timeout)
                except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                    return
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("TCP query from %s: %d bytes", peer, len(data))
                try:
                    response = self.handler(data, True, client)
                    if response is None:
                        continue
                    if isinstance(response, bytes):
                        writer.write(struct.pack("!H", len(response)) + response)
                        await writer.drain()
                        continue
                    for wire in response:  # a transfer: each message as soon as it is made
                        writer.write(struct.pack("!H", len(wire)) + wire)
                        await writer.drain()
                except ConnectionError:
                    raise
                except Exception:
                    log.exception("error answering a TCP query from %s", peer)
                    return
        except ConnectionError:
            return
        finally:
            if task is not None:
                self.clients.discard(task)
            writer.close()

    async def start(self, addresses: list[ListenAddress]) -> None:
        """Bind UDP and TCP on every address; on failure release what was bound and raise."""
        loop = asyncio.get_running_loop()
        try:
            for a in addresses:
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _UdpProtocol(self.handler), local_addr=(a.host, a.port)
                )
                self.udp.append(transport)
                server = await asyncio.start_server(
                    self._tcp_client, a.host, a.port, reuse_address=True
                )
                self.tcp.append(server)
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
        for task in list(self.clients):
            task.cancel()
        for s in self.tcp:
            await s.wait_closed()
        self.udp.clear()
        self.tcp.clear()
