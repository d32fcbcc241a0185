"""`sigchain resolver --forward` validates locally what its forwarders return: behind a small
proxy that strips RRSIGs (127.55.0.9, in front of the lab's Unbound) it answers SERVFAIL with
EDE 10 and logs the forwarder by name; once the proxy passes everything through, the same
resolver validates (AD). And `require-secure`: insecure answers under the listed names are
SERVFAIL with an EDE saying so, unlisted insecure names still resolve."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from sigchain.core.lab import hierarchy
from sigchain.core.resolve.respond import read_query, render
from sigchain.services.resolver import ResolverService
from sigchain.services.resolverconfig import from_flags
from tests.conftest import sigchain_cmd, terminate
from tests.interop.test_resolver import _wait_ready, lab  # noqa: F401 (the lab fixture)

PROXY, RESOLVER = "127.55.0.9", "127.55.0.8"
UPSTREAM = hierarchy.RESOLVERS["unbound"]


class StrippingProxy:
    """UDP to the lab's Unbound and back; with `strip`, every RRSIG is taken out of the reply
    (the seed's incident: a forwarder that drops DNSSEC records)."""

    def __init__(self, address: str):
        self.strip = True
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((address, 53))
        self.sock.settimeout(0.2)
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping:
            try:
                wire, client = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            threading.Thread(target=self._relay, args=(wire, client), daemon=True).start()

    def _relay(self, wire: bytes, client: tuple[str, int]) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as up:
            up.settimeout(5)
            up.connect((UPSTREAM, 53))
            up.send(wire)
            try:
                reply = up.recv(65535)
            except TimeoutError:
                return
        if self.strip:
            m = dns.message.from_wire(reply)
            for section in (m.answer, m.authority, m.additional):
                section[:] = [r for r in section if r.rdtype != dns.rdatatype.RRSIG]
            reply = m.to_wire(max_size=65535)
        self.sock.sendto(reply, client)

    def close(self) -> None:
        self.stopping = True
        self.thread.join()
        self.sock.close()


@pytest.fixture(scope="module")
def forwarding(lab: Path) -> Iterator[tuple[StrippingProxy, Path]]:  # noqa: F811
    proxy = StrippingProxy(PROXY)
    log = lab / "forwarding-resolver.log"
    with log.open("w") as out:
        proc = subprocess.Popen([*sigchain_cmd(), "resolver", "--listen", RESOLVER, "--forward",
                                 f".={PROXY}", "--anchor", str(lab / "anchor.ds")],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_ready(proc, log)
        yield proxy, log
    finally:
        terminate(proc)
        proxy.close()


def ask(name: str) -> dns.message.Message:
    q = dns.message.make_query(name, "A", use_edns=0, want_dnssec=True)
    return dns.query.udp(q, RESOLVER, timeout=15)


def test_a_forwarder_that_strips_rrsigs_is_named_and_a_transparent_one_validates(forwarding) -> None:
    proxy, log = forwarding
    m = ask("www.example.test")
    assert m.rcode() == dns.rcode.SERVFAIL and not m.answer
    edes = [(int(o.code), o.text or "") for o in m.options if isinstance(o, dns.edns.EDEOption)]
    assert edes[0][0] == 10 and f"{PROXY} strips DNSSEC records" in edes[0][1], edes
    assert f"{PROXY} strips DNSSEC records" in log.read_text()
    proxy.strip = False
    m = ask("mail.example.test")
    assert m.rcode() == dns.rcode.NOERROR and m.flags & dns.flags.AD and m.answer


def test_require_secure_fails_insecure_names_under_it_only(lab: Path) -> None:  # noqa: F811
    config = from_flags(anchor=str(lab / "anchor.ds"), root_hints=str(lab / "root.hints"),
                        require_secure=["insecure.test."])
    service = ResolverService(config)
    try:
        q = read_query(dns.message.make_query("www.insecure.test.", "A", use_edns=0).to_wire(), False)
        entry = service.resolve(q.qname, q.qtype)
        m = dns.message.from_wire(render(q, entry, entry.stored))
        assert m.rcode() == dns.rcode.SERVFAIL and not m.answer
        [(code, text)] = [(int(o.code), o.text) for o in m.options if isinstance(o, dns.edns.EDEOption)]
        assert code == 28 and "insecure.test. requires DNSSEC" in text and "insecure" in text
        other = service.resolve(dns.name.from_text("www.unsigned.optout.test."), dns.rdatatype.A)
        assert other.rcode == dns.rcode.NOERROR and other.answer and other.status is not None
        secure = service.resolve(dns.name.from_text("www.example.test."), dns.rdatatype.A)
        assert secure.status is not None and secure.status.value == "secure"
    finally:
        service.close()


def test_a_silent_forwarder_is_held_down_across_questions(lab: Path) -> None:  # noqa: F811
    """The first question waits for a forwarder that never answers, then asks the next; the
    following questions skip it (ranked by measured RTT, as Unbound's infra cache) and answer
    at once. The good upstream starts measured as slow (500 ms), so that the silent one, never
    measured (a few ms), is asked first."""
    from tests.interop.hostile_net import Silent

    silent = Silent("127.55.0.71")
    config = from_flags(anchor=str(lab / "anchor.ds"), forward=[f".=127.55.0.71,{UPSTREAM}"])
    service = ResolverService(config)
    service.upstream.selection.answered(config.forward[0][1][1], 0.5)
    try:
        started = time.monotonic()
        first = service.resolve(dns.name.from_text("www.example.test."), dns.rdatatype.A)
        waited = time.monotonic() - started
        assert first.status is not None and first.status.value == "secure" and waited >= 1.0
        heard = silent.received
        started = time.monotonic()
        second = service.resolve(dns.name.from_text("mail.nsec.test."), dns.rdatatype.A)
        assert second.status is not None and second.status.value == "secure"
        assert time.monotonic() - started < 1.0 and silent.received == heard
    finally:
        service.close()
        silent.close()
