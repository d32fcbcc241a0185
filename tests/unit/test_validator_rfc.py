"""The example responses of RFC 4035 Appendix B and RFC 5155 Appendix B, validated with `now`
fixed inside their signature windows.

The zones are the signed example zones of RFC 4035 Appendix A (RSASHA1, algorithm 5) and
RFC 5155 Appendix A (NSEC3RSASHA1, algorithm 7), one record per line in tests/unit/data/.
Every published RRSIG in both verifies (test_published_signatures_verify), so the responses
are assembled from the published records as the appendices print them.

Outcomes:
- RFC 4035 B.1-B.7 are secure, except B.5 (referral to an unsigned zone), which is insecure.
- RFC 5155 B.2 and B.2.1 are secure; B.3 (opt-out referral) is insecure. Every NSEC3 record of
  the appendix zone has the Opt-Out flag, so the closest-encloser proofs of B.1, B.4 and B.5
  rest on opt-out records and RFC 5155 §9.2 forbids the AD bit: insecure. The same proofs over
  the same names, salt and iterations re-signed by sigchain without opt-out come out secure.
- RFC 4035 B.8 and RFC 5155 B.6 are DS queries answered by the child zone. The DS RRset lives
  in the parent: with only the example zone's key as anchor the question lies outside the
  island of trust (indeterminate); under a signed parent the child's apex NSEC/NSEC3 is
  rejected as coming from the wrong side of the cut (bogus), as BIND and Unbound do.
"""

from __future__ import annotations

from pathlib import Path

import dns.dnssec
import dns.name
import dns.rcode
import dns.rdataset
import dns.rdatatype
import dns.rrset
import dns.zone
import pytest
from dns.rdatatype import RdataType

from sigchain.core.dnssec import algorithms, ds, rrsig
from sigchain.core.dnssec.policy import DEFAULT_POLICY
from sigchain.core.dnssec.rrsig import SigWindow
from sigchain.core.dnssec.timefmt import parse_timestamp14
from sigchain.core.sign import signer
from sigchain.core.validate.validator import Evidence, Kind, Question, Status, ZoneCut, validate
from sigchain.core.zone.nsec3hash import Nsec3Params
from sigchain.errors import UnsafeRefused
from sigchain.model.keys import KeyRole
from tests.unit.lab import DAY, Zone, build, make_key
from tests.zonetools import sign_nodes

DATA = Path(__file__).parent / "data"
N = dns.name.from_text
EXAMPLE = N("example.")
NOW_4035 = parse_timestamp14("20040420000000")  # window 20040409183619 .. 20040509183619
NOW_5155 = parse_timestamp14("20100101000000")  # window 20051021000000 .. 20150420235959


def load(filename: str) -> Zone:
    z = dns.zone.from_file(str(DATA / filename), EXAMPLE, relativize=False)
    return Zone(EXAMPLE, [], {name: list(node.rdatasets) for name, node in z.nodes.items()})


RFC4035 = load("rfc4035-appendix-a.zone")
RFC5155 = load("rfc5155-appendix-a.zone")


def ksk_anchor(zone: Zone) -> list[dns.rrset.RRset]:
    keys = [rd for rd in zone.rrsets(EXAMPLE, "DNSKEY", sigs=False)[0] if rd.flags & 1]  # type: ignore[attr-defined]
    return [dns.rrset.from_rdata_list(EXAMPLE, 3600, keys)]


def records(zone: Zone, *specs: tuple[str, str] | tuple[str, str, str]) -> tuple[dns.rrset.RRset, ...]:
    out: list[dns.rrset.RRset] = []
    for spec in specs:
        name, rdtype = spec[0], spec[1]
        owner = N(spec[2]) if len(spec) == 3 else None  # type: ignore[misc]
        out += zone.rrsets(name, rdtype, owner=owner)
    return tuple(out)


