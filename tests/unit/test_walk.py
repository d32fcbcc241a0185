"""The zone walk's pure parts: stepping past a delegation, stopping on white lies, choosing
NSEC3 query names in the unknown part of the ring, recovering names from words."""

from __future__ import annotations

import random

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rrset

from sigchain.core.walk.nsec import NsecWalk, past_subtree
from sigchain.core.walk.nsec3 import Nsec3Chain, Params, read_words, recover
from sigchain.core.zone.nsec3hash import nsec3_digest

APEX = dns.name.from_text("example.test.")


def name(text: str) -> dns.name.Name:
    return dns.name.from_text(text, APEX)


def reply_to(qname: dns.name.Name, rdtype: str, *, answer: list[str] = (),  # type: ignore[assignment]
             authority: list[str] = (), aa: bool = True,  # type: ignore[assignment]
             rcode: int = dns.rcode.NOERROR) -> dns.message.Message:
    r = dns.message.make_response(dns.message.make_query(qname, rdtype))
    r.flags = (r.flags | dns.flags.AA) if aa else (r.flags & ~dns.flags.AA)
    r.set_rcode(rcode)
    for section, lines in ((r.answer, answer), (r.authority, authority)):
        for line in lines:
            owner, rtype, rdata = line.split(" ", 2)
            section.append(dns.rrset.from_text(name(owner), 300, "IN", rtype, rdata))
    return r


def test_past_subtree_sorts_after_every_name_below() -> None:
    sub = name("sub")
    past = past_subtree(sub)
    assert past is not None
    assert sub < name("x.sub") < name("zzz.y.sub") < past < name("suba")


def test_nsec_walk_steps_past_a_delegation() -> None:
    walk = NsecWalk(APEX)
    assert walk.next_query() == (APEX, 47)
    walk.result(reply_to(APEX, "NSEC", answer=["@ NSEC sub.example.test. NS SOA RRSIG NSEC"]))
    assert walk.next_query() == (name("sub"), 47)
    walk.result(reply_to(name("sub"), "NSEC", authority=["sub NS ns.elsewhere."], aa=False))
    q = walk.next_query()
    assert q == (past_subtree(name("sub")), 1)
    walk.result(reply_to(q[0], "A", rcode=dns.rcode.NXDOMAIN, authority=[
        "sub NSEC www.example.test. NS RRSIG NSEC",
        "@ NSEC sub.example.test. NS SOA RRSIG NSEC"]))
    assert walk.next_query() == (name("www"), 47)
    walk.result(reply_to(name("www"), "NSEC", answer=["www NSEC example.test. A RRSIG NSEC"]))
    assert walk.next_query() is None and walk.complete
    assert list(walk.names) == [APEX, name("sub"), name("www")]
    assert walk.names[name("sub")] == ["NS", "NSEC", "RRSIG"]


def test_nsec_walk_stops_on_white_lies() -> None:
    walk = NsecWalk(APEX)
    walk.next_query()
    walk.result(reply_to(APEX, "NSEC", answer=["@ NSEC \\000.example.test. NS SOA RRSIG NSEC"]))
    assert walk.next_query() is None
    assert walk.white_lies and not walk.complete and "white lies" in walk.problem
    assert list(walk.names) == [APEX]


def _chain(names: list[dns.name.Name], params: Params) -> Nsec3Chain:
    chain = Nsec3Chain(APEX, params)
    hashes = sorted(nsec3_digest(n, params.salt, params.iterations) for n in names)
    for i, h in enumerate(hashes):
        chain.records[h] = (hashes[(i + 1) % len(hashes)], [])
    return chain


def test_recover_follows_empty_non_terminals_and_wildcards() -> None:
    params = Params(1, 2, b"\xab")
    zone_names = [APEX, name("www"), name("c"), name("b.c"), name("a.b.c"), name("*.c"),
                  name("secret")]
    chain = _chain(zone_names, params)
    assert chain.closed
    found = recover(chain, read_words(["www", "# comment", "", "a", "b", "c", "nothing"]))
    assert set(found.values()) == set(zone_names) - {name("secret")}


def test_pick_lands_in_the_unknown_stretch() -> None:
    params = Params(1, 0, b"")
    full = _chain([APEX, name("www"), name("mail")], params)
    first = min(full.records)
    partial = Nsec3Chain(APEX, params, {first: full.records[first]})
    assert not partial.closed
    (start, end), = partial.unknown()
    picked = partial.pick(random.Random(1))
    assert picked is not None
    h = partial.hash(picked)
    assert (start <= h < end) if start < end else (h >= start or h < end)
