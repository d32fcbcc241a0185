"""The resolver's UDP exchange on an event loop (`edge.transport.udp_async`), on real loopback
sockets: a server flooding the query's port with datagrams that are not the reply holds up
nothing else on the loop (they are read a batch at a time, each counted as ignored); and an
error reading a datagram fails the exchange at once, as it does with blocking sockets, rather
than passing for a server that did not answer."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
import time

import dns.message
import dns.name
import dns.rdatatype
import pytest

from sigchain.core.resolve.exchange import Query
from sigchain.core.validate.anchors import Server
from sigchain.edge import transport
from tests.conftest import free_port

HOST = "127.0.0.1"
# Answers the first datagram on its port with FLOOD datagrams that carry the query's ID but
# another question (each must be read to be told apart), as fast as it can, then stops.
FLOODER = """
import socket, sys
import dns.message
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
print("ready", flush=True)
wire, client = s.recvfrom(65535)
q = dns.message.from_wire(wire)
other = dns.message.make_query("other.test.", "A", want_dnssec=True)
other.id = q.id
r = dns.message.make_response(other)
r.flags |= 0x400
junk = r.to_wire()
for _ in range(int(sys.argv[3])):
    try:
        s.sendto(junk, client)
    except OSError:
        pass
"""


def _query() -> Query:
    return Query(dns.name.from_text("www.example.test."), dns.rdatatype.A, ())


def test_a_flood_of_datagrams_that_are_not_the_reply_holds_up_nothing_else() -> None:
    port = free_port(HOST)
    flooder = subprocess.Popen([sys.executable, "-c", FLOODER, HOST, str(port), "300000"],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert flooder.stdout is not None and flooder.stdout.readline().strip() == "ready"

        async def both() -> tuple[BaseException | None, float, int]:
            gaps: list[float] = []
            ask = asyncio.ensure_future(transport.udp_async(Server(HOST, port), _query().outgoing(), 1.0))
            last = time.monotonic()
            while not ask.done():  # the loop's other work: never held up for long
                await asyncio.sleep(0.01)
                now = time.monotonic()
                gaps.append(now - last)
                last = now
            return ask.exception(), max(gaps), len(gaps)

        failure, worst, ticks = asyncio.run(both())
        assert isinstance(failure, transport.NoReply) and failure.ignored > 100, failure
        assert worst < 0.2 and ticks > 20, (worst, ticks)
    finally:
        flooder.kill()
        flooder.wait()


@pytest.mark.parametrize("driven", ["blocking", "event loop"])
def test_an_error_reading_a_datagram_fails_the_exchange_at_once(
        driven: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(query: object, wire: bytes) -> None:
        raise RuntimeError("a reader bug")

    monkeypatch.setattr(transport, "_reply_to", broken)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind((HOST, 0))
        port = server.getsockname()[1]
        query = _query().outgoing()

        def echo() -> None:  # any datagram back to the asker
            server.settimeout(5)
            wire, client = server.recvfrom(65535)
            server.sendto(wire, client)

        started = time.monotonic()
        with pytest.raises(RuntimeError, match="a reader bug"):
            if driven == "blocking":
                threading.Thread(target=echo, daemon=True).start()
                transport.udp(Server(HOST, port), query, 5.0)
            else:
                async def asking() -> None:
                    loop = asyncio.get_running_loop()
                    answering = loop.run_in_executor(None, echo)
                    try:
                        await transport.udp_async(Server(HOST, port), query, 5.0)
                    finally:
                        await answering
                asyncio.run(asking())
        assert time.monotonic() - started < 2.0