def evidence(zone: Zone, qname: str, qtype: str, rcode: int = 0, answer: tuple = (),
             authority: tuple = (), parent: Zone | None = None) -> Evidence:
    dnskey = zone.rrsets(EXAMPLE, "DNSKEY")
    cuts = (ZoneCut(EXAMPLE, dnskey=dnskey),)
    if parent is not None:
        cuts = (ZoneCut(dns.name.root, dnskey=parent.rrsets(dns.name.root, "DNSKEY")),
                ZoneCut(EXAMPLE, ds=parent.rrsets(EXAMPLE, "DS"), dnskey=dnskey))
    q = Question(N(qname), dns.rdatatype.from_text(qtype))
    return Evidence(q, rcode, records(zone, *answer), records(zone, *authority), cuts)


def signed_root(child: Zone, now: int) -> Zone:
    """A root zone signed by sigchain that delegates example. with a DS for the appendix KSK,
    so the appendix zone can be validated under a secure parent."""
    ksk = ksk_anchor(child)[0][0]
    ds_text = ds.make_ds(EXAMPLE, ksk, 2).to_text()  # type: ignore[arg-type]
    return build(".", {"example": [("NS", ("ns1.example.",)), ("DS", (ds_text,))]},
                 inception=now - DAY, now=now)


def parent_anchor(root: Zone) -> list[dns.rrset.RRset]:
    return [dns.rrset.from_rdata_list(dns.name.root, 3600, root.ds_rdatas())]


def test_published_signatures_verify() -> None:
    """Every RRSIG of both appendix zones verifies with the zone's published DNSKEYs."""
    for zone in (RFC4035, RFC5155):
        keys = {}
        for rd in zone.rrsets(EXAMPLE, "DNSKEY", sigs=False)[0]:
            keys[dns.dnssec.key_id(rd)] = rd  # type: ignore[arg-type]
        count = 0
        for name, rdatasets in zone.nodes.items():
            for rds in rdatasets:
                if rds.rdtype != RdataType.RRSIG:
                    continue
                covered = next(r for r in rdatasets if r.rdtype == rds.covers)
                for sig in rds:
                    key = keys[sig.key_tag]  # type: ignore[attr-defined]
                    alg = algorithms.get(sig.algorithm)  # type: ignore[attr-defined]
                    data = rrsig.signature_data(name, rds.covers, 1, sig.original_ttl,  # type: ignore[attr-defined]
                                                list(covered), rrsig.header_of(sig))  # type: ignore[arg-type]
                    assert algorithms.verify(alg, algorithms.public_key_from_dnskey(alg, key.key),
                                             sig.signature, data), (name, rds.covers)  # type: ignore[attr-defined]
                    count += 1
        assert count == (27 if zone is RFC4035 else 30)


def test_rsasha1_validates_but_does_not_sign() -> None:
    """RFC 8624 §3.1: RSASHA1 and NSEC3RSASHA1 are validated (MUST) but not used to sign."""
    for number in (5, 7):
        assert DEFAULT_POLICY.may_validate(number)
        with pytest.raises(UnsafeRefused):
            DEFAULT_POLICY.check_may_sign(algorithms.get(number), force=False)


SOA = ("example.", "SOA")

RFC4035_CASES = [
    ("B.1 answer", "x.w.example.", "MX", 0, (("x.w.example.", "MX"),), (("example.", "NS"),),
     Status.SECURE, Kind.ANSWER),
    ("B.2 name error", "ml.example.", "A", dns.rcode.NXDOMAIN, (),
     (SOA, ("b.example.", "NSEC"), ("example.", "NSEC")), Status.SECURE, Kind.NXDOMAIN),
    ("B.3 no data", "ns1.example.", "MX", 0, (), (SOA, ("ns1.example.", "NSEC")),
     Status.SECURE, Kind.NODATA),
    ("B.4 referral to signed zone", "mc.a.example.", "MX", 0, (),
     (("a.example.", "NS"), ("a.example.", "DS")), Status.SECURE, Kind.REFERRAL),
    ("B.5 referral to unsigned zone", "mc.b.example.", "MX", 0, (),
     (("b.example.", "NS"), ("b.example.", "NSEC")), Status.INSECURE, Kind.REFERRAL),
    ("B.6 wildcard expansion", "a.z.w.example.", "MX", 0, (("*.w.example.", "MX", "a.z.w.example."),),
     (("example.", "NS"), ("x.y.w.example.", "NSEC")), Status.SECURE, Kind.ANSWER),
    ("B.7 wildcard no data", "a.z.w.example.", "AAAA", 0, (),
     (SOA, ("x.y.w.example.", "NSEC"), ("*.w.example.", "NSEC")), Status.SECURE, Kind.NODATA),
]


