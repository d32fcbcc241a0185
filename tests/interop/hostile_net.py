"""Misbehaving name servers on loopback for `sigchain trace` (127.54.1.0/24, beside the trace
hierarchy's 127.54.0.x): servers that never answer, and a relay in front of a real server that
races forged replies ahead of every real answer.

Loopback addresses need no `ip addr` for a plain socket (127.0.0.0/8 is local on Linux); port
53 needs root, as the trace hierarchy does.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import dns.exception
import dns.message
import dns.name
import dns.rcode

SILENT_PREFIX = "127.54.1."
SPOOF_IP = "127.54.1.9"


class _Listener:
    """A UDP socket bound to (address, port) and a thread handing each datagram to `handle`."""

    def __init__(self, address: str, port: int = 53):
        self.address = address
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((address, port))
        self.sock.settimeout(0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                wire, client = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            self.handle(wire, client)

    def handle(self, wire: bytes, client: tuple[str, int]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


class Silent(_Listener):
    """Reads every datagram and answers none (a wedged name server, or a firewall that drops
    the replies); counts what it received."""

    received = 0

    def handle(self, wire: bytes, client: tuple[str, int]) -> None:
        self.received += 1


def forgeries(query: dns.message.Message) -> list[bytes]:
    """Replies an off-path attacker who guessed the address and port would send: the wrong
    ID, the right ID for another question, and a datagram that is not DNS at all. Each says
    NXDOMAIN: accepted, it would turn the answer into a denial."""
    wrong_id = dns.message.make_response(query)
    wrong_id.id = query.id ^ 0x5A5A
    wrong_id.set_rcode(dns.rcode.NXDOMAIN)
    qname = query.question[0].name
    other = dns.message.make_query(dns.name.Name((b"spoofed", *qname.labels)), query.question[0].rdtype)
    other.id = query.id
    wrong_question = dns.message.make_response(other)
    wrong_question.set_rcode(dns.rcode.NXDOMAIN)
    return [wrong_id.to_wire(), wrong_question.to_wire(), b"\x00" * 3]


class SpoofingRelay(_Listener):
    """A UDP relay to `upstream` that sends the client `forgeries` of every reply before it
    forwards the query (so each forgery arrives first), plus one correct-looking forged reply
    from another source port. Counts the forgeries sent to the client's port."""

    def __init__(self, address: str, upstream: tuple[str, int], port: int = 53):
        self.upstream = upstream
        self.side = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.side.bind((address, 0))  # same address, another port
        self.forged = 0
        self.relayed = 0
        super().__init__(address, port)

    def handle(self, wire: bytes, client: tuple[str, int]) -> None:
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return
        for forged in forgeries(query):
            self.sock.sendto(forged, client)
            self.forged += 1
        other_port = dns.message.make_response(query)
        other_port.set_rcode(dns.rcode.NXDOMAIN)
        self.side.sendto(other_port.to_wire(), client)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as up:
            up.settimeout(3)
            up.sendto(wire, self.upstream)
            try:
                answer, _ = up.recvfrom(65535)
            except OSError:
                return
        self.sock.sendto(answer, client)
        self.relayed += 1

    def close(self) -> None:
        super().close()
        self.side.close()


@contextmanager
def silent_servers(count: int, first: int = 21) -> Iterator[list[Silent]]:
    servers = [Silent(f"{SILENT_PREFIX}{first + i}") for i in range(count)]
    try:
        yield servers
    finally:
        for s in servers:
            s.close()


@contextmanager
def spoofing_relay(upstream: str) -> Iterator[SpoofingRelay]:
    relay = SpoofingRelay(SPOOF_IP, (upstream, 53))
    try:
        yield relay
    finally:
        relay.close()
