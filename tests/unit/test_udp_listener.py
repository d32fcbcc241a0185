"""edge.server.UdpListener on a real loopback socket: an answer the handler has at once goes
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