@pytest.mark.parametrize("under_root", [False, True], ids=["anchor-at-example", "signed-root"])
@pytest.mark.parametrize(("case", "qname", "qtype", "rcode", "answer", "authority", "status", "kind"),
                         RFC4035_CASES, ids=[c[0] for c in RFC4035_CASES])
def test_rfc4035_appendix_b(case: str, qname: str, qtype: str, rcode: int, answer: tuple,
                            authority: tuple, status: Status, kind: Kind, under_root: bool) -> None:
    """RFC 4035 Appendix B (and C): each example response validates as the RFC describes."""
    parent = signed_root(RFC4035, NOW_4035) if under_root else None
    anchors = parent_anchor(parent) if parent else ksk_anchor(RFC4035)
    v = validate(evidence(RFC4035, qname, qtype, rcode, answer, authority, parent), anchors, NOW_4035)
    assert (v.status, v.kind) == (status, kind), [str(f.message) for f in v.findings]
    assert not [f for f in v.findings if f.severity.value == "error"]
    links = [str(link) for link in v.links]
    assert any("RRSIG by example. key 9465" in s and "DNSKEY" in s for s in links)  # KSK self-sig
    if status is Status.SECURE:
        assert v.ttl == 3600  # every record of the zone has TTL 3600, far from expiry
    if case.startswith("B.6"):
        assert any("expanded from *.w.example." in s for s in links)
    if case.startswith("B.5"):
        assert any(link.kind == "no-ds" and link.name == N("b.example.") for link in v.links)



def test_rfc4035_b1_links_name_the_keys() -> None:
    """B.1 / C.1: the ZSK 38519 verifies the MX RRSIG; the KSK 9465 (the anchor) the DNSKEY RRset."""
    v = validate(evidence(RFC4035, "x.w.example.", "MX", answer=(("x.w.example.", "MX"),)),
                 ksk_anchor(RFC4035), NOW_4035)
    by_kind = {(link.kind, dns.rdatatype.to_text(link.rdtype), link.key_tag) for link in v.links}
    assert {("anchor", "DNSKEY", 9465), ("rrsig", "DNSKEY", 9465), ("rrsig", "MX", 38519)} <= by_kind


def test_rfc4035_b8_ds_answered_by_the_child() -> None:
    """B.8: a DS query answered by the child's server. The DS lives in the parent, so with only
    the child's key as anchor it is outside the island of trust; under a secure parent the
    child's apex NSEC (SOA bit set) cannot deny the DS (RFC 4035 §3.1.4.1)."""
    authority = (SOA, ("example.", "NSEC"))
    v = validate(evidence(RFC4035, "example.", "DS", authority=authority), ksk_anchor(RFC4035), NOW_4035)
    assert v.status is Status.INDETERMINATE and v.codes == {"NO_TRUST_ANCHOR"}
    root = signed_root(RFC4035, NOW_4035)
    v = validate(evidence(RFC4035, "example.", "DS", authority=authority, parent=root),
                 parent_anchor(root), NOW_4035)
    assert v.status is Status.BOGUS
    assert "DENIAL_WRONG_SIDE" in v.codes


def test_rfc4035_proofs_fail_without_their_records() -> None:
    """The appendix responses minus one record: the verdicts turn bogus."""
    anchors = ksk_anchor(RFC4035)
    no_wildcard_proof = evidence(RFC4035, "ml.example.", "A", dns.rcode.NXDOMAIN,
                                 authority=(SOA, ("b.example.", "NSEC")))
    v = validate(no_wildcard_proof, anchors, NOW_4035)
    assert v.status is Status.BOGUS and "DENIAL_UNPROVEN" in v.codes and 12 in v.ede
    bare_wildcard = evidence(RFC4035, "a.z.w.example.", "MX",
                             answer=(("*.w.example.", "MX", "a.z.w.example."),))
    v = validate(bare_wildcard, anchors, NOW_4035)
    assert v.status is Status.BOGUS and "WILDCARD_UNPROVEN" in v.codes
    expired = evidence(RFC4035, "x.w.example.", "MX", answer=(("x.w.example.", "MX"),))
    v = validate(expired, anchors, parse_timestamp14("20040601000000"))
    assert v.status is Status.BOGUS and 7 in v.ede


