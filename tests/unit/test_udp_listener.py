"""edge.server's listeners on real loopback sockets: an answer the handler has at once goes
back to the client, a handler that has none sends nothing, and the socket asks for a receive
buffer that holds a burst of queries."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from sigchain.edge.server import UDP_RCVBUF, ListenAddress, UdpListener


def test_answers_at_once_and_a_large_receive_buffer() -> None:
    async def run() -> tuple[list[bytes], int]:
        def handler(wire: bytes, tcp: bool, client: str) -> bytes | None:
            return None if wire == b"quiet" else b"re:" + wire

        listener = UdpListener.bind(ListenAddress("127.0.0.1", 0), handler, reuse_port=False)
        try:
            port = listener.sock.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
                client.setblocking(False)
                for wire in (b"one", b"quiet", b"two"):
                    client.sendto(wire, ("127.0.0.1", port))
                loop = asyncio.get_running_loop()
                got = [await asyncio.wait_for(loop.sock_recv(client, 100), 5) for _ in range(2)]
            return got, listener.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        finally:
            listener.close()

    got, rcvbuf = asyncio.run(run())
    assert got == [b"re:one", b"re:two"]
    cap = int(Path("/proc/sys/net/core/rmem_max").read_text())
    assert rcvbuf >= min(UDP_RCVBUF, cap)  # the kernel reports twice what it was asked for


def test_a_tcp_query_with_no_answer_closes_the_connection() -> None:
    """Over TCP a query that gets no answer (a resolver dropping it at its queue bound, a
    message that is no query) closes the connection, as Unbound does: the client learns at
    once that none will come, instead of waiting out its timeout on an open connection. A
    query answered leaves it open for the next."""
    from sigchain.edge.server import Listeners

    async def run() -> tuple[bytes, bytes]:
        async def later(wire: bytes) -> bytes | None:
            await asyncio.sleep(0.05)
            return None if wire == b"drop" else b"re:" + wire

        listeners = Listeners(lambda wire, tcp, client: later(wire))
        await listeners.start([ListenAddress("127.0.0.1", 0)])
        try:
            port = listeners.tcp_sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"\x00\x03one")
            answered = await asyncio.wait_for(reader.readexactly(2 + 6), 5)
            writer.write(b"\x00\x04drop")
            rest = await asyncio.wait_for(reader.read(100), 5)  # b"": closed, not left waiting
            writer.close()
            return answered, rest
        finally:
            await listeners.close()

    answered, rest = asyncio.run(run())
    assert answered == b"\x00\x06re:one" and rest == b""
