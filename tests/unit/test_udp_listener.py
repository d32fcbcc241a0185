"""edge.server's listeners on real loopback sockets: an answer the handler has at once goes
back to the client, a handler that has none sends nothing, and the socket asks for a receive
buffer that holds a burst of queries."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from sigchain.edge.server import UDP_RCVBUF, ListenAddress, Listeners, UdpListener


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


@pytest.mark.parametrize("pipelined", [False, True])
def test_a_tcp_query_with_no_answer_closes_the_connection_after_the_answers_before_it(
        pipelined: bool) -> None:
    """Over TCP a query that gets no answer (a resolver dropping it at its queue bound, a
    message that is no query) closes the connection, as Unbound does: the client learns at
    once that none will come, instead of waiting out its timeout on an open connection. The
    answers before it are sent first, in full (a large one still in the server's buffer when
    the dropped query is read: pipelined queries, a client that reads slowly), as they are
    when the client closes its side after its queries. A query answered leaves the
    connection open for the next."""

    big = b"x" * 65000  # more than the kernel's buffers below hold

    async def later(wire: bytes) -> bytes | None:
        await asyncio.sleep(0.01)
        return None if wire == b"drop" else big if wire == b"big" else b"re:" + wire

    async def read_all(reader: asyncio.StreamReader) -> bytes:
        await asyncio.sleep(0.3)  # the server meanwhile reads the next query
        return await asyncio.wait_for(reader.read(), 5)  # to the end (b"" at once if left open)

    async def run() -> tuple[bytes, bytes, list[bytes]]:
        listeners = Listeners(lambda wire, tcp, client: later(wire), pipelined=pipelined)
        await listeners.start([ListenAddress("127.0.0.1", 0)])
        try:
            port = listeners.tcp_sockets[0].getsockname()[1]
            # small kernel buffers (the accepted sockets inherit the listening one's): the
            # answer waits in the server's own buffer for the client to read
            listeners.tcp_sockets[0].setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"\x00\x03one")
            answered = await asyncio.wait_for(reader.readexactly(2 + 6), 5)
            writer.write(b"\x00\x04drop")
            closed = await asyncio.wait_for(reader.read(100), 5)  # b"": closed, not left waiting
            writer.close()
            out = []
            for last in (b"\x00\x04drop", b""):  # dropped query / the client's side closed
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a slow reader
                sock.connect(("127.0.0.1", port))
                sock.setblocking(False)
                reader, writer = await asyncio.open_connection(sock=sock)
                writer.write(b"\x00\x03big" + last)
                if not last:
                    writer.write_eof()
                out.append(await read_all(reader))
                writer.close()
            return answered, closed, out
        finally:
            await listeners.close()

    answered, closed, sent = asyncio.run(run())
    assert answered == b"\x00\x06re:one" and closed == b""
    assert sent == [len(big).to_bytes(2, "big") + big] * 2


@pytest.mark.parametrize("pipelined", [False, True])
def test_pipelined_tcp_queries_are_answered_as_their_answers_come(pipelined: bool) -> None:
    """RFC 7766 §6.2.1.1, §7: with `pipelined` (the resolver's), a cached answer asked on a
    connection behind a question still being resolved comes back first; without (the
    authoritative server's), each query is answered before the next is read."""
    async def answer(wire: bytes) -> bytes:
        await asyncio.sleep(0.5 if wire == b"slow" else 0)
        return b"re:" + wire

    async def run() -> list[bytes]:
        listeners = Listeners(lambda wire, tcp, client: answer(wire), pipelined=pipelined)
        await listeners.start([ListenAddress("127.0.0.1", 0)])
        try:
            port = listeners.tcp_sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"\x00\x04slow\x00\x04fast")
            got = []
            for _ in range(2):
                size = int.from_bytes(await asyncio.wait_for(reader.readexactly(2), 5), "big")
                got.append(await asyncio.wait_for(reader.readexactly(size), 5))
            writer.close()
            return got
        finally:
            await listeners.close()

    got = asyncio.run(run())
    assert got == ([b"re:fast", b"re:slow"] if pipelined else [b"re:slow", b"re:fast"])


def test_a_query_read_as_the_server_closes_is_not_answered() -> None:
    """At shutdown every TCP connection's task is cancelled. On Python 3.11, a task whose
    read completed in the same turn of the loop lost that cancellation inside
    `asyncio.wait_for` and went on to answer the query from a server being torn down (a
    traceback in the log at shutdown). A connection of a closed server answers nothing."""
    import struct

    class Transport(asyncio.Transport):
        def abort(self) -> None:
            pass

        def close(self) -> None:
            pass

    class Writer:
        transport = Transport()

        def get_extra_info(self, name: str) -> object:
            return ("127.0.0.1", 5353) if name == "peername" else None

        def write(self, data: bytes) -> None:
            pass

        async def drain(self) -> None:
            pass

        def close(self) -> None:
            pass

        async def wait_closed(self) -> None:
            pass

    async def run() -> list[bytes]:
        asked: list[bytes] = []

        def handler(wire: bytes, tcp: bool, client: str) -> bytes:
            asked.append(wire)
            return b"answer"

        group = Listeners(handler)
        reader = asyncio.StreamReader()
        task = asyncio.ensure_future(group._tcp_client(reader, Writer()))  # type: ignore[arg-type]
        for _ in range(3):
            await asyncio.sleep(0)  # the connection waits for its first query
        reader.feed_data(struct.pack("!H", 5) + b"query")  # a query comes in, and at once
        group.table.close_all()  # the server closes
        reader.feed_eof()
        await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 5)
        return asked

    assert asyncio.run(run()) == []


def test_a_connection_open_at_shutdown_ends_without_a_traceback() -> None:
    """A TCP connection still open when the server stops has its task cancelled. On Python
    3.11 the stream server's done-callback asks a cancelled task for its exception, which
    raises, and the event loop logs "Exception in callback …" with a traceback (the failure
    test_live_rollover saw at teardown). The connection's task now ends without raising."""
    async def run() -> list[str]:
        logged: list[str] = []
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: logged.append(context["message"]))
        group = Listeners(lambda wire, tcp, client: b"")
        server = await asyncio.start_server(group._tcp_client, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(20):  # the server's side of the connection is up and waiting
            if len(group.table):
                break
            await asyncio.sleep(0.01)
        assert len(group.table) == 1
        server.close()
        group.table.close_all()
        for _ in range(5):
            await asyncio.sleep(0.01)
        writer.close()
        return logged

    assert asyncio.run(run()) == []