SOA5155 = ("example.", "SOA")
RFC5155_CASES = [
    ("B.1 name error", "a.c.x.w.example.", "A", dns.rcode.NXDOMAIN, (),
     (SOA5155, ("0p9mhaveqvm6t7vbl5lop2u3t2rp3tom.example.", "NSEC3"),
      ("b4um86eghhds6nea196smvmlo4ors995.example.", "NSEC3"),
      ("35mthgpgcu1qg68fab165klnsnk3dpvl.example.", "NSEC3")), Status.INSECURE, Kind.NXDOMAIN),
    ("B.2 no data", "ns1.example.", "MX", 0, (),
     (SOA5155, ("2t7b4g4vsa5smi47k61mv5bv1a22bojr.example.", "NSEC3")), Status.SECURE, Kind.NODATA),
    ("B.2.1 no data, empty non-terminal", "y.w.example.", "A", 0, (),
     (SOA5155, ("ji6neoaepv8b5o6k4ev33abha8ht9fgc.example.", "NSEC3")), Status.SECURE, Kind.NODATA),
    ("B.3 referral to an opt-out unsigned zone", "mc.c.example.", "MX", 0, (),
     (("c.example.", "NS"), ("35mthgpgcu1qg68fab165klnsnk3dpvl.example.", "NSEC3"),
      ("0p9mhaveqvm6t7vbl5lop2u3t2rp3tom.example.", "NSEC3")), Status.INSECURE, Kind.REFERRAL),
    ("B.4 wildcard expansion", "a.z.w.example.", "MX", 0, (("*.w.example.", "MX", "a.z.w.example."),),
     (("example.", "NS"), ("q04jkcevqvmu85r014c7dkba38o0ji5r.example.", "NSEC3")),
     Status.INSECURE, Kind.ANSWER),
    ("B.5 wildcard no data", "a.z.w.example.", "AAAA", 0, (),
     (SOA5155, ("k8udemvp1j2f7eg6jebps17vp3n8i58h.example.", "NSEC3"),
      ("q04jkcevqvmu85r014c7dkba38o0ji5r.example.", "NSEC3"),
      ("r53bq7cc2uvmubfu5ocmm6pers9tk9en.example.", "NSEC3")), Status.INSECURE, Kind.NODATA),
]


@pytest.mark.parametrize(("case", "qname", "qtype", "rcode", "answer", "authority", "status", "kind"),
                         RFC5155_CASES, ids=[c[0] for c in RFC5155_CASES])
def test_rfc5155_appendix_b(case: str, qname: str, qtype: str, rcode: int, answer: tuple,
                            authority: tuple, status: Status, kind: Kind) -> None:
    """RFC 5155 Appendix B with the published zone (all NSEC3 records opt-out)."""
    v = validate(evidence(RFC5155, qname, qtype, rcode, answer, authority), ksk_anchor(RFC5155), NOW_5155)
    assert (v.status, v.kind) == (status, kind), [f.message for f in v.findings]
    assert not [f for f in v.findings if f.severity.value == "error"]
    if status is Status.INSECURE and kind is not Kind.REFERRAL:
        assert v.codes == {"NSEC3_OPT_OUT_INSECURE"}  # RFC 5155 §9.2
    assert any(link.kind in ("denial", "no-ds") for link in v.links)


def test_rfc5155_b1_proof_uses_the_records_the_rfc_names() -> None:
    """B.1: closest encloser x.w.example (b4um...), next closer c.x.w.example covered by 0p9m...,
    wildcard *.x.w.example covered by 35mt..."""
    case = RFC5155_CASES[0]
    v = validate(evidence(RFC5155, *case[1:4], case[4], case[5]), ksk_anchor(RFC5155), NOW_5155)
    denial = next(link for link in v.links if link.kind == "denial")
    assert "closest encloser x.w.example." in denial.detail
    assert "next closer c.x.w.example." in denial.detail


