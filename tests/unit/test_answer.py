"""The authoritative answer function on zones signed in memory, without sockets.

Oracles independent of the code under test: dnspython's `dns.dnssec.validate` checks every
RRSIG in a response against the zone's DNSKEY RRset, and `dns.dnssec.nsec3_hash` plus
canonical name order check that the NSEC/NSEC3 records prove what RFC 4035 §3.1.3 and
RFC 5155 §7.2 say they must.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Iterator
from pathlib import Path

import dns.dnssec
import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rrset
import dns.set
import dns.tsigkeyring
import pytest
from dns.rdatatype import RdataType

from sigchain.clock import SYSTEM
from sigchain.core.dnssec import algorithms, keyfile
from sigchain.core.dnssec.rrsig import SigWindow
from sigchain.core.serve import transfer
from sigchain.core.serve.fastpath import respond
from sigchain.core.serve.index import ZoneIndex, ZoneSet
from sigchain.core.serve.lookup import lookup
from sigchain.core.serve.message import answer, render, rrsets
from sigchain.core.serve.rrsets import ServedRRset
from sigchain.core.sign import signer
from sigchain.core.zone.nsec3hash import Nsec3Params
from sigchain.core.zone.shape import bitmap_types
from sigchain.edge import zonefile
from sigchain.model.keys import KeyPair, KeyRole, KeyTiming
from sigchain.services.xfrout import Primary
from tests.zonetools import sign_nodes, sign_text

N = dns.name.from_text
NOW = 1_800_000_000
ORIGIN = N("example.test.")
CHILD = N("sub.example.test.")

ZONE_TEXT = {
    "@": [("SOA", "ns1 hostmaster 7 7200 3600 1209600 300"), ("NS", "ns1"), ("NS", "ns2"),
          ("MX", "10 mail"), ("TXT", '"apex"')],
    "ns1": [("A", "192.0.2.1")],
    "ns2": [("AAAA", "2001:db8::2")],
    "mail": [("A", "192.0.2.25")],
    "www": [("A", "192.0.2.10"), ("AAAA", "2001:db8::10")],
    "web": [("CNAME", "www")],
    "chain": [("CNAME", "web")],
    "dangling": [("CNAME", "nothere")],
    "out": [("CNAME", "www.example.org.")],
    "todel": [("CNAME", "foo.sub")],
    "loop1": [("CNAME", "loop2")],
    "loop2": [("CNAME", "loop1")],
    "da": [("DNAME", "db.example.test.")],
    "db": [("DNAME", "da.example.test.")],
    "*.wild": [("A", "192.0.2.99"), ("TXT", '"wildcard"')],
    "*.cw": [("CNAME", "www")],
    "a.b.c": [("TXT", '"below two empty non-terminals"')],
    "sub": [("NS", "ns.sub"), ("DS", "12345 13 2 49FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE0E0F0B2BD10F8C3D2EE0B6E1")],
    "ns.sub": [("A", "192.0.2.53")],
    "insecure": [("NS", "ns.insecure")],
    "ns.insecure": [("A", "192.0.2.54")],
    "child.deep": [("NS", "ns1")],
    "alias": [("DNAME", "example.test.")],
    "big": [("TXT", f'"{i:03d} ' + "x" * 90 + '"') for i in range(8)],
}


def _zone(origin: dns.name.Name, text: dict[str, list[tuple[str, str]]]) -> dict[dns.name.Name, list[dns.rdataset.Rdataset]]:
    out: dict[dns.name.Name, dict[int, dns.rdataset.Rdataset]] = {}
    for rel, records in text.items():
        owner = dns.name.from_text(rel, origin)
        for rdtype, rdata in records:
            t = dns.rdatatype.from_text(rdtype)
            rds = out.setdefault(owner, {}).setdefault(t, dns.rdataset.Rdataset(dns.rdataclass.IN, t))
            rds.update_ttl(3600)
            rds.add(dns.rdata.from_text("IN", rdtype, rdata, origin, relativize=False))
    return {n: list(rs.values()) for n, rs in out.items()}


def _key(zone: dns.name.Name, role: KeyRole) -> KeyPair:
    a = algorithms.get(13)
    priv = algorithms.generate(a)
    return KeyPair(zone, 13, keyfile.make_dnskey(a, priv, role.flags), priv, KeyTiming())


def _sign_args(
    origin: dns.name.Name, text: dict[str, list[tuple[str, str]]], nsec3: Nsec3Params | None
) -> tuple[dict[dns.name.Name, list[dns.rdataset.Rdataset]], dns.name.Name, list[KeyPair], signer.SignOptions, int]:
    keys = [_key(origin, KeyRole.KSK), _key(origin, KeyRole.ZSK)]
    opts = signer.SignOptions(SigWindow(NOW - 3600, 30 * 86400, 0), nsec3, cds=True)
    return _zone(origin, text), origin, keys, opts, NOW


def _signed(origin: dns.name.Name, text: dict[str, list[tuple[str, str]]], nsec3: Nsec3Params | None) -> dict[dns.name.Name, list[dns.rdataset.Rdataset]]:
    return sign_nodes(*_sign_args(origin, text, nsec3))


FLAVOURS = {"nsec": None, "nsec3": Nsec3Params(), "optout": Nsec3Params(2, b"\xab\xcd", opt_out=True)}


@pytest.fixture(scope="module", params=list(FLAVOURS))
def zoneset(request: pytest.FixtureRequest) -> Iterator[ZoneSet]:
    nodes = _signed(ORIGIN, ZONE_TEXT, FLAVOURS[request.param])
    yield ZoneSet([ZoneIndex.build(ORIGIN, nodes)])


# ---- oracles ---------------------------------------------------------------------------------


def _records(m: dns.message.Message, section: str) -> list[tuple[str, int, int, int, list[bytes]]]:
    """A section in order, with owner case, TTLs and each record's canonical rdata."""
    return [(r.name.to_text(), r.rdtype, r.covers, r.ttl, [rd.to_digestable() for rd in r])
            for r in getattr(m, section)]


def same_response(got: bytes, want: bytes) -> None:
    """Two response wires say the same thing: header (ID, flags, rcode, counts), question
    with its letter case, every section in order, OPT. Compression may differ."""
    assert got[:12] == want[:12]
    a, b = dns.message.from_wire(got), dns.message.from_wire(want)
    assert [q.name.to_text() for q in a.question] == [q.name.to_text() for q in b.question]
    for section in ("question", "answer", "authority", "additional"):
        assert _records(a, section) == _records(b, section), section
    assert (a.edns, a.ednsflags, a.payload, a.options) == (b.edns, b.ednsflags, b.payload, b.options)


