"""The forwarder probe (services/resolverupstream.py `Upstream.probing`), driven without
sockets: what a forwarder's reply to a DNSKEY query with DO and CD says about it."""

from __future__ import annotations

import threading

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rrset
import pytest

from sigchain.core.resolve.cache import Cache
from sigchain.core.resolve.exchange import Reply
from sigchain.core.validate.anchors import Server
from sigchain.services.resolverupstream import Upstream

FORWARDER = Server("192.0.2.9")
ZONE = dns.name.from_text("corp.example.")
KEY = dns.rrset.from_text(ZONE, 300, "IN", "DNSKEY", "257 3 13 AAAA")
SIG = dns.rrset.from_text(ZONE, 300, "IN", "RRSIG", "DNSKEY 13 2 300 20300101000000 "
                          "20200101000000 1 corp.example. AAAA")


def verdict(make) -> str:  # type: ignore[no-untyped-def]
    """What the probe concludes when the forwarder answers with `make(query)`."""
    probe = Upstream((), Cache(), threading.Lock()).probing(FORWARDER, ZONE)
    server, query, _timeout = next(probe)
    assert server == FORWARDER and query.question[0].name == ZONE
    assert query.flags & dns.flags.CD and query.ednsflags & dns.flags.DO
    try:
        probe.send(Reply(FORWARDER, make(query), False, 512))
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    raise AssertionError("the probe asked twice")


def answer(query: dns.message.Message, *rrsets: dns.rrset.RRset, rcode: int = dns.rcode.NOERROR,
           do: bool = True) -> dns.message.Message:
    r = dns.message.make_response(query)
    r.use_edns(0, dns.flags.DO if do else 0, 1232)
    r.answer.extend(rrsets)
    r.set_rcode(rcode)
    return r


def test_a_forwarder_passing_keys_and_signatures_is_fine() -> None:
    assert verdict(lambda q: answer(q, KEY, SIG)) == ""


@pytest.mark.parametrize("make, said", [
    (lambda q: answer(q, KEY), "strips DNSSEC records (no RRSIG)"),
    (lambda q: answer(q), "strips DNSSEC records (no DNSKEY)"),
    (lambda q: answer(q, KEY, do=False), "ignores DO"),
])
def test_a_forwarder_losing_dnssec_records_is_named(make, said: str) -> None:  # type: ignore[no-untyped-def]
    assert verdict(make).startswith(said)


@pytest.mark.parametrize("rcode", [dns.rcode.REFUSED, dns.rcode.SERVFAIL])
def test_a_refused_or_failed_probe_names_nothing(rcode: int) -> None:
    """A forwarder for some private zone may refuse the keys asked for: that is no sign that
    it strips DNSSEC records, even with no OPT record in the refusal."""
    assert verdict(lambda q: answer(q, rcode=rcode, do=False)) == ""
