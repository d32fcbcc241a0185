"""The resolver's cache and response rendering (pure, told the time): RFC 2308 negative TTLs,
caps, bogus kept briefly, the byte bound with LRU eviction; AD/DO/CD rules, EDE, truncation."""

from __future__ import annotations

import time

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from sigchain.core.resolve.cache import Answer, Cache, CacheLimits, data_ttl
from sigchain.core.resolve.respond import Unanswerable, read_query, render
from sigchain.core.validate.verdict import Status

NOW = 1_800_000_000
A = dns.rdatatype.A


def rrset(text: str) -> dns.rrset.RRset:
    name, ttl, rdtype, *data = text.split(None, 3)
    return dns.rrset.from_text(name, int(ttl), "IN", rdtype, *data)


SEL_SOA = (rrset("sel. 300 SOA ns.sel. hostmaster.sel. 1 7200 3600 1209600 300"),)


def soa(ttl: int, minimum: int) -> dns.rrset.RRset:
    return rrset(f"example. {ttl} SOA ns.example. host.example. 1 7200 3600 1209600 {minimum}")


@pytest.mark.parametrize("soa_ttl,minimum,expect", [(300, 60, 60), (30, 600, 30), (9000, 9000, 3600)])
def test_negative_ttl_is_the_smaller_of_soa_ttl_and_minimum_capped(soa_ttl: int, minimum: int,
                                                                   expect: int) -> None:
    limits = CacheLimits(max_negative_ttl=3600)
    assert data_ttl(dns.rcode.NXDOMAIN, A, (), (soa(soa_ttl, minimum),), limits) == expect
    # NODATA is negative too
    assert data_ttl(dns.rcode.NOERROR, A, (), (soa(soa_ttl, minimum),), limits) == expect


def test_positive_ttl_capped_both_ways() -> None:
    limits = CacheLimits(max_ttl=100, min_ttl=10)
    assert data_ttl(0, A, (rrset("a.example. 5000 A 192.0.2.1"),), (), limits) == 100
    assert data_ttl(0, A, (rrset("a.example. 2 A 192.0.2.1"),), (), limits) == 10
    assert data_ttl(0, A, (rrset("a.example. 50 A 192.0.2.1"), rrset("a.example. 40 RRSIG A 13 2 "
                    "50 20300101000000 20200101000000 1 example. AAAA")), (), limits) == 40


def entry(status: Status | None, ttl: int = 300, name: str = "a.example.") -> Answer:
    return Answer(0, (rrset(f"{name} {ttl} A 192.0.2.1"),), (), status, (), NOW, ttl)


def test_bogus_and_failures_are_kept_briefly() -> None:
    cache = Cache(CacheLimits(bogus_ttl=7, failure_ttl=3))
    name = dns.name.from_text("a.example.")
    cache.store_answer(name, A, entry(Status.BOGUS))
    assert cache.answer(name, A, NOW + 6) is not None
    assert cache.answer(name, A, NOW + 7) is None
    cache.store_answer(name, A, entry(None))
    assert cache.answer(name, A, NOW + 2) is not None and cache.answer(name, A, NOW + 3) is None
    cache.store_answer(name, A, entry(Status.SECURE))
    assert cache.answer(name, A, NOW + 299) is not None and cache.answer(name, A, NOW + 300) is None