def limit(q: dns.message.Message, tcp: bool) -> int:
    return 65535 if tcp else max(512, min(q.payload if q.edns >= 0 else 512, 1232))


def _dnskeys(zs: ZoneSet, origin: dns.name.Name = ORIGIN) -> dict[dns.name.Name, dns.rrset.RRset]:
    return {origin: zs.zones[origin].nodes[origin].rrsets[RdataType.DNSKEY]}


def ask(zs: ZoneSet, qname: str, qtype: str, do: bool = True, tcp: bool = True, **kw: object) -> dns.message.Message:
    """Query through the wire path (`respond`), as a server would, and parse the answer."""
    q = dns.message.make_query(qname, qtype, want_dnssec=do, **kw)  # type: ignore[arg-type]
    wire = respond(zs, q.to_wire(), tcp=tcp)
    assert wire is not None
    r = dns.message.from_wire(wire)
    assert r.id == q.id
    return r


def validate_signatures(zs: ZoneSet, r: dns.message.Message, signed_expected: bool = True) -> None:
    """Every RRSIG in answer/authority verifies (dnspython), and every RRset that a validator
    needs signed has one: all but referral NS (in the authority section below the apex,
    also after an authoritative answer) and DNAME-synthesized CNAMEs."""
    keys = _dnskeys(zs)
    for section in (r.answer, r.authority):
        sigs = {(s.name, s.covers): s for s in section if s.rdtype == RdataType.RRSIG}
        for rrset in section:
            if rrset.rdtype == RdataType.RRSIG:
                continue
            sig = sigs.get((rrset.name, rrset.rdtype))
            if sig is None:
                unsigned_ok = (rrset.rdtype == RdataType.NS and (
                    not r.flags & dns.flags.AA or (section is r.authority and rrset.name not in keys))) or (
                    rrset.rdtype == RdataType.CNAME and any(x.rdtype == RdataType.DNAME for x in r.answer)
                )
                assert unsigned_ok or not signed_expected, f"unsigned {rrset.name}/{dns.rdatatype.to_text(rrset.rdtype)}"
                continue
            dns.dnssec.validate(rrset, sig, keys, now=NOW)  # raises ValidationFailure


def _types(rrsets: list[dns.rrset.RRset]) -> list[tuple[str, str]]:
    return [(r.name.to_text(), dns.rdatatype.to_text(r.rdtype if r.rdtype != RdataType.RRSIG else r.covers)
             + ("/RRSIG" if r.rdtype == RdataType.RRSIG else "")) for r in rrsets]


def _nsec3_params(zs: ZoneSet) -> tuple[bytes, int]:
    z = zs.zones[ORIGIN]
    param = z.nodes[ORIGIN].rrsets[RdataType.NSEC3PARAM][0]
    return param.salt, param.iterations  # type: ignore[attr-defined]


def _h(zs: ZoneSet, name: dns.name.Name | str) -> str:
    salt, iterations = _nsec3_params(zs)
    return dns.dnssec.nsec3_hash(name, salt, iterations, 1).lower()


def nsec3_records(r: dns.message.Message) -> list[tuple[str, str, int, set[int]]]:
    out = []
    for rrset in r.authority:
        if rrset.rdtype == RdataType.NSEC3:
            rd = rrset[0]
            nxt = dns.dnssec.base64.b32hexencode(rd.next).decode().lower()  # type: ignore[attr-defined]
            out.append((rrset.name.labels[0].decode().lower(), nxt, rd.flags, bitmap_types(rd.windows)))  # type: ignore[attr-defined]
    return out


def nsec3_matches(zs: ZoneSet, r: dns.message.Message, name: str) -> set[int] | None:
    h = _h(zs, name)
    for owner, _, _, types in nsec3_records(r):
        if owner == h:
            return types
    return None


def nsec3_covers(zs: ZoneSet, r: dns.message.Message, name: str) -> int | None:
    """The flags of the NSEC3 in `r` whose span strictly covers H(name), else None."""
    h = _h(zs, name)
    for owner, nxt, flags, _ in nsec3_records(r):
        if (owner < h < nxt) or (nxt <= owner and (h > owner or h < nxt)):
            return flags
    return None


def nsec_records(r: dns.message.Message) -> list[tuple[dns.name.Name, dns.name.Name, set[int]]]:
    return [(x.name, x[0].next, bitmap_types(x[0].windows)) for x in r.authority if x.rdtype == RdataType.NSEC]  # type: ignore[attr-defined]


def nsec_covers(r: dns.message.Message, name: str) -> bool:
    n = N(name)
    return any(
        (owner < n < nxt) or (nxt == ORIGIN and n > owner) for owner, nxt, _ in nsec_records(r)
    )


def nsec_matches(r: dns.message.Message, name: str) -> set[int] | None:
    for owner, _, types in nsec_records(r):
        if owner == N(name):
            return types
    return None


def flavour(zs: ZoneSet) -> str:
    z = zs.zones[ORIGIN]
    if z.denial == "nsec":
        return "nsec"
    return "optout" if z.nsec3_iterations else "nsec3"


def assert_nxdomain_proof(zs: ZoneSet, r: dns.message.Message, qname: str, ce: str) -> None:
    if flavour(zs) == "nsec":
        assert nsec_covers(r, qname) and nsec_covers(r, "*." + ce)  # RFC 4035 §3.1.3.2
        assert len(nsec_records(r)) <= 2
    else:  # RFC 5155 §7.2.2: CE matched, next closer and wildcard covered
        next_closer = ".".join(qname.split(".")[-(len(ce.split(".")) + 1):])
        assert nsec3_matches(zs, r, ce) is not None
        assert nsec3_covers(zs, r, next_closer) is not None
        assert nsec3_covers(zs, r, "*." + ce) is not None
        assert len(nsec3_records(r)) <= 3


# ---- response kinds --------------------------------------------------------------------------


