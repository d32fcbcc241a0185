"""A hostile path between the resolver and its upstream (tests/interop/hostile_net.py's
spoofing relay in front of the lab's Unbound, on 127.55.0.19): replies with the wrong ID, for
another question, from another port, junk, and out-of-bailiwick extras in the real replies.
None of it is accepted or cached (counted: every forgery ignored, 0 accepted)."""

from __future__ import annotations

import socket
from pathlib import Path

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from sigchain.core.lab import hierarchy
from sigchain.services.resolver import ResolverService
from sigchain.services.resolverconfig import from_flags
from tests.interop import resolving
from tests.interop.hostile_net import SpoofingRelay
from tests.interop.test_resolver import lab  # noqa: F401 (the lab fixture)

RELAY = "127.55.0.19"
UPSTREAM = hierarchy.RESOLVERS["unbound"]
POISON = "192.0.2.66"
QUESTIONS = [("www.nsec.test.", "A"), ("mail.example.test.", "A"), ("nope.nsec.test.", "A"),
             ("www.insecure.test.", "A")]


class _Poisoning:
    """A relay socket whose real replies carry an extra A record for a name outside the
    question's zone (www.example.test.) in their additional section."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.poisoned = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.sock, name)

    def sendto(self, data: bytes, client: tuple[str, int]) -> int:
        try:
            m = dns.message.from_wire(data)
        except Exception:  # noqa: BLE001 (the forged junk: passed on as it is)
            return self.sock.sendto(data, client)
        if m.answer and m.question[0].name != dns.name.from_text("www.example.test."):
            m.additional.append(dns.rrset.from_text("www.example.test.", 300, "IN", "A", POISON))
            self.poisoned += 1
        return self.sock.sendto(m.to_wire(max_size=65535), client)


@pytest.mark.parametrize("way", resolving.WAYS)
def test_spoofed_replies_and_extras_are_never_accepted(lab: Path, way: str) -> None:  # noqa: F811
    relay = SpoofingRelay(RELAY, (UPSTREAM, 53))
    poisoning = relay.sock = _Poisoning(relay.sock)  # type: ignore[assignment]
    config = from_flags(anchor=str(lab / "anchor.ds"), forward=[f".={RELAY}"])
    service = ResolverService(config)
    try:
        results = {q: resolving.resolve(way, service, dns.name.from_text(q[0]),
                                        dns.rdatatype.from_text(q[1])) for q in QUESTIONS}
        assert relay.forged > 0 and relay.relayed > 0 and poisoning.poisoned > 0
        # every forgery that reached the resolver's port was ignored, and counted
        assert service.upstream.stats["ignored"] == relay.forged
        assert results[("www.nsec.test.", "A")].rcode == dns.rcode.NOERROR
        assert results[("mail.example.test.", "A")].answer
        assert results[("nope.nsec.test.", "A")].rcode == dns.rcode.NXDOMAIN
        assert all(e.status is not None and e.status.value != "bogus" for e in results.values())
        # the extra never became an answer: www.example.test. is asked of the upstream anew
        asked = service.upstream.stats["queries"]
        www = resolving.resolve(way, service, dns.name.from_text("www.example.test."), dns.rdatatype.A)
        assert service.upstream.stats["queries"] > asked
        assert [rd.address for r in www.answer if r.rdtype == dns.rdatatype.A for rd in r] == [
            hierarchy.record_addresses(hierarchy.zone("example.test."))["www"]]
    finally:
        service.close()
        relay.close()


class _Stuffing(_Poisoning):
    """A relay socket that adds unsigned records to the answer section of real answers: one
    at the name asked (another type) and one at another name of the zone."""

    def sendto(self, data: bytes, client: tuple[str, int]) -> int:
        try:
            m = dns.message.from_wire(data)
        except Exception:  # noqa: BLE001 (the forged junk: passed on as it is)
            return self.sock.sendto(data, client)
        if m.answer and m.question[0].rdtype == dns.rdatatype.A:
            name = m.question[0].name
            m.answer.append(dns.rrset.from_text(name, 300, "IN", "TXT", '"stuffed"'))
            m.answer.append(dns.rrset.from_text(dns.name.Name((b"evil", *name.labels[1:])), 300,
                                                "IN", "A", POISON))
            self.poisoned += 1
        return self.sock.sendto(m.to_wire(max_size=65535), client)


def test_records_beside_the_chain_in_an_answer_are_dropped(lab: Path) -> None:  # noqa: F811
    """Unsigned records a server adds to the answer section beside the data asked for never
    reach the client (they were given with AD, unchecked: the validator checks the chain)."""
    relay = SpoofingRelay(RELAY, (UPSTREAM, 53))
    stuffing = relay.sock = _Stuffing(relay.sock)  # type: ignore[assignment]
    service = ResolverService(from_flags(anchor=str(lab / "anchor.ds"), forward=[f".={RELAY}"]))
    try:
        for name in ("www.nsec.test.", "web.example.test."):
            entry = service.resolve(dns.name.from_text(name), dns.rdatatype.A)
            assert entry.status is not None and entry.status.value == "secure"
            assert {(r.rdtype, r.covers) for r in entry.answer} <= {
                (dns.rdatatype.A, 0), (dns.rdatatype.CNAME, 0),
                (dns.rdatatype.RRSIG, dns.rdatatype.A), (dns.rdatatype.RRSIG, dns.rdatatype.CNAME)}
            assert not [r for r in entry.answer if r.name.labels[0] == b"evil"]
        assert stuffing.poisoned > 0
    finally:
        service.close()
        relay.close()


class _Looping(_Poisoning):
    """A relay socket that answers www.insecure.test. A with a CNAME loop: www → loop → www."""

    def sendto(self, data: bytes, client: tuple[str, int]) -> int:
        try:
            m = dns.message.from_wire(data)
        except Exception:  # noqa: BLE001 (the forged junk: passed on as it is)
            return self.sock.sendto(data, client)
        www = dns.name.from_text("www.insecure.test.")
        if m.question and m.question[0].name == www and m.question[0].rdtype == dns.rdatatype.A:
            m.answer = [dns.rrset.from_text(www, 300, "IN", "CNAME", "loop.insecure.test."),
                        dns.rrset.from_text("loop.insecure.test.", 300, "IN", "CNAME", "www.insecure.test.")]
            m.authority, m.additional = [], []
            self.poisoned += 1
        return self.sock.sendto(m.to_wire(max_size=65535), client)


def test_a_cname_loop_within_one_reply_is_servfail(lab: Path) -> None:  # noqa: F811
    """RFC 1034 §5.2.2: an alias loop is an error passed back to the client, also where there
    is nothing to validate (insecure.test. is proven unsigned) and with CD: SERVFAIL, and an
    EDE that says it is a loop, not a validation failure."""
    relay = SpoofingRelay(RELAY, (UPSTREAM, 53))
    looping = relay.sock = _Looping(relay.sock)  # type: ignore[assignment]
    service = ResolverService(from_flags(anchor=str(lab / "anchor.ds"), forward=[f".={RELAY}"]))
    try:
        entry = service.resolve(dns.name.from_text("www.insecure.test."), dns.rdatatype.A)
        assert looping.poisoned > 0
        assert entry.rcode == dns.rcode.SERVFAIL and entry.status is None and not entry.answer
        assert entry.ede == ((23, "CNAME/DNAME loop: www.insecure.test. leads back to www.insecure.test."),)
    finally:
        service.close()
        relay.close()