def test_byte_bound_evicts_the_least_recently_used() -> None:
    one = Cache().store_answer(dns.name.from_text("x.example."), A, entry(Status.SECURE)).size
    cache = Cache(CacheLimits(max_bytes=one * 10 + one // 2))
    names = [dns.name.from_text(f"n{i:03d}.example.") for i in range(30)]
    for n in names:
        cache.store_answer(n, A, entry(Status.SECURE, name=n.to_text()))
        assert cache.answer(names[0], A, NOW) is not None  # kept warm: never the LRU one
        assert cache.size <= cache.limits.max_bytes
    assert len(cache) == 10 and cache.stats["evicted"] == 20
    assert cache.answer(names[-1], A, NOW) is not None and cache.answer(names[1], A, NOW) is None


def test_zone_entries_found_for_names_below_them_until_they_go() -> None:
    from sigchain.core.validate.anchors import Server

    n = dns.name.from_text
    cache = Cache()
    cache.store_delegation(n("Example.TEST."), [Server("127.0.0.1")], 60, NOW)
    cache.store_delegation(n("test."), [Server("127.0.0.2")], 600, NOW)
    cache.store_insecure(n("sub.example.test."), 30, NOW)
    found = cache.delegations(n("www.sub.EXAMPLE.test."), NOW)
    assert list(found) == [n("example.test."), n("test.")]  # deepest first
    assert [k.to_text() for k in found] == ["EXAMPLE.test.", "test."]  # the name asked about
    assert cache.insecure_zone(n("a.b.sub.example.test."), NOW) == n("sub.example.test.")
    assert cache.insecure_zone(n("example.test."), NOW) is None
    assert list(cache.delegations(n("www.example.test."), NOW + 60)) == [n("test.")]  # expired
    cache.store_delegation(n("example.test."), [Server("127.0.0.3")], 60, NOW + 60)  # again
    assert cache.delegations(n("www.example.test."), NOW + 61)[n("example.test.")] == \
        (Server("127.0.0.3"),)
    cache.flush()
    assert cache.delegations(n("www.example.test."), NOW) == {}
    one = Cache()
    one.store_delegation(n("a."), [Server("127.0.0.1")], 60, NOW)
    small = Cache(CacheLimits(max_bytes=one.size))
    small.store_delegation(n("a."), [Server("127.0.0.1")], 60, NOW)
    small.store_delegation(n("b."), [Server("127.0.0.1")], 60, NOW)  # evicts a.
    assert small.delegations(n("x.a."), NOW) == {} and list(small.delegations(n("x.b."), NOW)) == [n("b.")]


def test_upstream_messages_count_down_and_drop_the_additional_section() -> None:
    cache = Cache()
    q = dns.message.make_query("a.example.", "A")
    r = dns.message.make_response(q)
    r.answer.append(rrset("a.example. 100 A 192.0.2.1"))
    r.additional.append(rrset("evil.other. 100 A 192.0.2.66"))
    cache.store_message(dns.name.from_text("a.example."), A, r, NOW)
    m = cache.message(dns.name.from_text("a.example."), A, NOW + 30)
    assert m is not None and m.answer[0].ttl == 70 and not m.additional
    # within one second the same copy (the validator's memo knows its RRsets); then a new one
    assert cache.message(dns.name.from_text("a.example."), A, NOW + 30) is m
    later = cache.message(dns.name.from_text("a.example."), A, NOW + 31)
    assert later is not None and later is not m and later.answer[0].ttl == 69
    assert cache.message(dns.name.from_text("a.example."), A, NOW + 100) is None


# ---- rendering -----------------------------------------------------------------------------

def query(do: bool = True, cd: bool = False, ad: bool = False, edns: bool = True,
          tcp: bool = False, name: str = "a.example.", payload: int = 1232):
    q = dns.message.make_query(name, "A", use_edns=0 if edns else False, want_dnssec=do,
                               payload=payload)
    q.flags |= (dns.flags.CD if cd else 0) | (dns.flags.AD if ad else 0)
    return read_query(q.to_wire(), tcp)


SIGNED = Answer(0, (rrset("a.example. 300 A 192.0.2.1"), rrset(
    "a.example. 300 RRSIG A 13 2 300 20300101000000 20200101000000 1 example. AAAA")), (),
    Status.SECURE, (), NOW, 300)


def test_ad_only_on_secure_data_when_asked_and_rrsigs_only_with_do() -> None:
    m = dns.message.from_wire(render(query(), SIGNED, NOW + 10))
    assert m.flags & dns.flags.AD and len(m.answer) == 2 and m.answer[0].ttl == 290
    plain = dns.message.from_wire(render(query(do=False), SIGNED, NOW))
    assert not plain.flags & dns.flags.AD and len(plain.answer) == 1
    ad = dns.message.from_wire(render(query(do=False, ad=True), SIGNED, NOW))
    assert ad.flags & dns.flags.AD and len(ad.answer) == 1
    insecure = Answer(0, SIGNED.answer[:1], (), Status.INSECURE, ((1, "alg 253"),), NOW, 300)
    m = dns.message.from_wire(render(query(ad=True), insecure, NOW))
    assert not m.flags & dns.flags.AD and [o.code for o in m.options] == [1]


def test_bogus_is_servfail_with_ede_unless_cd() -> None:
    bogus = Answer(0, SIGNED.answer, (), Status.BOGUS, ((7, "RRSIG expired"),), NOW, 60)
    m = dns.message.from_wire(render(query(), bogus, NOW))
    assert m.rcode() == dns.rcode.SERVFAIL and not m.answer
    assert [(o.code, o.text) for o in m.options if isinstance(o, dns.edns.EDEOption)] == [(7, "RRSIG expired")]
    cd = dns.message.from_wire(render(query(cd=True), bogus, NOW))
    assert cd.rcode() == dns.rcode.NOERROR and cd.answer and not cd.flags & dns.flags.AD
    assert cd.flags & dns.flags.CD
    plain = dns.message.from_wire(render(query(do=False, edns=False), bogus, NOW))
    assert plain.rcode() == dns.rcode.SERVFAIL and plain.edns < 0  # no EDNS: no EDE


def test_too_big_for_udp_is_truncated_and_fits_over_tcp() -> None:
    big = dns.rrset.from_text("a.example.", 300, "IN", "TXT", *[f'"{i} {"x" * 200}"' for i in range(10)])
    e = Answer(0, (big,), (), Status.INSECURE, (), NOW, 300)
    q = dns.message.make_query("a.example.", "TXT", use_edns=0, payload=1232)
    udp = dns.message.from_wire(render(read_query(q.to_wire(), False), e, NOW))
    assert udp.flags & dns.flags.TC and not udp.answer
    tcp = dns.message.from_wire(render(read_query(q.to_wire(), True), e, NOW))
    assert not tcp.flags & dns.flags.TC and tcp.answer


@pytest.mark.parametrize("make,rcode", [
    (lambda: dns.message.make_query("a.example.", "AXFR"), dns.rcode.REFUSED),
    (lambda: dns.message.make_query("a.example.", "A", rdclass="CH"), dns.rcode.REFUSED),
])
def test_queries_a_resolver_does_not_answer(make, rcode: int) -> None:
    with pytest.raises(Unanswerable) as bad:
        read_query(make().to_wire(), False)
    assert bad.value.wire is not None and dns.message.from_wire(bad.value.wire).rcode() == rcode
    with pytest.raises(Unanswerable) as junk:
        read_query(b"\x12\x34\x01\x00\x00\x01" + bytes(6) + b"\x03ab", False)
    assert junk.value.wire is not None and junk.value.wire[:2] == b"\x12\x34"


# ---- telling a plain query from the wire --------------------------------------------------------

def test_plain_question_finds_the_question_and_the_opt_record() -> None:
    from sigchain.core.resolve.fastpath import plain_question

    wire = dns.message.make_query("WwW.example.", "A").to_wire()
    assert plain_question(wire) == (len(wire), None)
    edns = dns.message.make_query("WwW.example.", "A", use_edns=0, want_dnssec=True).to_wire()
    assert plain_question(edns) == (len(wire), len(wire))  # the OPT record right after it
    q = dns.message.make_query("www.example.", "A")
    q.flags |= dns.flags.CD
    assert plain_question(q.to_wire()) == (len(wire), None)


@pytest.mark.parametrize("make", [
    lambda: dns.message.make_query("a.example.", "A", use_edns=1),  # EDNS version 1: BADVERS
    lambda: dns.message.make_response(dns.message.make_query("a.example.", "A")),  # a response
    lambda: dns.message.Message(),  # no question
])
def test_anything_unusual_takes_the_full_parser(make) -> None:
    from sigchain.core.resolve.fastpath import plain_question
    assert plain_question(make().to_wire()) is None
    wire = dns.message.make_query("a.example.", "A").to_wire()
    assert plain_question(wire[:-2]) is None and plain_question(wire + b"\x00") is None


def _query(rdtype: str = "A", opcode: str = "QUERY", flags: int = 0) -> bytes:
    q = dns.message.make_query("a.example.", rdtype)
    q.set_opcode(dns.opcode.from_text(opcode))
    q.flags |= flags
    return q.to_wire()


@pytest.mark.parametrize("wire,rcode", [
    (_query("MAILB"), dns.rcode.FORMERR), (_query("TKEY"), dns.rcode.FORMERR),
    (_query("TYPE200"), dns.rcode.FORMERR), (_query("AXFR"), dns.rcode.REFUSED),
    (_query(flags=dns.flags.TC), dns.rcode.FORMERR),  # a query is never truncated
    (_query(opcode="NOTIFY"), dns.rcode.REFUSED), (_query("SOA", opcode="UPDATE"), dns.rcode.NOTIMP),
    (_query("A", opcode="UPDATE"), dns.rcode.NOTIMP),  # a zone section dnspython will not read
    # a DSO keepalive (RFC 8490: opcode 6, a TLV after the header): not implemented, not junk
    (b"\x12\x34\x30\x00" + bytes(8) + b"\x00\x01\x00\x08" + bytes(8), dns.rcode.NOTIMP),
], ids=["MAILB", "TKEY", "TYPE200", "AXFR", "TC", "NOTIFY", "UPDATE", "UPDATE-A", "DSO"])
def test_queries_a_resolver_does_not_resolve(wire: bytes, rcode: int) -> None:
    """As Unbound: meta-types and a truncated query are malformed, transfers and NOTIFY
    refused, other opcodes not implemented — none is asked upstream."""
    from sigchain.core.resolve.respond import Unanswerable, read_query
    with pytest.raises(Unanswerable) as out:
        read_query(wire, False)
    assert out.value.wire is not None and out.value.rcode == rcode
    assert read_query(_query("TYPE65534"), False).qtype == 65534  # an unknown type is data


def test_aggressive_nsec_offers_a_proof_only_when_a_kept_record_covers_the_name() -> None:
    """RFC 8198 candidates: a kept apex NSEC that covers only the wildcard proves nothing
    about n5.sel. (no validation is tried for it); an NSEC covering the name itself does."""
    from sigchain.core.resolve.aggressive import ZoneDenials, candidates

    kept = ZoneDenials(dns.name.from_text("sel."), SEL_SOA, ())
    kept.add([rrset("sel. 300 NSEC n0.sel. NS SOA RRSIG NSEC DNSKEY"),
              rrset("n101.sel. 300 NSEC n102.sel. A RRSIG NSEC")])
    assert candidates(kept, dns.name.from_text("n5.sel."), dns.rdatatype.A) == []
    assert candidates(kept, dns.name.from_text("x.n5.sel."), dns.rdatatype.A) == []
    found = candidates(kept, dns.name.from_text("n1015.sel."), dns.rdatatype.A)
    assert [e.rcode for e in found] == [dns.rcode.NXDOMAIN, dns.rcode.NOERROR]
    nodata = candidates(kept, dns.name.from_text("n101.sel."), dns.rdatatype.AAAA)
    # the name exists (an NSEC at it): only NODATA, from that NSEC alone (all such a proof needs)
    assert [(e.rcode, [r.rdtype for r in e.authority]) for e in nodata] == [
        (dns.rcode.NOERROR, [dns.rdatatype.SOA, dns.rdatatype.NSEC])]
    assert nodata[0].authority[1].name == dns.name.from_text("n101.sel.")
    # no negative answer without the zone's SOA (RFC 2308 §3); a wildcard expansion needs none
    bare = ZoneDenials(kept.zone, (), (), kept.records)
    assert candidates(bare, dns.name.from_text("n1015.sel."), dns.rdatatype.A) == []
    assert candidates(bare, dns.name.from_text("n101.sel."), dns.rdatatype.AAAA) == []


def test_aggressive_nsec_nxdomain_offers_a_servers_proof_first() -> None:
    """For a.c.sel. under a kept NSEC at c.sel. (next d.sel.), which covers both a.c.sel. and
    the wildcard *.c.sel. at the closest encloser c.sel.: that one record is the NXDOMAIN
    proof a server gives (RFC 4035 §3.1.3.2) and is offered first; the apex NSEC, which
    bears on sel. and *.sel. only, comes with the fallback proof of every record found."""
    from sigchain.core.resolve.aggressive import ZoneDenials, candidates

    apex = rrset("sel. 300 NSEC a.sel. NS SOA RRSIG NSEC DNSKEY")
    c = rrset("c.sel. 300 NSEC d.sel. A RRSIG NSEC")
    kept = ZoneDenials(dns.name.from_text("sel."), SEL_SOA, ())
    kept.add([apex, c])
    found = candidates(kept, dns.name.from_text("a.c.sel."), dns.rdatatype.A)
    assert [e.rcode for e in found] == [dns.rcode.NXDOMAIN, dns.rcode.NXDOMAIN, dns.rcode.NOERROR]
    assert list(found[0].authority) == [*SEL_SOA, c]
    assert {r.name for r in found[1].authority[len(SEL_SOA):]} == {apex.name, c.name}
    # cc.sel.'s closest encloser is the apex: *.sel.'s cover is needed too (no shorter proof)
    found = candidates(kept, dns.name.from_text("cc.sel."), dns.rdatatype.A)
    assert [e.rcode for e in found] == [dns.rcode.NXDOMAIN, dns.rcode.NOERROR]
    assert {r.name for r in found[0].authority[len(SEL_SOA):]} == {apex.name, c.name}


def _hashed(text: str) -> int:
    """The NSEC3 hash (no salt, no iterations) of a name, as an integer."""
    from sigchain.core.zone.nsec3hash import kept_digest

    return int.from_bytes(kept_digest(dns.name.from_text(text), b"", 0), "big")


def _nsec3(first: int, after: int, types: str = "A RRSIG") -> dns.rrset.RRset:
    """An NSEC3 record of sel. from hash `first` to hash `after`."""
    import base64

    def owner(h: int) -> str:
        return base64.b32encode(h.to_bytes(20, "big")).decode().translate(
            str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", "0123456789ABCDEFGHIJKLMNOPQRSTUV"))

    return rrset(f"{owner(first)}.sel. 300 NSEC3 1 0 0 - {owner(after)} {types}")


def test_aggressive_nsec3_nxdomain_offers_a_servers_proof_first() -> None:
    """For a.b.sel. under kept NSEC3 records matching sel. and covering b.sel., *.sel. and
    a.b.sel.: the NXDOMAIN proof a server gives (RFC 5155 §7.2.2: closest encloser sel.
    matched, next closer b.sel. and wildcard *.sel. covered) is offered first; then every
    record found, a.b.sel.'s cover too."""
    from sigchain.core.resolve.aggressive import ZoneDenials, candidates

    apex, b, wild, ab = (_hashed(n) for n in ("sel.", "b.sel.", "*.sel.", "a.b.sel."))
    match, cover_b, cover_wild, cover_ab = (_nsec3(apex, apex + 1), _nsec3(b - 1, b + 1),
                                           _nsec3(wild - 1, wild + 1), _nsec3(ab - 1, ab + 1))
    kept = ZoneDenials(dns.name.from_text("sel."), SEL_SOA, ())
    kept.add([cover_ab, cover_wild, match, cover_b])
    found = candidates(kept, dns.name.from_text("a.b.sel."), dns.rdatatype.A)
    assert [e.rcode for e in found] == [dns.rcode.NXDOMAIN, dns.rcode.NXDOMAIN, dns.rcode.NOERROR]
    assert list(found[0].authority) == [*SEL_SOA, match, cover_b, cover_wild]
    assert {r.name for r in found[1].authority[1:]} == {
        r.name for r in (match, cover_b, cover_wild, cover_ab)}


def test_aggressive_offers_nothing_below_a_delegation_or_dname() -> None:
    """A name below a delegation (NS without SOA) or a DNAME that a kept record matches is in
    a child zone, or redirected: no record of the parent can deny it (RFC 6840 §3.1) and the
    validator refuses every such proof, so none is offered (no signature checked for it);
    the delegation's own name, and names beside it, still get theirs."""
    from sigchain.core.resolve.aggressive import ZoneDenials, candidates

    kept = ZoneDenials(dns.name.from_text("sel."), SEL_SOA, ())
    kept.add([rrset("sel. 300 NSEC child.sel. NS SOA RRSIG NSEC DNSKEY"),
              rrset("child.sel. 300 NSEC dn.sel. NS RRSIG NSEC"),
              rrset("dn.sel. 300 NSEC z.sel. DNAME RRSIG NSEC")])
    for below in ("x.child.sel.", "a.b.child.sel.", "x.dn.sel."):
        assert candidates(kept, dns.name.from_text(below), dns.rdatatype.A) == [], below
    assert candidates(kept, dns.name.from_text("d.sel."), dns.rdatatype.A)  # beside: covered
    # NSEC3: the deepest ancestor matched is the delegation (NS, no SOA, not opt-out)
    apex, child, ab = (_hashed(n) for n in ("sel.", "child.sel.", "a.child.sel."))
    kept = ZoneDenials(dns.name.from_text("sel."), SEL_SOA, ())
    kept.add([_nsec3(apex, apex + 1, "NS SOA RRSIG"), _nsec3(child, child + 1, "NS RRSIG"),
              _nsec3(ab - 1, ab + 1)])
    assert candidates(kept, dns.name.from_text("a.child.sel."), dns.rdatatype.A) == []
    kept = ZoneDenials(dns.name.from_text("sel."), SEL_SOA, ())
    kept.add([_nsec3(apex, apex + 1, "NS SOA RRSIG"), _nsec3(child, child + 1, "A RRSIG"),
              _nsec3(ab - 1, ab + 1)])
    assert candidates(kept, dns.name.from_text("a.child.sel."), dns.rdatatype.A)  # not a cut


def test_aggressive_offers_no_nodata_the_bitmap_refuses() -> None:
    """At a name a kept record matches, NODATA is offered only when its type bitmap allows it:
    not for a type it lists, not at a CNAME, not at a delegation (the validator refuses all
    three: no signature is checked for them); for another type it is."""
    from sigchain.core.resolve.aggressive import ZoneDenials, candidates

    kept = ZoneDenials(dns.name.from_text("sel."), SEL_SOA, ())
    kept.add([rrset("a.sel. 300 NSEC c.sel. A TXT RRSIG NSEC"),
              rrset("c.sel. 300 NSEC d.sel. CNAME RRSIG NSEC"),
              rrset("d.sel. 300 NSEC e.sel. NS RRSIG NSEC")])
    for name, rdtype in (("a.sel.", "A"), ("a.sel.", "TXT"), ("c.sel.", "A"), ("d.sel.", "A")):
        assert candidates(kept, dns.name.from_text(name), dns.rdatatype.from_text(rdtype)) == [], name
    nodata = candidates(kept, dns.name.from_text("a.sel."), dns.rdatatype.AAAA)
    assert [(e.rcode, e.authority[-1].name) for e in nodata] == [
        (dns.rcode.NOERROR, dns.name.from_text("a.sel."))]


def test_aggressive_nsec3_work_stays_within_the_policy() -> None:
    """RFC 8198 candidates from kept NSEC3 records: none from a record over the iteration
    limit (never a secure proof), and none once the hashes of several parameter sets would
    exceed max_nsec3_hashes (each set costs one hash per target: n5.sel., *.sel., sel.)."""
    import dataclasses

    from sigchain.core.dnssec.policy import DEFAULT_POLICY
    from sigchain.core.resolve.aggressive import ZoneDenials, candidates

    def kept(*params: tuple[int, str]) -> ZoneDenials:
        d = ZoneDenials(dns.name.from_text("sel."), SEL_SOA, ())
        d.add([rrset(f"{i:032d}.sel. 300 NSEC3 1 0 {it} {salt} {'V' * 32} A RRSIG")
               for i, (it, salt) in enumerate(params)])
        return d

    def limited(hashes: int):  # type: ignore[no-untyped-def]
        return dataclasses.replace(DEFAULT_POLICY, limits=dataclasses.replace(
            DEFAULT_POLICY.limits, max_nsec3_hashes=hashes))

    name = dns.name.from_text("n5.sel.")
    assert candidates(kept((0, "-")), name, dns.rdatatype.A)
    assert candidates(kept((150, "-")), name, dns.rdatatype.A)
    assert candidates(kept((151, "-")), name, dns.rdatatype.A) == []
    two = kept((0, "-"), (1, "AB"))
    assert candidates(two, name, dns.rdatatype.A, limited(6))
    assert candidates(two, name, dns.rdatatype.A, limited(5)) == []


def test_only_verified_denial_records_are_kept() -> None:
    """What a secure answer brought along unverified (no "rrsig" link) is not kept."""
    from sigchain.core.resolve.aggressive import verified_only
    from sigchain.core.validate.verdict import Link

    sel = dns.name.from_text("sel.")
    rrsets = [rrset("a.sel. 300 NSEC b.sel. A RRSIG NSEC"),
              rrset("a.sel. 300 RRSIG NSEC 13 2 300 20261231000000 20261201000000 1 sel. AAAA"),
              rrset("x.sel. 300 NSEC z.sel. A RRSIG NSEC"),
              rrset("x.sel. 300 RRSIG NSEC 13 2 300 20261231000000 20261201000000 1 sel. AAAA")]
    links = [Link(sel, "rrsig", dns.name.from_text("a.sel."), dns.rdatatype.NSEC, 1, 13),
             Link(sel, "denial", dns.name.from_text("x.sel."), dns.rdatatype.NSEC)]
    assert verified_only(rrsets, links) == rrsets[:2]


def test_kept_denials_read_while_another_thread_adds_to_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """A resolution thread keeps new NSEC records (under the cache lock) while the event loop
    or another thread reads the zone's records without it: the reader goes over the records
    as they were, never failing with "dictionary changed size during iteration"."""
    from sigchain.core.resolve import aggressive
    from sigchain.core.validate.proofs import NsecRecord

    kept = aggressive.ZoneDenials(dns.name.from_text("sel."), SEL_SOA, ())
    kept.add([rrset("sel. 300 NSEC n0.sel. NS SOA RRSIG NSEC DNSKEY"),
              rrset("n101.sel. 300 NSEC n102.sel. A RRSIG NSEC")])
    covers = NsecRecord.covers_key
    added = []

    def meanwhile(self: NsecRecord, key: object) -> bool:  # another thread's add, mid-read
        if not added:
            added.append(True)
            kept.add([rrset(f"n{i}x.sel. 300 NSEC n{i}y.sel. A RRSIG NSEC") for i in range(3)])
        return covers(self, key)  # type: ignore[arg-type]

    monkeypatch.setattr(NsecRecord, "covers_key", meanwhile)
    found = aggressive.candidates(kept, dns.name.from_text("n1015.sel."), dns.rdatatype.A)
    assert added and [e.rcode for e in found] == [dns.rcode.NXDOMAIN, dns.rcode.NOERROR]
    assert len(kept.records) == 5


def test_verified_signatures_are_remembered_by_rdata_objects_and_times_still_count(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With a memo (the resolver's), the same rdata objects validated again cost no signature
    verification, even in a new RRset object (replywire hands out copies sharing rdata); an
    equal RRset made of new rdata objects, or no memo, costs them again; and a memo hit still
    checks the RRSIG's validity window against `now`."""
    from sigchain.core.dnssec import algorithms
    from sigchain.core.validate.memo import Verified
    from sigchain.core.validate.validator import Evidence, Question, validate
    from tests.unit.test_validator_limits import EXPIRATION, NOW, TrapZone, _counted

    calls = _counted(monkeypatch, algorithms, "verify")
    zone = TrapZone(0)
    answer = zone.signed("www.trap.test.", "A", "192.0.2.1", garbage=0)
    ev = Evidence(Question(dns.name.from_text("www.trap.test."), A), 0, answer, (), (zone.cut,))
    memo = Verified(100)
    assert validate(ev, zone.anchor, NOW, verified=memo).status is Status.SECURE
    assert len(calls) == 2  # the DNSKEY RRset and the A RRset
    assert validate(ev, zone.anchor, NOW, verified=memo).status is Status.SECURE
    assert len(calls) == 2
    copy = Evidence(ev.question, 0, tuple(r.copy() for r in answer), (), (zone.cut,))
    assert validate(copy, zone.anchor, NOW, verified=memo).status is Status.SECURE
    assert len(calls) == 2  # a copy shares its rdata objects
    fresh = tuple(dns.rrset.from_text_list(r.name, r.ttl, r.rdclass, r.rdtype, [rd.to_text() for rd in r])
                  for r in answer)
    anew = Evidence(ev.question, 0, fresh, (), (zone.cut,))
    assert validate(anew, zone.anchor, NOW, verified=memo).status is Status.SECURE
    assert len(calls) == 3  # the A RRset's new rdata checked again, the DNSKEY RRset not
    assert validate(ev, zone.anchor, NOW).status is Status.SECURE and len(calls) == 5
    late = validate(ev, zone.anchor, EXPIRATION + 86400, verified=memo)
    assert late.status is Status.BOGUS and any(f.code == "RRSIG_EXPIRED" for f in late.findings)


def test_a_remembered_signature_moved_to_another_owner_is_checked_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The same RRSIG and rdata objects under another owner (a replayed signature) are not a
    memo hit: the signature is verified over the new owner, fails, and the answer is bogus."""
    from sigchain.core.dnssec import algorithms
    from sigchain.core.validate.memo import Verified
    from sigchain.core.validate.validator import Evidence, Question, validate
    from tests.unit.test_validator_limits import NOW, TrapZone, _counted

    calls = _counted(monkeypatch, algorithms, "verify")
    zone = TrapZone(0)
    answer = zone.signed("www.trap.test.", "A", "192.0.2.1", garbage=0)
    memo = Verified(100)
    ev = Evidence(Question(dns.name.from_text("www.trap.test."), A), 0, answer, (), (zone.cut,))
    assert validate(ev, zone.anchor, NOW, verified=memo).status is Status.SECURE
    other = dns.name.from_text("evil.trap.test.")
    moved = []
    for r in answer:
        m = dns.rrset.RRset(other, r.rdclass, r.rdtype)
        for rd in r:
            m.add(rd, r.ttl)
        assert all(a is b for a, b in zip(m, r, strict=True))
        moved.append(m)
    replay = Evidence(Question(other, A), 0, tuple(moved), (), (zone.cut,))
    verdict = validate(replay, zone.anchor, NOW, verified=memo)
    assert verdict.status is Status.BOGUS
    assert any(f.code == "RRSIG_BAD_SIGNATURE" for f in verdict.findings)
    assert len(calls) == 3  # checked, not taken from the memo
    # the owner is compared as DNS names are: case does not matter
    upper = Evidence(Question(dns.name.from_text("WWW.Trap.TEST."), A), 0,
                     tuple(r.copy() for r in answer), (), (zone.cut,))
    for r in upper.answer:
        r.name = dns.name.from_text("WWW.Trap.TEST.")
    assert validate(upper, zone.anchor, NOW, verified=memo).status is Status.SECURE
    assert len(calls) == 3


def test_verified_memo_never_confuses_two_signatures() -> None:
    """`Verified` answers only for the very objects it was given: an equal but distinct
    RRSIG, key or rdata, another type or another owner is not held; a full memo forgets."""
    from sigchain.core.validate.memo import Verified

    sig = rrset("a.example. 60 RRSIG A 13 2 60 20270101000000 20260101000000 12345 example. "
                "oJB1W6WNGv+ldvQ3WDG0MQkg5IEhjRip8WTrPYGv07h108dUKGMeDPKijVCHX3DDKdfb+v6oB9wfuh3DTJXUAfI/"
                "M0zmO/zz8bW0Rznl8O3tGNazPwQKkRN20XPXV6nwwfoXmJQbsLNrLfkGJ5D6fwFm8nN+6pBzeDQfsS3Ap3o=")
    key = rrset("example. 60 DNSKEY 257 3 13 mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+"
                "KkxLbxILfDLUT0rAK9iUzy1L53eKGQ==")
    data = rrset("a.example. 60 A 192.0.2.1")
    twin = rrset("a.example. 60 A 192.0.2.1")
    owner = dns.name.from_text("a.example.")
    s, k, d = sig[0], key[0], list(data)
    memo = Verified(2)
    assert not memo.holds(owner, A, 1, s, k, d)
    memo.add(owner, A, 1, s, k, d)
    assert memo.holds(owner, A, 1, s, k, d)
    assert memo.holds(dns.name.from_text("A.EXAMPLE."), A, 1, s, k, d)
    assert not memo.holds(owner, A, 1, s, k, list(twin))  # equal rdata, another object
    assert not memo.holds(owner, A, 1, rrset("a.example. 60 RRSIG " + s.to_text())[0], k, d)
    assert not memo.holds(owner, A, 1, s, rrset("example. 60 DNSKEY " + k.to_text())[0], d)
    assert not memo.holds(dns.name.from_text("b.example."), A, 1, s, k, d)
    assert not memo.holds(owner, dns.rdatatype.AAAA, 1, s, k, d)
    assert not memo.holds(owner, A, 1, s, k, d + d)
    memo.add(owner, A, 1, s, k, list(twin))
    memo.add(dns.name.from_text("b.example."), A, 1, s, k, d)  # full: the memo starts again
    assert not memo.holds(owner, A, 1, s, k, d)


@pytest.mark.parametrize("text", [
    "a.example. 60 A 192.0.2.1",
    "a.example. 60 AAAA 2001:db8::1",
    "a.example. 60 RRSIG A 13 2 60 20270101000000 20260101000000 12345 example. "
    "oJB1W6WNGv+ldvQ3WDG0MQkg5IEhjRip8WTrPYGv07h108dUKGMeDPKijVCHX3DDKdfb+v6oB9wfuh3DTJXUAfI/M0zmO/zz8bW0Rznl8O3tGNazPwQKkRN20XPXV6nwwfoXmJQbsLNrLfkGJ5D6fwFm8nN+6pBzeDQfsS3Ap3o=",
    "example. 60 NSEC b.example. A NS SOA RRSIG NSEC DNSKEY TYPE65534",
    "0p9mhaveqvm6t7vbl5lop2u3t2rp3tom.example. 60 NSEC3 1 1 0 aabb 2t7b4g4vsa5smi47k61mv5bv1a22bojr A RRSIG",
    "example. 60 DNSKEY 257 3 13 mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ==",
    "example. 60 DS 12345 13 2 49fd46e6c4b45c55d4ac69cbd3cd34ac1afe51de7b4f6e3e4f6b1b0b0b0b0b0b",
    "example. 60 SOA ns.example. host.example. 1 7200 3600 1209600 300",
    "example. 60 MX 10 mail.example.",
    "example. 60 TXT \"some text\" \"and more\"",
])
def test_size_estimate_is_the_wire_length(text: str) -> None:
    """The cache's size of an RRset, read off its fields, is what rendering it gives."""
    from sigchain.core.resolve.cache import _rrsets_size

    r = rrset(text)
    rendered = len(r.name.to_wire()) * len(r) + sum(len(rd.to_digestable()) + 10 for rd in r)
    assert _rrsets_size([r]) == rendered


def test_size_remembered_for_the_very_rdata_only() -> None:
    """A size the cache remembers answers for that rdata object alone: an entry left under
    its id by another object is not taken for it."""
    from sigchain.core.resolve import cache

    soa = rrset("example. 60 SOA ns.example. host.example. 1 7200 3600 1209600 300")[0]
    longer = rrset("example. 60 SOA a-much-longer-name.example. host.example. 1 7200 3600 1209600 300")[0]
    assert cache._rdata_size(soa) == cache._rdata_size(soa) == len(soa.to_digestable())
    cache._SIZES[id(longer)] = (soa, cache._rdata_size(soa))
    assert cache._rdata_size(longer) == len(longer.to_digestable()) != cache._rdata_size(soa)


@pytest.mark.parametrize("rcode,edns", [(dns.rcode.NOERROR, True), (dns.rcode.NXDOMAIN, True),
                                        (dns.rcode.NOERROR, False), (dns.rcode.BADVERS, True)])
def test_kept_reply_is_what_make_response_gave(rcode: int, edns: bool) -> None:
    """The cache's copy of an upstream reply, made directly, is the Message that
    make_response(make_query(...)) with the reply's flags, RCODE, sections and EDNS gave."""
    from sigchain.core.resolve.cache import kept_reply

    qname = dns.name.from_text("Www.Example.")
    q = dns.message.make_query(qname, A, use_edns=0 if edns else None, want_dnssec=edns)
    reply = dns.message.make_response(q)
    reply.flags |= dns.flags.AA | dns.flags.AD
    reply.set_rcode(rcode)
    reply.answer = [rrset("www.example. 60 A 192.0.2.1")]
    reply.authority = [rrset("example. 60 SOA ns.example. host.example. 1 7200 3600 1209600 300")]
    if edns:
        reply.use_edns(0, reply.ednsflags | dns.flags.DO, 1232,
                       options=[dns.edns.EDEOption(dns.edns.EDECode.OTHER, "x")])
    old = dns.message.make_response(dns.message.make_query(qname, A))
    old.id = 0
    old.flags = reply.flags
    old.set_rcode(reply.rcode())
    old.answer = list(reply.answer)
    old.authority = list(reply.authority)
    if reply.edns >= 0:
        old.use_edns(0, reply.ednsflags, reply.payload, options=reply.options)
    new = kept_reply(qname, A, reply)
    assert type(new) is type(old)
    assert new.to_wire() == old.to_wire() and new == old
    assert (new.flags, new.ednsflags, new.edns, new.payload, new.options, new.rcode()) == (
        old.flags, old.ednsflags, old.edns, old.payload, old.options, old.rcode())
    assert (new.request_payload, new.pad) == (old.request_payload, old.pad)
    if edns:  # the kept copy's EDNS is its own: setting it leaves the reply's alone
        assert new.opt is not reply.opt
        new.ednsflags = 0
        assert reply.ednsflags == old.ednsflags
    assert new.question[0].name.to_text() == "Www.Example."


def test_proved_keys_and_insecure_cuts_kept_no_longer_than_the_rrsig_original_ttl() -> None:
    """RFC 4035 §5.3.3: a DNSKEY RRset (or a DS denial) that arrives with a TTL longer than
    its RRSIG's Original TTL — a replay, or a server that raised it — is trusted for the
    Original TTL at most; and never past the RRSIG's expiration."""
    from sigchain.core.resolve.proved import insecure_cuts, zone_keys
    from sigchain.core.validate.verdict import Evidence, Link, Question, ZoneCut

    n = dns.name.from_text
    sel = n("sel.")
    expires = NOW + 10_000  # the RRSIGs' expiration

    def stamp(t: int) -> str:
        return time.strftime("%Y%m%d%H%M%S", time.gmtime(t))

    sig = f"{stamp(expires)} {stamp(NOW - 100)} 1 sel. AAAA"
    dnskey = (rrset("sel. 86400 DNSKEY 257 3 13 AAAA"), rrset(f"sel. 86400 RRSIG DNSKEY 13 1 3600 {sig}"))
    denial = (rrset("child.sel. 7200 NSEC d.sel. NS RRSIG NSEC"),
              rrset(f"child.sel. 7200 RRSIG NSEC 13 2 600 {sig}"))
    ev = Evidence(Question(n("www.child.sel."), A), zones=(
        ZoneCut(sel, dnskey=dnskey), ZoneCut(n("child.sel."), ds_denial=denial)))
    links = [Link(sel, "rrsig", sel, dns.rdatatype.DNSKEY, 1, 13),
             Link(sel, "no-ds", n("child.sel."), dns.rdatatype.DS)]
    assert [(r.name, s) for r, s in zone_keys(ev, links, set(), NOW)] == [(sel, 3600)]
    assert insecure_cuts(ev, links, NOW) == [(n("child.sel."), 600)]
    # the expiration still bounds both when it comes first
    assert [s for _, s in zone_keys(ev, links, set(), expires - 50)] == [50]
    assert insecure_cuts(ev, links, expires - 50) == [(n("child.sel."), 50)]


def test_kept_denial_records_are_not_used_past_their_own_ttl() -> None:
    """RFC 8198 §5.4 (and RFC 2308): a zone's kept NSEC records, added over time, are used no
    longer than the shortest TTL among them counts down; a wildcard source's TTL counts too."""
    n = dns.name.from_text
    sel = n("sel.")
    sig = "20300101000000 20200101000000 1 sel. AAAA"

    def nsec(owner: str, ttl: int) -> list[dns.rrset.RRset]:
        return [rrset(f"{owner} {ttl} NSEC {owner}x.sel. A RRSIG NSEC"),
                rrset(f"{owner} {ttl} RRSIG NSEC 13 2 {ttl} {sig}")]

    cache = Cache(CacheLimits(max_negative_ttl=3600))
    cache.store_denials(sel, (), [*SEL_SOA, *nsec("a.sel.", 3600)], (), NOW)
    assert cache.denials(n("b.sel."), NOW)[1] == 300  # the SOA's
    cache.store_denials(sel, (), [*nsec("c.sel.", 10)], (), NOW + 100)
    kept = cache.denials(n("b.sel."), NOW + 105)
    assert kept is not None and kept[1] == 5  # the TTL-10 record's, not extended by the others
    assert cache.denials(n("b.sel."), NOW + 110) is None
    # a wildcard answer's source (TTL 60) bounds an entry it is added to
    wild = [rrset("x.w.sel. 60 A 192.0.2.1"), rrset(f"x.w.sel. 60 RRSIG A 13 2 60 {sig}")]
    cache.store_denials(sel, (), [*SEL_SOA, *nsec("a.sel.", 3600)], (), NOW + 200)
    cache.store_denials(sel, wild, (), (), NOW + 210)
    kept = cache.denials(n("b.sel."), NOW + 210)
    assert kept is not None and kept[0].wildcards and kept[1] == 60


def test_min_ttl_raises_the_ttls_clients_see_as_long_as_the_entry_is_kept() -> None:
    """Unbound's cache-min-ttl: an answer kept for min_ttl is shown with that TTL counting
    down, not with its own TTL run out to 0 while the cache still serves it."""
    cache = Cache(CacheLimits(min_ttl=300))
    name = dns.name.from_text("a.example.")
    kept = entry(Status.INSECURE, ttl=30)
    kept.ttl = data_ttl(0, A, kept.answer, (), cache.limits)
    cache.store_answer(name, A, kept)
    q = read_query(dns.message.make_query("a.example.", "A").to_wire(), False)
    shown = dns.message.from_wire(render(q, cache.answer(name, A, NOW + 100), NOW + 100))
    assert kept.ttl == 300 and shown.answer[0].ttl == 200
    assert cache.answer(name, A, NOW + 300) is None


def test_rendered_responses_count_against_the_byte_bound() -> None:
    """The responses pre-rendered from a kept answer (one per combination of DO, CD, EDNS…)
    count in the cache's size while that answer is kept: the bound holds for what is held."""
    one = Cache().store_answer(dns.name.from_text("x.example."), A, entry(Status.SECURE)).size
    cache = Cache(CacheLimits(max_bytes=one * 4))
    names = [dns.name.from_text(f"n{i}.example.") for i in range(3)]
    for n in names:
        cache.store_answer(n, A, entry(Status.SECURE, name=n.to_text()))
    before = cache.size
    kept = cache.answer(names[2], A, NOW)
    assert kept is not None
    base = kept.size
    cache.rendered(names[2], A, kept, "do", (NOW, b"x" * 100))
    cache.rendered(names[2], A, kept, "do", (NOW + 1, b"x" * 120))  # replaced: counted once
    assert cache.size == before + 120 and kept.size == base + 120
    cache.rendered(names[2], A, kept, "cd", (NOW, b"x" * one))  # past the bound
    assert cache.size <= cache.limits.max_bytes and cache.stats["evicted"] == 1
    assert cache.answer(names[0], A, NOW) is None and cache.answer(names[2], A, NOW) is kept
    gone = entry(Status.SECURE)  # an answer the cache no longer holds counts for nothing
    size = cache.size
    cache.rendered(names[1], A, gone, "do", (NOW, b"x" * 100))
    assert cache.size == size and gone.wire["do"] == (NOW, b"x" * 100)
    cache.store_answer(names[1], A, entry(Status.SECURE, name="n1.example."))  # replaced
    assert sum(e.size for e in cache._lru.values()) == cache.size


@pytest.mark.parametrize("payload, edes", [(512, 3), (1232, 8)])
def test_long_ede_texts_never_push_a_response_past_the_clients_limit(payload: int, edes: int) -> None:
    """RFC 8914 §3, RFC 6891 §7: EXTRA-TEXT is dropped before anything else — a SERVFAIL
    keeps its codes, an answer keeps its records — and nothing exceeds the client's buffer."""
    long = tuple((code, chr(97 + code) * 200) for code in (6, 7, 10, 12, 9, 8, 1, 2)[:edes])
    q = read_query(dns.message.make_query("a.example.", "A", use_edns=0, payload=payload).to_wire(), False)
    failed = Answer(dns.rcode.SERVFAIL, (), (), None, long, NOW, 5)
    wire = render(q, failed, NOW)
    r = dns.message.from_wire(wire)
    assert len(wire) <= payload and r.rcode() == dns.rcode.SERVFAIL
    assert [o.code for o in r.options if o.otype == dns.edns.EDE] == [c for c, _ in long]
    insecure = Answer(0, (rrset("a.example. 300 A 192.0.2.1"),), (), Status.INSECURE, long, NOW, 300)
    r = dns.message.from_wire(wire := render(q, insecure, NOW))
    assert len(wire) <= payload and not r.flags & dns.flags.TC and r.answer


def test_a_refusal_keeps_the_question_and_edns_and_answers_no_response() -> None:
    """RFC 6891 §6.1.1: a query with EDNS gets an OPT record back, even in a REFUSED for a
    client outside the ACL (with its EDE 18); one that does not parse gets a bare header, and
    a response (QR set) nothing."""
    from sigchain.core.resolve.respond import refusal

    ede = [(18, "192.0.2.1 may not query this resolver")]
    q = dns.message.make_query("example.", "AXFR", use_edns=0)
    r = dns.message.from_wire(refusal(q.to_wire(), ede))  # type: ignore[arg-type]
    assert r.rcode() == dns.rcode.REFUSED and r.edns == 0 and r.id == q.id
    assert [(o.code, o.text) for o in r.options] == ede and r.question == q.question
    bare = refusal(q.to_wire()[:20], ede)
    assert bare is not None and len(bare) == 12 and bare[3] & 0xF == dns.rcode.REFUSED
    assert refusal(dns.message.make_response(q).to_wire(), ede) is None


def test_a_fresh_answer_keeps_each_rrsets_own_ttl_within_its_signatures() -> None:
    """As Unbound: the RRsets of a kept answer count down from their own TTLs (RFC 2181 §5.2
    asks for one TTL within an RRset, not across them); the entry goes when the smallest runs
    out. A signed RRset never outlives its RRSIG's original TTL or expiration (RFC 4035
    §5.3.3). RFC 8198 and stale answers, and negative ones, keep one TTL for all."""
    sig = f"A 13 2 3600 {NOW + 600} {NOW - 3600} 1 example. AAAA"  # (epoch times: RFC 4034 §3.2)
    answer = (rrset("long.example. 3600 CNAME short.example."),
              rrset("short.example. 10 CNAME www.example."),
              rrset("www.example. 3600 A 192.0.2.1"), rrset(f"www.example. 3600 RRSIG {sig}"))
    cache = Cache()
    name = dns.name.from_text("long.example.")
    kept = cache.store_answer(name, A, Answer(0, answer, (), Status.SECURE, (), NOW, 10,
                                              own_ttls=True))
    assert [r.ttl for r in kept.answer] == [3600, 10, 600, 600]  # the A: its RRSIG's expiry
    q = read_query(dns.message.make_query("long.example.", "A").to_wire(), False)
    shown = dns.message.from_wire(render(q, cache.answer(name, A, NOW + 4), NOW + 4))
    assert [r.ttl for r in shown.answer] == [3596, 6, 596]
    assert cache.answer(name, A, NOW + 10) is None
    same = cache.store_answer(name, A, Answer(0, answer, (), Status.SECURE, (), NOW, 10))
    assert {r.ttl for r in same.answer} == {10}  # (not fresh from upstream: one TTL for all)