def test_positive_answer_with_and_without_do(zoneset: ZoneSet) -> None:
    r = ask(zoneset, "www.example.test.", "A")
    assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA and r.flags & dns.flags.QR
    assert _types(r.answer) == [("www.example.test.", "A"), ("www.example.test.", "A/RRSIG")]
    assert r.authority == [] and r.additional == []  # minimal responses: no NS in authority
    assert r.ednsflags & dns.flags.DO and r.payload == 1232
    validate_signatures(zoneset, r)
    plain = ask(zoneset, "www.example.test.", "A", do=False, use_edns=0)
    assert _types(plain.answer) == [("www.example.test.", "A")] and plain.authority == []
    assert plain.edns == 0 and not plain.ednsflags & dns.flags.DO
    no_edns = ask(zoneset, "www.example.test.", "A", do=False, use_edns=False)
    assert no_edns.edns == -1 and _types(no_edns.answer) == [("www.example.test.", "A")]


@pytest.mark.parametrize("qtype", ["DNSKEY", "CDS", "CDNSKEY", "SOA", "NS", "NSEC3PARAM"])
def test_apex_records(zoneset: ZoneSet, qtype: str) -> None:
    r = ask(zoneset, "example.test.", qtype)
    if qtype == "NSEC3PARAM" and flavour(zoneset) == "nsec":
        assert r.answer == [] and _types(r.authority)[0] == ("example.test.", "SOA")
        assert RdataType.NSEC3PARAM not in (nsec_matches(r, "example.test.") or {0})
        return
    assert r.flags & dns.flags.AA and _types(r.answer) == [("example.test.", qtype), ("example.test.", qtype + "/RRSIG")]
    validate_signatures(zoneset, r)
    if qtype == "DNSKEY":  # signed by the KSK (flags 257)
        ksk_tags = {dns.dnssec.key_id(k) for k in r.answer[0] if k.flags == 257}  # type: ignore[attr-defined]
        assert {s.key_tag for s in r.answer[1]} & ksk_tags  # type: ignore[attr-defined]


def test_cname_followed_within_the_zone(zoneset: ZoneSet) -> None:
    r = ask(zoneset, "chain.example.test.", "A")
    assert [t for t in _types(r.answer) if "RRSIG" not in t[1]] == [
        ("chain.example.test.", "CNAME"), ("web.example.test.", "CNAME"), ("www.example.test.", "A")]
    assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA
    validate_signatures(zoneset, r)
    only = ask(zoneset, "web.example.test.", "CNAME")
    assert _types(only.answer) == [("web.example.test.", "CNAME"), ("web.example.test.", "CNAME/RRSIG")]


@pytest.mark.parametrize(("qname", "links"), [
    ("loop1.example.test.", [("loop1.example.test.", "CNAME"), ("loop2.example.test.", "CNAME")]),
    ("x.da.example.test.", [("da.example.test.", "DNAME"), ("x.da.example.test.", "CNAME"),
                            ("db.example.test.", "DNAME"), ("x.db.example.test.", "CNAME")]),
])
def test_an_alias_loop_is_answered_with_each_link_once(zoneset: ZoneSet, qname: str,
                                                       links: list[tuple[str, str]]) -> None:
    """As Knot: the chain up to where it loops, no link twice (the resolver reports the loop,
    RFC 1034 §5.2.2). Counted on the wire: dnspython's parser merges repeated RRsets."""
    q = dns.message.make_query(qname, "A", want_dnssec=True)
    wire = respond(zoneset, q.to_wire(), tcp=True)
    assert wire is not None
    r = dns.message.from_wire(wire)
    assert [t for t in _types(r.answer) if "RRSIG" not in t[1]] == links
    signed = sum(1 for _, t in links if t != "CNAME" or qname.startswith("loop"))
    assert struct.unpack("!H", wire[6:8])[0] == len(links) + signed  # ANCOUNT: each RR once
    assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA
    validate_signatures(zoneset, r)