def test_rfc5155_b6_ds_answered_by_the_child() -> None:
    authority = (SOA5155, ("0p9mhaveqvm6t7vbl5lop2u3t2rp3tom.example.", "NSEC3"))
    v = validate(evidence(RFC5155, "example.", "DS", authority=authority), ksk_anchor(RFC5155), NOW_5155)
    assert v.status is Status.INDETERMINATE
    root = signed_root(RFC5155, NOW_5155)
    v = validate(evidence(RFC5155, "example.", "DS", authority=authority, parent=root),
                 parent_anchor(root), NOW_5155)
    assert v.status is Status.BOGUS and "DENIAL_WRONG_SIDE" in v.codes


def resigned_5155(opt_out: bool) -> Zone:
    """The appendix zone's data re-signed by sigchain with the same NSEC3 parameters (SHA-1,
    12 iterations, salt aabbccdd). The A record at 2t7b4g4vsa5smi47k61mv5bv1a22bojr.example is
    left out: the RFC put it there to collide with the hashed owner of ns1.example, a collision
    sigchain's signer refuses."""
    data: dict[dns.name.Name, list[dns.rdataset.Rdataset]] = {}
    for name, rdatasets in RFC5155.nodes.items():
        if name == N("2t7b4g4vsa5smi47k61mv5bv1a22bojr.example."):
            continue
        kept = [r for r in rdatasets if r.rdtype not in (RdataType.RRSIG, RdataType.NSEC3,
                                                         RdataType.NSEC3PARAM, RdataType.DNSKEY)]
        if kept:
            data[name] = kept
    keys = [make_key(EXAMPLE, KeyRole.KSK), make_key(EXAMPLE, KeyRole.ZSK)]
    params = Nsec3Params(iterations=12, salt=bytes.fromhex("aabbccdd"), opt_out=opt_out)
    opts = signer.SignOptions(SigWindow(NOW_5155 - DAY, 30 * DAY, 0), params)
    return Zone(EXAMPLE, keys, sign_nodes(data, EXAMPLE, keys, opts, NOW_5155))


def test_rfc5155_resigned_without_opt_out_is_secure() -> None:
    """The same closest-encloser proofs without opt-out: B.1, B.4 and B.5 become secure, B.3's
    unsigned delegation is proven by the NSEC3 that now matches c.example."""
    zone = resigned_5155(opt_out=False)
    owners = {n.labels[0].decode() for n, rs in zone.nodes.items() if any(r.rdtype == RdataType.NSEC3 for r in rs)}
    assert {"0p9mhaveqvm6t7vbl5lop2u3t2rp3tom", "b4um86eghhds6nea196smvmlo4ors995",
            "35mthgpgcu1qg68fab165klnsnk3dpvl", "q04jkcevqvmu85r014c7dkba38o0ji5r",
            "k8udemvp1j2f7eg6jebps17vp3n8i58h", "r53bq7cc2uvmubfu5ocmm6pers9tk9en",
            "ji6neoaepv8b5o6k4ev33abha8ht9fgc"} <= owners  # the RFC's hashes: same names, same params
    anchors = [dns.rrset.from_rdata_list(EXAMPLE, 3600, [k.dnskey for k in zone.ksks])]
    every_nsec3 = zone.all_denial()
    expected = {"B.1": Status.SECURE, "B.2 ": Status.SECURE, "B.2.1": Status.SECURE,
                "B.3": Status.INSECURE, "B.4": Status.SECURE, "B.5": Status.SECURE}
    for case, qname, qtype, rcode, answer, authority, _, kind in RFC5155_CASES:
        keep = tuple(a for a in authority if a[1] != "NSEC3")
        ev = evidence(zone, qname, qtype, rcode, answer, keep)
        ev = Evidence(ev.question, ev.rcode, ev.answer, ev.authority + every_nsec3, ev.zones)
        v = validate(ev, anchors, NOW_5155)
        want = next(s for k, s in expected.items() if case.startswith(k))
        assert (v.status, v.kind) == (want, kind), (case, [f.message for f in v.findings])
        assert "NSEC3_OPT_OUT_INSECURE" not in v.codes