def test_cname_to_a_missing_name_is_nxdomain_with_proof(zoneset: ZoneSet) -> None:
    r = ask(zoneset, "dangling.example.test.", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN  # RFC 6604 §2.1: the rcode of the last name
    assert _types(r.answer)[0] == ("dangling.example.test.", "CNAME")
    assert _types(r.authority)[:2] == [("example.test.", "SOA"), ("example.test.", "SOA/RRSIG")]
    assert_nxdomain_proof(zoneset, r, "nothere.example.test.", "example.test.")
    validate_signatures(zoneset, r)


def test_cname_out_of_zone_and_to_nodata(zoneset: ZoneSet) -> None:
    r = ask(zoneset, "out.example.test.", "A")
    assert r.rcode() == dns.rcode.NOERROR and r.authority == []
    assert _types(r.answer) == [("out.example.test.", "CNAME"), ("out.example.test.", "CNAME/RRSIG")]
    r = ask(zoneset, "web.example.test.", "MX")
    assert _types(r.answer)[0] == ("web.example.test.", "CNAME") and r.answer[0].rdtype == RdataType.CNAME
    assert _types(r.authority)[0] == ("example.test.", "SOA")
    if flavour(zoneset) == "nsec":
        assert RdataType.MX not in (nsec_matches(r, "www.example.test.") or {RdataType.MX})
    else:
        types = nsec3_matches(zoneset, r, "www.example.test.")
        assert types is not None and RdataType.MX not in types
    validate_signatures(zoneset, r)


@pytest.mark.parametrize("qname", ["foo.wild.example.test.", "x.y.wild.example.test."])
def test_wildcard_expansion_with_next_closer_proof(zoneset: ZoneSet, qname: str) -> None:
    r = ask(zoneset, qname, "TXT")
    assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA
    assert _types(r.answer) == [(qname, "TXT"), (qname, "TXT/RRSIG")]
    assert r.answer[1][0].labels == 3  # type: ignore[attr-defined]  # RRSIG of *.wild.example.test
    validate_signatures(zoneset, r)
    if flavour(zoneset) == "nsec":  # RFC 4035 §3.1.3.3
        assert nsec_covers(r, qname) and len(nsec_records(r)) == 1
    else:  # RFC 5155 §7.2.6: only the next closer name is covered
        next_closer = ".".join(qname.split(".")[-5:])
        assert next_closer.endswith("wild.example.test.")
        assert nsec3_covers(zoneset, r, next_closer) is not None and len(nsec3_records(r)) == 1
    plain = ask(zoneset, qname, "TXT", do=False)
    assert _types(plain.answer) == [(qname, "TXT")] and plain.authority == []


def test_rrsig_asked_at_a_wildcard_expansion_is_synthesised_with_its_proof(zoneset: ZoneSet) -> None:
    """RFC 4592 §4.3.3: the wildcard's RRSIGs, given the asked name (as BIND and NSD answer;
    a NODATA would contradict its own proof, whose bitmap lists RRSIG), with the proof that
    the name itself does not exist (RFC 4035 §3.1.3.3)."""
    qname = "foo.wild.example.test."
    r = ask(zoneset, qname, "RRSIG")
    assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA
    assert {(n, t) for n, t in _types(r.answer)} >= {(qname, "A/RRSIG"), (qname, "TXT/RRSIG")}
    assert {n for n, _ in _types(r.answer)} == {qname}
    validate_signatures(zoneset, r)
    if flavour(zoneset) == "nsec":
        assert nsec_covers(r, qname)
    else:
        assert nsec3_covers(zoneset, r, qname) is not None


def test_wildcard_nodata(zoneset: ZoneSet) -> None:
    r = ask(zoneset, "foo.wild.example.test.", "MX")
    assert r.rcode() == dns.rcode.NOERROR and r.answer == []
    validate_signatures(zoneset, r)
    if flavour(zoneset) == "nsec":  # RFC 4035 §3.1.3.4
        assert nsec_covers(r, "foo.wild.example.test.")
        types = nsec_matches(r, "*.wild.example.test.")
    else:  # RFC 5155 §7.2.5
        assert nsec3_matches(zoneset, r, "wild.example.test.") is not None
        assert nsec3_covers(zoneset, r, "foo.wild.example.test.") is not None
        types = nsec3_matches(zoneset, r, "*.wild.example.test.")
    assert types is not None and RdataType.MX not in types and RdataType.TXT in types


def test_wildcard_cname(zoneset: ZoneSet) -> None:
    r = ask(zoneset, "anything.cw.example.test.", "AAAA")
    assert [t for t in _types(r.answer) if "RRSIG" not in t[1]] == [
        ("anything.cw.example.test.", "CNAME"), ("www.example.test.", "AAAA")]
    validate_signatures(zoneset, r)


@pytest.mark.parametrize(("qname", "ce"), [
    ("nope.example.test.", "example.test."),
    ("deep.er.nope.example.test.", "example.test."),
    ("z.c.example.test.", "c.example.test."),  # closest encloser is an empty non-terminal
    ("zz.www.example.test.", "www.example.test."),
])
def test_nxdomain(zoneset: ZoneSet, qname: str, ce: str) -> None:
    r = ask(zoneset, qname, "A")
    assert r.rcode() == dns.rcode.NXDOMAIN and r.flags & dns.flags.AA and r.answer == []
    assert _types(r.authority)[:2] == [("example.test.", "SOA"), ("example.test.", "SOA/RRSIG")]
    assert r.authority[0].ttl == 300  # min(SOA TTL, MINIMUM), RFC 2308 §3
    if flavour(zoneset) == "optout" and ce == "c.example.test.":
        ce = "c.example.test."  # ENT above signed data keeps its NSEC3 under opt-out
    assert_nxdomain_proof(zoneset, r, qname, ce)
    validate_signatures(zoneset, r)
    plain = ask(zoneset, qname, "A", do=False)
    assert plain.rcode() == dns.rcode.NXDOMAIN and _types(plain.authority) == [("example.test.", "SOA")]


def test_nodata(zoneset: ZoneSet) -> None:
    r = ask(zoneset, "www.example.test.", "MX")
    assert r.rcode() == dns.rcode.NOERROR and r.answer == [] and r.flags & dns.flags.AA
    validate_signatures(zoneset, r)
    if flavour(zoneset) == "nsec":  # RFC 4035 §3.1.3.1
        types = nsec_matches(r, "www.example.test.")
    else:  # RFC 5155 §7.2.3
        types = nsec3_matches(zoneset, r, "www.example.test.")
    assert types is not None and RdataType.MX not in types and RdataType.A in types


def test_empty_non_terminal_is_nodata(zoneset: ZoneSet) -> None:
    for ent in ("b.c.example.test.", "c.example.test.", "wild.example.test."):
        r = ask(zoneset, ent, "A")
        assert r.rcode() == dns.rcode.NOERROR and r.answer == [], ent
        validate_signatures(zoneset, r)
        if flavour(zoneset) == "nsec":
            assert nsec_covers(r, ent)  # the NSEC before the ENT spans it: no data at it
        else:
            assert nsec3_matches(zoneset, r, ent) == set()  # ENT: empty bitmap (RFC 5155 §7.2.3)


def test_referral_with_ds_and_glue(zoneset: ZoneSet) -> None:
    r = ask(zoneset, "host.sub.example.test.", "A")
    assert r.rcode() == dns.rcode.NOERROR and not r.flags & dns.flags.AA and r.answer == []
    assert _types(r.authority) == [("sub.example.test.", "NS"), ("sub.example.test.", "DS"),
                                   ("sub.example.test.", "DS/RRSIG")]
    assert _types(r.additional) == [("ns.sub.example.test.", "A")]
    validate_signatures(zoneset, r)
    plain = ask(zoneset, "sub.example.test.", "NS", do=False)
    assert _types(plain.authority) == [("sub.example.test.", "NS")] and not plain.flags & dns.flags.AA
    assert _types(plain.additional) == [("ns.sub.example.test.", "A")]


def test_a_cname_into_a_delegated_child_is_followed_by_the_referral(zoneset: ZoneSet) -> None:
    """RFC 1034 §4.3.2 step 3b: the chain leads below a cut, so the referral follows the
    CNAME (NS, the DS and its RRSIG, glue), AA kept for the answer; as named, Knot, NSD."""
    r = ask(zoneset, "todel.example.test.", "A")
    assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA
    assert _types(r.answer) == [("todel.example.test.", "CNAME"), ("todel.example.test.", "CNAME/RRSIG")]
    assert _types(r.authority) == [("sub.example.test.", "NS"), ("sub.example.test.", "DS"),
                                   ("sub.example.test.", "DS/RRSIG")]
    assert _types(r.additional) == [("ns.sub.example.test.", "A")]
    validate_signatures(zoneset, r)


def test_referral_to_insecure_child_proves_no_ds(zoneset: ZoneSet) -> None:
    r = ask(zoneset, "host.insecure.example.test.", "A")
    assert not r.flags & dns.flags.AA and _types(r.authority)[0] == ("insecure.example.test.", "NS")
    assert _types(r.additional) == [("ns.insecure.example.test.", "A")]
    validate_signatures(zoneset, r)
    f = flavour(zoneset)
    if f == "nsec":  # RFC 4035 §3.1.4.1: NSEC at the cut, NS bit set, no DS bit
        types = nsec_matches(r, "insecure.example.test.")
        assert types is not None and RdataType.NS in types and RdataType.DS not in types
    elif f == "nsec3":  # RFC 5155 §7.2.7
        types = nsec3_matches(zoneset, r, "insecure.example.test.")
        assert types is not None and RdataType.NS in types and RdataType.DS not in types
    else:  # opt-out: CE matched, next closer covered by an opt-out NSEC3
        assert nsec3_matches(zoneset, r, "example.test.") is not None
        assert nsec3_covers(zoneset, r, "insecure.example.test.") == 1


def test_referral_glue_from_authoritative_data(zoneset: ZoneSet) -> None:
    """Sibling glue is the zone's own signed data: with DO its RRSIG comes too (RFC 4035
    §3.1.1, as Knot and NSD), and is the first thing dropped, without TC, when the referral
    does not fit whole."""
    r = ask(zoneset, "x.child.deep.example.test.", "A")
    assert not r.flags & dns.flags.AA and _types(r.authority)[0] == ("child.deep.example.test.", "NS")
    assert _types(r.additional) == [("ns1.example.test.", "A"), ("ns1.example.test.", "A/RRSIG")]
    validate_signatures(zoneset, r)
    plain = ask(zoneset, "x.child.deep.example.test.", "A", do=False)
    assert _types(plain.additional) == [("ns1.example.test.", "A")]
    full = len(respond(zoneset, dns.message.make_query("x.child.deep.example.test.", "A",
                                                      want_dnssec=True).to_wire(), tcp=True) or b"")
    if full - 40 < 512:  # (this flavour's referral fits any buffer a client may ask for;
        return  # the opt-out one, with its salted NSEC3 proof, does not)
    # 40 bytes short: the glue's RRSIG (~110 bytes) goes, the rest fits
    tight = ask(zoneset, "x.child.deep.example.test.", "A", tcp=False, payload=full - 40)
    assert not tight.flags & dns.flags.TC and _types(tight.additional) == [("ns1.example.test.", "A")]


def test_ds_answered_from_the_parent_side(zoneset: ZoneSet) -> None:
    r = ask(zoneset, "sub.example.test.", "DS")
    assert r.flags & dns.flags.AA and _types(r.answer) == [("sub.example.test.", "DS"), ("sub.example.test.", "DS/RRSIG")]
    validate_signatures(zoneset, r)
    r = ask(zoneset, "insecure.example.test.", "DS")
    assert r.flags & dns.flags.AA and r.answer == [] and r.rcode() == dns.rcode.NOERROR
    validate_signatures(zoneset, r)
    if flavour(zoneset) == "optout":  # RFC 5155 §7.2.4
        assert nsec3_covers(zoneset, r, "insecure.example.test.") == 1
    elif flavour(zoneset) == "nsec3":
        types = nsec3_matches(zoneset, r, "insecure.example.test.")
        assert types is not None and RdataType.DS not in types
    else:
        types = nsec_matches(r, "insecure.example.test.")
        assert types is not None and RdataType.DS not in types


def test_ds_at_the_apex_of_a_zone_whose_parent_is_not_served(zoneset: ZoneSet) -> None:
    """RFC 4035 §3.1.4.1: a server with only the child answers DS at its apex with an
    authoritative NODATA and the apex's NSEC/NSEC3 (as BIND), not REFUSED (lame)."""
    r = ask(zoneset, "example.test.", "DS")
    assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA and r.answer == []
    assert any(x.rdtype == RdataType.SOA for x in r.authority)
    validate_signatures(zoneset, r)
    if flavour(zoneset) == "nsec":
        types = nsec_matches(r, "example.test.")
    else:
        types = nsec3_matches(zoneset, r, "example.test.")
    assert types is not None and RdataType.DS not in types and RdataType.SOA in types


def test_dname_substitution(zoneset: ZoneSet) -> None:
    r = ask(zoneset, "www.alias.example.test.", "A")
    assert [t for t in _types(r.answer) if "RRSIG" not in t[1]] == [
        ("alias.example.test.", "DNAME"), ("www.alias.example.test.", "CNAME"), ("www.example.test.", "A")]
    validate_signatures(zoneset, r)


def test_any_and_rrsig_queries(zoneset: ZoneSet) -> None:
    r = ask(zoneset, "www.example.test.", "ANY")
    kinds = {t for _, t in _types(r.answer)}
    assert {"A", "AAAA", "A/RRSIG", "AAAA/RRSIG"} <= kinds
    validate_signatures(zoneset, r)
    udp = ask(zoneset, "www.example.test.", "ANY", tcp=False)  # ANY over UDP: TCP only (as BIND)
    assert udp.flags & dns.flags.TC and udp.answer == [] and udp.rcode() == dns.rcode.NOERROR
    r = ask(zoneset, "www.example.test.", "RRSIG", do=False)
    assert {r_.covers for r_ in r.answer} >= {RdataType.A, RdataType.AAAA}


def test_nsec3_owner_names_do_not_exist(zoneset: ZoneSet) -> None:
    if flavour(zoneset) == "nsec":  # no NSEC3 here: an NSEC3 query is plain NODATA
        r = ask(zoneset, "www.example.test.", "NSEC3")
        assert r.rcode() == dns.rcode.NOERROR and r.answer == []
        assert RdataType.NSEC3 not in (nsec_matches(r, "www.example.test.") or {RdataType.NSEC3})
        return
    owner = dns.name.Name((_h(zoneset, "www.example.test.").encode(),) + ORIGIN.labels)
    r = ask(zoneset, owner.to_text(), "NSEC3")
    assert r.rcode() == dns.rcode.NXDOMAIN  # RFC 5155 §7.2.9: NSEC3 owners are not names


# ---- message handling ------------------------------------------------------------------------


def test_id_and_case_echoed_and_cache_matches_fresh_render(zoneset: ZoneSet) -> None:
    rng = random.Random(7)
    for qname, qtype in [("www.example.test.", "A"), ("foo.wild.example.test.", "TXT"),
                         ("nope.example.test.", "A"), ("host.sub.example.test.", "A")]:
        for _ in range(3):
            mixed = "".join(c.upper() if rng.random() < 0.5 else c for c in qname)
            q = dns.message.make_query(mixed, qtype, want_dnssec=True)
            q.flags |= dns.flags.CD
            wire = respond(zoneset, q.to_wire(), tcp=False)
            assert wire is not None
            same_response(wire, render(answer(zoneset, q), 1232))  # memo == dnspython's render
            r = dns.message.from_wire(wire)
            assert r.id == q.id and r.flags & dns.flags.RD and r.flags & dns.flags.CD
            assert r.question[0].name.to_text() == mixed  # byte-exact letter case
            owners = {x.name.to_text() for x in r.answer + r.authority + r.additional}
            assert owners == {o.lower() for o in owners}  # the rest in the zone's case (as BIND)
            assert wire[12:12 + len(mixed) + 1] == q.to_wire()[12:12 + len(mixed) + 1]
    assert zoneset.cached > 0


def test_response_cache_keeps_at_most_its_bound_and_a_new_version_starts_empty(
        zoneset: ZoneSet) -> None:
    z = zoneset.zones[ORIGIN]
    bounded = ZoneSet([z], cache_entries=3)
    queries = [dns.message.make_query(name, qtype, want_dnssec=True)
               for name in ("www.example.test.", "nope.example.test.", "x.wild.example.test.")
               for qtype in ("A", "TXT")]
    for q in queries * 2:  # the second round: three from the cache, three rendered afresh
        got = respond(bounded, q.to_wire())
        assert got is not None
        same_response(got, render(answer(zoneset, q), 1232))
    assert bounded.cached == len(bounded.cache) == 3
    # Full: emptied, and filled again with what is asked now.
    assert bounded.cache.put((b"\x00", 1, False, False, False, 0), (b"", 0)) is True
    assert bounded.cached == 1
    swapped = bounded.replace(z)
    assert swapped.cached == 0 and swapped.cache.entries == 3
    bounded.cache.clear()
    assert bounded.cached == 0


def test_memoised_path_agrees_with_fresh_render_on_odd_queries(zoneset: ZoneSet) -> None:
    """Queries the wire shortcut must pass to, or serve like, the full parser."""
    cookie = dns.edns.GenericOption(dns.edns.OptionType.COOKIE, b"\x01" * 8)
    cases = [
        dns.message.make_query("big.example.test.", "TXT", want_dnssec=True, payload=600),
        dns.message.make_query("www.example.test.", "A", want_dnssec=True, options=[cookie]),
        dns.message.make_query("www.example.test.", "A", use_edns=False),
        dns.message.make_query("WWW.EXAMPLE.TEST.", "A", want_dnssec=True, payload=100),
        dns.message.make_query("sub.example.test.", "DS", want_dnssec=True),
    ]
    for q in cases:
        for tcp in (False, True):
            for _ in range(2):  # second time from the memo
                got = respond(zoneset, q.to_wire(), tcp=tcp)
                assert got is not None
                same_response(got, render(answer(zoneset, q, tcp=tcp), limit(q, tcp)))
    # Two OPT records: FORMERR (RFC 6891 §6.1.1), never a memoised answer.
    q = dns.message.make_query("www.example.test.", "A", want_dnssec=True)
    wire = bytearray(q.to_wire())
    opt = bytes(wire[-11:])
    wire[11] = 2
    r = respond(zoneset, bytes(wire) + opt)
    assert r is not None and r[3] & 0x0F == dns.rcode.FORMERR


def test_truncation_over_udp_and_full_answer_over_tcp(zoneset: ZoneSet) -> None:
    full = ask(zoneset, "big.example.test.", "TXT", tcp=True, payload=512)
    assert len(full.to_wire()) > 512 and not full.flags & dns.flags.TC
    small = ask(zoneset, "big.example.test.", "TXT", tcp=False, payload=512)
    assert small.flags & dns.flags.TC and small.answer == [] and small.flags & dns.flags.AA
    below = ask(zoneset, "big.example.test.", "TXT", tcp=False, payload=100)  # counts as 512
    assert below.flags & dns.flags.TC
    fits = ask(zoneset, "big.example.test.", "TXT", tcp=False, payload=4096)  # capped at 1232
    assert not fits.flags & dns.flags.TC and len(fits.answer) == 2
    q = dns.message.make_query("big.example.test.", "TXT", use_edns=False)
    wire = respond(zoneset, q.to_wire(), tcp=False)
    assert wire is not None and len(wire) <= 512 and dns.message.from_wire(wire).flags & dns.flags.TC


def test_refused_for_zones_not_served(zoneset: ZoneSet) -> None:
    for qname, rdclass in [("www.example.org.", "IN"), ("test.", "IN"), ("www.example.test.", "CH")]:
        q = dns.message.make_query(qname, "A", rdclass=rdclass)
        r = dns.message.from_wire(respond(zoneset, q.to_wire()) or b"")
        assert r.rcode() == dns.rcode.REFUSED and not r.flags & dns.flags.AA
        assert r.question[0].name == N(qname) and r.answer == [] and r.id == q.id


def test_formerr_notimp_badvers_and_silence(zoneset: ZoneSet) -> None:
    q = dns.message.make_query("www.example.test.", "A")
    good = q.to_wire()
    # Two questions, trailing garbage, a truncated question, AXFR over UDP: FORMERR.
    two = bytearray(good)
    two[4:6] = struct.pack("!H", 2)
    for bad in (bytes(two), good + b"\x00junk", good[:20]):
        r = respond(zoneset, bad)
        assert r is not None and r[:2] == good[:2] and r[3] & 0x0F == dns.rcode.FORMERR and r[2] & 0x80
    axfr = dns.message.make_query("example.test.", "AXFR")
    r = dns.message.from_wire(respond(zoneset, axfr.to_wire(), tcp=False) or b"")
    assert r.rcode() == dns.rcode.FORMERR
    r = dns.message.from_wire(respond(zoneset, axfr.to_wire(), tcp=True) or b"")
    assert r.rcode() == dns.rcode.REFUSED  # transfers are not served yet
    # Short header, or a response (QR set): no answer at all.
    assert respond(zoneset, good[:11]) is None
    qr = bytearray(good)
    qr[2] |= 0x80
    assert respond(zoneset, bytes(qr)) is None
    # Opcodes other than QUERY.
    for opcode in (dns.opcode.NOTIFY, dns.opcode.UPDATE, dns.opcode.STATUS):
        m = dns.message.make_query("example.test.", "SOA")
        m.set_opcode(opcode)
        r = dns.message.from_wire(respond(zoneset, m.to_wire()) or b"")
        assert r.rcode() == dns.rcode.NOTIMP and r.opcode() == opcode and r.id == m.id
    # EDNS version 1: BADVERS with our OPT at version 0 (RFC 6891 §6.1.3).
    v1 = dns.message.make_query("www.example.test.", "A", use_edns=1)
    r = dns.message.from_wire(respond(zoneset, v1.to_wire()) or b"")
    assert r.rcode() == dns.rcode.BADVERS and r.edns == 0 and r.answer == []


# ---- zone sets -------------------------------------------------------------------------------


def test_parent_and_child_zones_served_together() -> None:
    parent = ZoneIndex.build(ORIGIN, _signed(ORIGIN, ZONE_TEXT, None))
    child_text = {"@": [("SOA", "ns hostmaster 1 7200 3600 1209600 60"), ("NS", "ns")],
                  "ns": [("A", "192.0.2.53")], "host": [("A", "192.0.2.80")]}
    child = ZoneIndex.build(CHILD, _signed(CHILD, child_text, Nsec3Params()))
    zs = ZoneSet([parent, child])
    r = ask(zs, "sub.example.test.", "DS")  # from the parent side (RFC 4035 §3.1.4.1)
    assert r.flags & dns.flags.AA and _types(r.answer)[0] == ("sub.example.test.", "DS")
    r = ask(zs, "host.sub.example.test.", "A")  # the child answers: no referral
    assert r.flags & dns.flags.AA and _types(r.answer)[0] == ("host.sub.example.test.", "A")
    dns.dnssec.validate(r.answer[0], r.answer[1], _dnskeys(zs, CHILD), now=NOW)
    r = ask(zs, "sub.example.test.", "DNSKEY")
    assert _types(r.answer)[0] == ("sub.example.test.", "DNSKEY")
    # Swapping in a new version leaves the old set untouched.
    newer = ZoneIndex.build(CHILD, _signed(CHILD, {**child_text, "@": [
        ("SOA", "ns hostmaster 2 7200 3600 1209600 60"), ("NS", "ns")]}, None))
    swapped = zs.replace(newer)
    assert swapped.zones[CHILD].serial == 2 and zs.zones[CHILD].serial == 1
    assert ask(swapped, "sub.example.test.", "SOA").answer[0][0].serial == 2  # type: ignore[attr-defined]


def test_unsigned_zone_is_served_plain_even_with_do() -> None:
    zs = ZoneSet([ZoneIndex.build(ORIGIN, _zone(ORIGIN, ZONE_TEXT))])
    assert zs.zones[ORIGIN].denial == "none"
    r = ask(zs, "www.example.test.", "A")
    assert _types(r.answer) == [("www.example.test.", "A")]
    r = ask(zs, "nope.example.test.", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN and _types(r.authority) == [("example.test.", "SOA")]


def test_lookup_is_deterministic_and_has_no_side_effects(zoneset: ZoneSet) -> None:
    z = zoneset.zones[ORIGIN]
    a = lookup(z, N("nope.example.test."), RdataType.A, True)
    b = lookup(z, N("nope.example.test."), RdataType.A, True)
    assert [x.to_text() for x in rrsets(a.authority)] == [x.to_text() for x in rrsets(b.authority)]
    assert a.rcode == dns.rcode.NXDOMAIN


QTYPES = ["A", "AAAA", "TXT", "MX", "NS", "DS", "SOA", "DNSKEY", "CNAME", "DNAME", "RRSIG",
          "NSEC", "NSEC3", "NSEC3PARAM", "CDS", "SRV", "ANY"]


def test_wire_assembly_says_what_dnspython_renders(zoneset: ZoneSet) -> None:
    """Differential: the pre-rendered path (`respond`) against dnspython's rendering of the
    same lookup, for every name in the zone, names below and beside them, NSEC3 owners,
    every common type, DO or not, EDNS or not, UDP and TCP."""
    z = zoneset.zones[ORIGIN]
    names = {dns.name.from_wire(k, 0)[0] for k in z.kind_by_key}
    names |= {dns.name.Name((b"zz",) + n.labels) for n in list(names)}
    names |= {r.name for node in z.nsec3_nodes.values() for r in node.rrsets.values()}
    names |= {N("example.org."), N("."), N("test.")}
    checked = 0
    for name in sorted(names):
        for qtype in QTYPES:
            for do, edns in ((True, True), (False, False)):
                q = dns.message.make_query(name, qtype, want_dnssec=do, use_edns=edns)
                for tcp in (False, True) if qtype == "ANY" else (False,):
                    got = respond(zoneset, q.to_wire(), tcp=tcp)
                    assert got is not None
                    same_response(got, render(answer(zoneset, q, tcp=tcp), limit(q, tcp)))
                    checked += 1
    assert checked > 1500


def test_index_from_the_wire_answers_alike_and_renders_nothing_per_query(tmp_path: Path) -> None:
    """Read as wire, every RRset keeps its records as bytes (`ServedRRset`): answers are
    assembled from them without rendering a record or making dnspython rdata."""
    path = _written(tmp_path, Nsec3Params())
    lazy = ZoneIndex.build(ORIGIN, zonefile.load_zone(str(path), "example.test.").nodes)
    eager = ZoneIndex.from_wire(ORIGIN, zonefile.load_wire(str(path), "example.test.").rrsets)
    served = [r for n in [*eager.by_key.values(), *eager.nsec3_nodes.values()]
              for r in [*n.rrsets.values(), *n.sigs.values()]]
    assert len(served) > 50 and all(isinstance(r, ServedRRset) for r in served)
    for qname, qtype in [("www.example.test.", "A"), ("nope.example.test.", "A"),
                         ("x.wild.example.test.", "TXT"), ("sub.example.test.", "A"),
                         ("www.example.test.", "MX"), ("a.b.c.example.test.", "TXT")]:
        q = dns.message.make_query(qname, qtype, want_dnssec=True)
        got = respond(ZoneSet([eager]), q.to_wire())
        want = respond(ZoneSet([lazy]), q.to_wire())
        assert got is not None and want is not None
        same_response(got, want)
    made = [r for r in served if _made(r)]
    assert len(eager.wires) == 0 and not made and len(lazy.wires) > 0


def _made(rrset: ServedRRset) -> bool:
    """Whether `rrset` has made its dnspython rdata (it does so on first use)."""
    try:
        dns.set.Set.items.__get__(rrset)
    except AttributeError:
        return False
    return True


def _written(tmp_path: Path, nsec3: Nsec3Params | None) -> Path:
    """The test zone signed, as a zone file."""
    path = tmp_path / "signed"
    path.write_text(sign_text(*_sign_args(ORIGIN, ZONE_TEXT, nsec3)))
    return path


@pytest.mark.parametrize("flavour", list(FLAVOURS))
def test_index_from_the_wire_reader_answers_as_from_dnspython(tmp_path: Path, flavour: str) -> None:
    """The server indexes what `zonefile.load_wire` read (ZoneIndex.from_wire); every answer
    says what the index built from dnspython's reader of the same file says."""
    path = _written(tmp_path, FLAVOURS[flavour])
    fast = ZoneSet([ZoneIndex.from_wire(ORIGIN, zonefile.load_wire(str(path), "example.test.").rrsets)])
    slow = ZoneSet([ZoneIndex.build(ORIGIN, zonefile.load_zone(str(path), "example.test.").nodes)])
    z = slow.zones[ORIGIN]
    names = {dns.name.from_wire(k, 0)[0] for k in z.kind_by_key}
    names |= {dns.name.Name((b"zz",) + n.labels) for n in list(names)}
    for name in sorted(names):
        for qtype in ("A", "TXT", "NS", "DS", "SOA", "DNSKEY", "RRSIG", "NSEC", "NSEC3PARAM", "MX"):
            q = dns.message.make_query(name, qtype, want_dnssec=True)
            got, want = respond(fast, q.to_wire()), respond(slow, q.to_wire())
            assert got is not None and want is not None
            same_response(got, want)
    axfr = [r.to_text() for r in transfer.zone_rrsets(fast.zones[ORIGIN])]
    assert sorted(axfr) == sorted(r.to_text() for r in transfer.zone_rrsets(z))


@pytest.mark.parametrize("nsec3", [False, True])
def test_an_empty_wildcard_is_nodata_with_a_proof_that_validates(nsec3: bool) -> None:
    """RFC 4592 §4.9: a source of synthesis that is an empty non-terminal (the zone holds
    x.*.zz.) exists, with no data: foo.zz. is NODATA, not NXDOMAIN (as BIND answers), and
    its wildcard NODATA proof (RFC 4035 §3.1.3.4, RFC 5155 §7.2.5) validates."""
    import dataclasses

    from sigchain.core.validate.validator import Evidence, Status, ZoneCut, validate
    from tests.unit.lab import NOW, TTL, build

    z = build("zz.", {"x.*": [("A", ("192.0.2.9",))], "www": [("A", ("192.0.2.1",))]},
              nsec3=Nsec3Params() if nsec3 else None)
    zs = ZoneSet([ZoneIndex.build(z.origin, z.nodes)])
    query = dns.message.make_query("foo.zz.", "A", want_dnssec=True)
    r = dns.message.from_wire(respond(zs, query.to_wire(), tcp=False))
    assert r.rcode() == dns.rcode.NOERROR and r.answer == [] and r.flags & dns.flags.AA
    anchor = [dns.rrset.from_rdata_list(z.origin, TTL, z.ds_rdatas())]
    ev = Evidence.from_message(r, (ZoneCut(z.origin, dnskey=z.rrsets(z.origin, "DNSKEY")),))
    verdict = validate(ev, anchor, NOW)
    assert verdict.status is Status.SECURE, verdict.findings
    # the same proof given as a name error is a lie the validator does not take
    lie = validate(dataclasses.replace(ev, rcode=dns.rcode.NXDOMAIN), anchor, NOW)
    assert lie.status is Status.BOGUS


def test_an_edns_option_running_past_the_opt_rdata_is_formerr(zoneset: ZoneSet) -> None:
    """RFC 6891 §6.1.2: an OPT whose option length runs past its RDATA is malformed: FORMERR,
    as named, Knot and NSD answer (a well-formed unknown option is ignored)."""
    q = dns.message.make_query("www.example.test.", "A", use_edns=0,
                               options=[dns.edns.GenericOption(65001, b"ab")])
    good = respond(zoneset, q.to_wire())
    assert good is not None and dns.message.from_wire(good).rcode() == dns.rcode.NOERROR
    bad = bytearray(q.to_wire())
    bad[-4:-2] = (16).to_bytes(2, "big")  # the option says 16 bytes; the RDATA holds 6
    got = respond(zoneset, bytes(bad))
    assert got is not None and got[:2] == bad[:2] and got[3] & 0x0F == dns.rcode.FORMERR


def test_a_signed_referral_drops_the_glue_rrsig_before_setting_tc(zoneset: ZoneSet) -> None:
    """As `render` for plain queries: a TSIG-signed query's referral that does not fit whole
    loses the additional section's RRSIGs first, without TC (RFC 4035 §3.1.1)."""
    keyring = dns.tsigkeyring.from_text({"k.": ("hmac-sha256", "c2VjcmV0c2VjcmV0c2VjcmV0")})
    primary = Primary({}, keyring, SYSTEM)

    def asked(payload: int) -> tuple[dns.message.Message, int]:
        q = dns.message.make_query("x.child.deep.example.test.", "A", want_dnssec=True,
                                   payload=payload)
        q.use_tsig(keyring, keyname="k.")
        got = primary.handle(zoneset, {}, q.to_wire(), False, "127.0.0.1")
        assert isinstance(got, bytes)  # signed: from_wire checks the TSIG
        return dns.message.from_wire(got, keyring=keyring, request_mac=q.mac), len(got)

    whole, size = asked(4096)
    assert _types(whole.additional) == [("ns1.example.test.", "A"), ("ns1.example.test.", "A/RRSIG")]
    if size - 40 < 512:  # (as in test_referral_glue_from_authoritative_data: opt-out's only)
        return
    tight, _ = asked(size - 40)
    assert not tight.flags & dns.flags.TC and _types(tight.additional) == [("ns1.example.test.", "A")]
