"""The validator's rules, one or more tests each, over a root → TLD → zone hierarchy signed by
sigchain (tests/unit/lab.py) with `now` fixed. Each test hand-assembles the evidence a tracer
would gather and asserts the verdict, the finding codes and the EDE codes."""

from __future__ import annotations

import dataclasses

import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.DNSKEY
import dns.rrset
import pytest

from sigchain.core.dnssec.policy import DEFAULT_POLICY, DnssecPolicy, ValidationLimits
from sigchain.core.validate.validator import (
    Evidence,
    Kind,
    Question,
    Status,
    Verdict,
    ZoneCut,
    validate,
)
from sigchain.core.zone.nsec3hash import Nsec3Params
from sigchain.model.keys import KeyPair, KeyRole, KeyTiming
from tests.unit.lab import DAY, NOW, TTL, Lab, Zone, build, build_lab, make_key

N = dns.name.from_text
LAB: Lab = build_lab()
EX = LAB["example.test."]
N3 = LAB["nsec3.test."]
OPT = LAB["optout.test."]
TLD = LAB["test."]


def run(ev: Evidence, anchors: list[dns.rrset.RRset] | None = None, now: int = NOW,
        policy: DnssecPolicy = DEFAULT_POLICY) -> Verdict:
    return validate(ev, LAB.anchors() if anchors is None else anchors, now, policy)


def ask(qname: str, qtype: str, answer: tuple = (), authority: tuple = (), rcode: int = 0,
        zones: list[str] | None = None, **kw: object) -> Verdict:
    return run(LAB.evidence(qname, qtype, answer, authority, rcode, zones), **kw)  # type: ignore[arg-type]


def with_zones(ev: Evidence, *replace: ZoneCut) -> Evidence:
    """The evidence with some zone cuts swapped for doctored ones."""
    by_name = {c.name: c for c in replace}
    return dataclasses.replace(ev, zones=tuple(by_name.get(c.name, c) for c in ev.zones))


def standalone(origin: str, keys: list[KeyPair], records: dict | None = None,
               nsec3: Nsec3Params | None = None, **kw: object) -> Zone:
    return build(origin, records or {"www": [("A", ("192.0.2.99",))]}, keys=keys, nsec3=nsec3, **kw)  # type: ignore[arg-type]


def alone(zone: Zone, qname: str, qtype: str, answer: tuple = (), authority: tuple = (),
          rcode: int = 0) -> Evidence:
    """Evidence for a zone anchored by itself (a DS anchor for its KSKs)."""
    q = Question(N(qname), dns.rdatatype.from_text(qtype))
    return Evidence(q, rcode, tuple(answer), tuple(authority),
                    (ZoneCut(zone.origin, dnskey=zone.rrsets(zone.origin, "DNSKEY")),))


def ds_anchor(zone: Zone, rdatas: list[dns.rdata.Rdata] | None = None) -> list[dns.rrset.RRset]:
    return [dns.rrset.from_rdata_list(zone.origin, TTL, rdatas or zone.ds_rdatas())]


# ---------------------------------------------------------------------------------------------
# The chain from the anchor down
# ---------------------------------------------------------------------------------------------


def test_secure_answer_through_root_tld_and_zone() -> None:
    v = ask("www.example.test.", "A", EX.rrsets("www.example.test.", "A"))
    assert (v.status, v.kind, v.ttl, v.findings) == (Status.SECURE, Kind.ANSWER, TTL, ())
    kinds = [(link.zone.to_text(), link.kind, dns.rdatatype.to_text(link.rdtype)) for link in v.links]
    assert kinds == [
        (".", "anchor", "DNSKEY"), (".", "rrsig", "DNSKEY"), (".", "rrsig", "DS"),
        ("test.", "ds", "DNSKEY"), ("test.", "rrsig", "DNSKEY"), ("test.", "rrsig", "DS"),
        ("example.test.", "ds", "DNSKEY"), ("example.test.", "rrsig", "DNSKEY"),
        ("example.test.", "rrsig", "A"),
    ]
    assert v.links[-1].key_tag == EX.zsk.key_tag


def test_trust_anchor_as_dnskey_and_closest_anchor_wins() -> None:
    """RFC 4035 §4.4: anchors in DNSKEY form work; RFC 6840 §4.10: the closest anchor is used
    (a wrong root anchor does not matter when example.test. has its own)."""
    root = LAB["."]
    dnskey_anchor = [dns.rrset.from_rdata_list(dns.name.root, TTL, [k.dnskey for k in root.ksks])]
    assert ask("www.example.test.", "A", EX.rrsets("www.example.test.", "A"),
               anchors=dnskey_anchor).status is Status.SECURE
    wrong_root = ds_anchor(root, EX.ds_rdatas())  # example.test.'s digest under the root's name
    assert ask("www.example.test.", "A", EX.rrsets("www.example.test.", "A"),
               anchors=wrong_root).status is Status.BOGUS
    local = [dns.rrset.from_rdata_list(EX.origin, TTL, [k.dnskey for k in EX.ksks])]
    v = ask("www.example.test.", "A", EX.rrsets("www.example.test.", "A"), anchors=wrong_root + local)
    assert v.status is Status.SECURE and v.links[0].zone == EX.origin


def test_no_anchor_is_indeterminate() -> None:
    """RFC 4033 §5: no trust anchor above the data."""
    other = [dns.rrset.from_rdata_list(N3.origin, TTL, [k.dnskey for k in N3.ksks])]
    v = ask("www.example.test.", "A", EX.rrsets("www.example.test.", "A"), anchors=other)
    assert v.status is Status.INDETERMINATE and v.codes == {"NO_TRUST_ANCHOR"}


def test_missing_dnskey_is_bogus_with_ede_9() -> None:
    ev = LAB.evidence("www.example.test.", "A", EX.rrsets("www.example.test.", "A"))
    cut = LAB.cut("example.test.")
    v = run(with_zones(ev, dataclasses.replace(cut, dnskey=())))
    assert v.status is Status.BOGUS and "DNSKEY_MISSING" in v.codes and v.ede == (9,)


# ---------------------------------------------------------------------------------------------
# DS ↔ DNSKEY (RFC 4035 §5.2)
# ---------------------------------------------------------------------------------------------


def doctored_ds(child: Zone, rdatas: list[dns.rdata.Rdata]) -> ZoneCut:
    """The child's cut with a DS RRset re-signed by the parent, so only the DS content differs."""
    parent = LAB.zones[child.origin.parent()]
    sig_texts = [rd.to_text() for rd in rdatas]
    return dataclasses.replace(LAB.cut(child.origin), ds=parent.sign(child.origin.to_text(), "DS", *sig_texts))


def tweak(rd: dns.rdata.Rdata, **changes: object) -> dns.rdata.Rdata:
    return rd.replace(**changes)


@pytest.mark.parametrize("change", [
    {"digest": b"\x00" * 32}, {"key_tag": "+1"}, {"algorithm": 8}, {"algorithm": 14},
], ids=["digest", "key-tag", "algorithm-8", "algorithm-14"])
def test_ds_must_match_algorithm_key_tag_and_digest(change: dict) -> None:
    good = EX.ds_rdatas()[0]
    if change.get("key_tag") == "+1":
        change = {"key_tag": (good.key_tag + 1) % 65536}  # type: ignore[attr-defined]
    ev = LAB.evidence("www.example.test.", "A", EX.rrsets("www.example.test.", "A"))
    v = run(with_zones(ev, doctored_ds(EX, [tweak(good, **change)])))
    assert v.status is Status.BOGUS and "DS_NO_MATCHING_DNSKEY" in v.codes and 9 in v.ede
    assert run(with_zones(ev, doctored_ds(EX, [good]))).status is Status.SECURE  # the control


def variant_ksk(origin: dns.name.Name, flags: int = 257, protocol: int = 3) -> KeyPair:
    k = make_key(origin, KeyRole.KSK)
    dnskey = dns.rdtypes.ANY.DNSKEY.DNSKEY(
        dns.rdataclass.IN, dns.rdatatype.DNSKEY, flags, protocol, 13, k.dnskey.key)
    return KeyPair(origin, 13, dnskey, k.private, KeyTiming())


@pytest.mark.parametrize(("flags", "protocol", "secure"), [
    (257, 3, True), (257, 2, False), (1, 3, False), (257 | 0x80, 3, False),
], ids=["good", "protocol-2", "no-zone-bit", "revoked"])
def test_dnskey_protocol_zone_bit_and_revocation(flags: int, protocol: int, secure: bool) -> None:
    """RFC 4034 §2.1.1-2.1.2, RFC 5011 §2.1: a DS-matched key must be a zone key of protocol 3
    and not revoked; the DS is computed from the very DNSKEY published, so only the flags differ."""
    origin = N("keys.test.")
    ksk = variant_ksk(origin, flags, protocol)
    zone = standalone("keys.test.", [ksk, make_key(origin, KeyRole.ZSK)])
    v = run(alone(zone, "www.keys.test.", "A", zone.rrsets("www.keys.test.", "A")), ds_anchor(zone))
    if secure:
        assert v.status is Status.SECURE
    else:
        assert v.status is Status.BOGUS
        assert {"DNSKEY_UNUSABLE", "DS_NO_MATCHING_DNSKEY"} <= v.codes and 9 in v.ede


# ---------------------------------------------------------------------------------------------
# Algorithms and digests (RFC 4035 §5.2, RFC 6840 §4.2, §5.11, RFC 8624, RFC 4509)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", [1, 3, 6, 12, 200], ids=["RSAMD5", "DSA", "NSEC3DSA", "ECC-GOST", "unassigned"])
def test_unsupported_ds_algorithm_makes_the_zone_insecure(algorithm: int) -> None:
    good = EX.ds_rdatas()[0]
    ev = LAB.evidence("www.example.test.", "A", EX.rrsets("www.example.test.", "A", sigs=False))
    v = run(with_zones(ev, doctored_ds(EX, [tweak(good, algorithm=algorithm)])))
    assert v.status is Status.INSECURE and v.codes == {"ALGORITHM_UNSUPPORTED"} and v.ede == (1,)


def test_the_policy_decides_which_algorithms_are_supported() -> None:
    """An algorithm the policy does not validate counts as unsupported: insecure, EDE 1."""
    no_p256 = DnssecPolicy(validate_algorithms=DEFAULT_POLICY.validate_algorithms - {13})
    v = ask("www.example.test.", "A", EX.rrsets("www.example.test.", "A"), policy=no_p256)
    assert v.status is Status.INSECURE and v.ede == (1,)


def test_the_policy_decides_which_ds_digests_are_supported() -> None:
    only_sha384 = DnssecPolicy(validate_digests=frozenset({4}))
    v = ask("www.example.test.", "A", EX.rrsets("www.example.test.", "A"), policy=only_sha384)
    assert v.status is Status.INSECURE and v.codes == {"DS_DIGEST_UNSUPPORTED"} and v.ede == (2,)


def test_unsupported_anchor_algorithm_is_insecure() -> None:
    dsa_key = dns.rdtypes.ANY.DNSKEY.DNSKEY(dns.rdataclass.IN, dns.rdatatype.DNSKEY, 257, 3, 3, b"\x00" * 64)
    v = ask("www.example.test.", "A", EX.rrsets("www.example.test.", "A"),
            anchors=[dns.rrset.from_rdata_list(dns.name.root, TTL, [dsa_key])])
    assert v.status is Status.INSECURE and v.ede == (1,)


@pytest.mark.parametrize("digest_type", [3, 5, 99])
def test_unsupported_ds_digest_makes_the_zone_insecure(digest_type: int) -> None:
    good = EX.ds_rdatas()[0]
    ev = LAB.evidence("www.example.test.", "A", EX.rrsets("www.example.test.", "A"))
    v = run(with_zones(ev, doctored_ds(EX, [tweak(good, digest_type=digest_type)])))
    assert v.status is Status.INSECURE and v.codes == {"DS_DIGEST_UNSUPPORTED"} and v.ede == (2,)


def test_sha1_ds_is_ignored_when_the_ds_rrset_has_a_sha256_one() -> None:
    """RFC 4509 §3: with a SHA-256 DS in the RRset — for the key or for another — a
    (matching) SHA-1 DS is not used (as Unbound: only the set's strongest digest counts)."""
    sha1, sha256 = EX.ds_rdatas(1)[0], EX.ds_rdatas(2)[0]
    broken256 = tweak(sha256, digest=bytes(32))
    ev = LAB.evidence("www.example.test.", "A", EX.rrsets("www.example.test.", "A"))
    v = run(with_zones(ev, doctored_ds(EX, [sha1, broken256])))
    assert v.status is Status.BOGUS and {"DS_SHA1_IGNORED", "DS_NO_MATCHING_DNSKEY"} <= v.codes
    assert run(with_zones(ev, doctored_ds(EX, [sha1]))).status is Status.SECURE
    both = run(with_zones(ev, doctored_ds(EX, [sha1, sha256])))
    assert both.status is Status.SECURE and both.codes == {"DS_SHA1_IGNORED"}
    other_key = tweak(sha256, key_tag=(sha256.key_tag + 1) % 65536)  # type: ignore[attr-defined]
    v = run(with_zones(ev, doctored_ds(EX, [sha1, other_key])))
    assert v.status is Status.BOGUS and "DS_SHA1_IGNORED" in v.codes


def two_algorithm_zone() -> Zone:
    origin = N("multi.test.")
    keys = [make_key(origin, KeyRole.KSK, 13), make_key(origin, KeyRole.ZSK, 13),
            make_key(origin, KeyRole.KSK, 15), make_key(origin, KeyRole.ZSK, 15)]
    return standalone("multi.test.", keys)


def test_any_one_valid_algorithm_path_suffices() -> None:
    """RFC 6840 §5.11: one working algorithm is enough, for the DS and for the RRSIGs."""
    zone = two_algorithm_zone()
    data, sigs = zone.rrsets("www.multi.test.", "A")
    for keep in (13, 15):
        one = dns.rrset.from_rdata_list(sigs.name, sigs.ttl, [s for s in sigs if s.algorithm == keep])  # type: ignore[attr-defined]
        v = run(alone(zone, "www.multi.test.", "A", (data, one)), ds_anchor(zone))
        assert v.status is Status.SECURE and v.links[-1].algorithm == keep
    ds13, ds15 = sorted(zone.ds_rdatas(), key=lambda d: d.algorithm)  # type: ignore[attr-defined]
    broken15 = tweak(ds15, digest=bytes(32))
    v = run(alone(zone, "www.multi.test.", "A", (data, sigs)), ds_anchor(zone, [ds13, broken15]))
    assert v.status is Status.SECURE
    dsa = tweak(ds15, algorithm=3)
    v = run(alone(zone, "www.multi.test.", "A", (data, sigs)), ds_anchor(zone, [ds13, dsa]))
    assert v.status is Status.SECURE  # an unsupported DS beside a supported one changes nothing
    v = run(alone(zone, "www.multi.test.", "A", (data,)), ds_anchor(zone))
    assert v.status is Status.BOGUS and v.codes == {"RRSIG_MISSING"} and v.ede == (10,)


# ---------------------------------------------------------------------------------------------
# RRSIG checks (RFC 4035 §5.3.1-5.3.3)
# ---------------------------------------------------------------------------------------------


def test_rrsig_signer_must_be_the_zone() -> None:
    forged = EX.sign("www.example.test.", "A", "192.0.2.10", key=TLD.zsk, signer_name=TLD.origin)
    v = ask("www.example.test.", "A", forged)
    assert v.status is Status.BOGUS and "RRSIG_FIELDS_WRONG" in v.codes


def test_rrsig_labels_above_the_owner_are_rejected() -> None:
    data, sigs = EX.rrsets("www.example.test.", "A")
    bad = dns.rrset.from_rdata(sigs.name, sigs.ttl, tweak(sigs[0], labels=5))
    v = ask("www.example.test.", "A", (data, bad))
    assert v.status is Status.BOGUS and v.codes == {"RRSIG_FIELDS_WRONG"}


@pytest.mark.parametrize("mismatch", ["owner", "class", "type"])
def test_rrsig_must_share_owner_class_and_type(mismatch: str) -> None:
    data, sigs = EX.rrsets("www.example.test.", "A")
    if mismatch == "owner":
        sigs = dns.rrset.from_rdata_list(N("multi.example.test."), sigs.ttl, list(sigs))
    elif mismatch == "class":
        sigs = dns.rrset.from_rdata_list(sigs.name, sigs.ttl, list(sigs))
        sigs.rdclass = dns.rdataclass.CH
    else:
        sigs = EX.rrsets("www.example.test.", "TXT")[1]
        sigs = dns.rrset.from_rdata_list(data.name, sigs.ttl, list(sigs))
    v = ask("www.example.test.", "A", (data, sigs))
    assert v.status is Status.BOGUS and v.codes == {"RRSIG_MISSING"} and v.ede == (10,)


def test_tampered_rdata_fails_the_signature() -> None:
    data, sigs = EX.rrsets("www.example.test.", "A")
    tampered = dns.rrset.from_text_list(data.name, data.ttl, "IN", "A", ["192.0.2.66"])
    v = ask("www.example.test.", "A", (tampered, sigs))
    assert v.status is Status.BOGUS and v.codes == {"RRSIG_BAD_SIGNATURE"} and v.ede == (6,)


def test_canonical_form_and_original_ttl() -> None:
    """RFC 4034 §6, RFC 4035 §5.3.2-5.3.3: owner case and RR order do not matter, the signed
    data uses the original TTL, and a TTL above it is capped."""
    data, sigs = EX.rrsets("multi.example.test.", "A")
    upper = N("MULTI.Example.TEST.")
    shuffled = dns.rrset.from_rdata_list(upper, 100, list(reversed(sorted(data, key=str))))
    v = ask("multi.example.test.", "A", (shuffled, sigs))
    assert (v.status, v.ttl) == (Status.SECURE, 100)
    stretched = dns.rrset.from_rdata_list(data.name, 7200, list(data))
    v = ask("multi.example.test.", "A", (stretched, sigs))
    assert (v.status, v.ttl) == (Status.SECURE, TTL)


def test_validity_window_expired_and_not_yet_valid() -> None:
    answer = EX.rrsets("www.example.test.", "A")
    expired = ask("www.example.test.", "A", answer, now=NOW + 40 * DAY)
    assert expired.status is Status.BOGUS and 7 in expired.ede and "RRSIG_EXPIRED" in expired.codes
    early = ask("www.example.test.", "A", answer, now=NOW - 2 * DAY)
    assert early.status is Status.BOGUS and 8 in early.ede and "RRSIG_NOT_YET_VALID" in early.codes


def test_clock_skew_allowance() -> None:
    """The skew (default 0, as delv) widens the window on both ends."""
    zone = standalone("skew.test.", [make_key(N("skew.test."), KeyRole.CSK)],
                      inception=NOW, validity=DAY)
    ev = alone(zone, "www.skew.test.", "A", zone.rrsets("www.skew.test.", "A"))
    for now, skew, status in [(NOW + DAY + 50, 0, Status.BOGUS), (NOW + DAY + 50, 100, Status.SECURE),
                              (NOW - 50, 0, Status.BOGUS), (NOW - 50, 100, Status.SECURE)]:
        v = run(ev, ds_anchor(zone), now=now, policy=DnssecPolicy(limits=ValidationLimits(clock_skew=skew)))
        assert v.status is status, (now, skew)


def test_validity_window_uses_serial_arithmetic() -> None:
    """RFC 4034 §3.1.5: a window that spans the 2^32 wrap still works."""
    start = 2**32 - 5 * DAY
    zone = standalone("wrap.test.", [make_key(N("wrap.test."), KeyRole.CSK)], inception=start,
                      validity=30 * DAY, now=start)
    ev = alone(zone, "www.wrap.test.", "A", zone.rrsets("www.wrap.test.", "A"))
    v = run(ev, ds_anchor(zone), now=2**32 + DAY)
    assert v.status is Status.SECURE and v.ttl == TTL
    assert run(ev, ds_anchor(zone), now=2**32 + 40 * DAY).status is Status.BOGUS


def test_validated_ttl_is_capped_by_time_to_expiry() -> None:
    answer = EX.sign("www.example.test.", "A", "192.0.2.10", expiration=NOW + 100)
    assert ask("www.example.test.", "A", answer).ttl == 100


# ---------------------------------------------------------------------------------------------
# Wildcards (RFC 4035 §5.3.4, RFC 5155 §8.8)
# ---------------------------------------------------------------------------------------------


def test_wildcard_answer_with_proof_is_secure() -> None:
    answer = EX.rrsets("*.wild.example.test.", "TXT", owner=N("x.y.wild.example.test."))
    proof = EX.denial(EX.nsec_owner("x.y.wild.example.test.", cover=True))
    v = ask("x.y.wild.example.test.", "TXT", answer, proof)
    assert (v.status, v.kind) == (Status.SECURE, Kind.ANSWER)
    assert any("expanded from *.wild.example.test." in link.detail for link in v.links)


def test_wildcard_answer_without_proof_is_bogus() -> None:
    answer = EX.rrsets("*.wild.example.test.", "TXT", owner=N("host.wild.example.test."))
    v = ask("host.wild.example.test.", "TXT", answer)
    assert v.status is Status.BOGUS and "WILDCARD_UNPROVEN" in v.codes and 12 in v.ede


def test_fewer_rrsig_labels_mean_expansion_and_an_existing_name_refutes_it() -> None:
    """An RRSIG with labels < owner labels is a wildcard expansion; if the owner exists (its
    NSEC matches), the expansion is a forgery."""
    forged = EX.sign("www.example.test.", "A", "192.0.2.66", sign_as="*.example.test.")
    v = ask("www.example.test.", "A", forged, EX.denial("www.example.test."))
    assert v.status is Status.BOGUS and "WILDCARD_UNPROVEN" in v.codes


def test_a_wildcard_nsec_renamed_proves_nothing() -> None:
    """CVE-2017-15105: the zone's own *.w.test. NSEC (and its RRSIG, labels 2) moved to
    another owner still verifies as a wildcard expansion — but it speaks only for the
    wildcard. Renamed to wwv.w.test., its range (wrapped past the zone's last name) would
    cover www.w.test., which exists: neither an NXDOMAIN, nor a NODATA for the name itself,
    nor a wildcard answer replacing www's own data may rest on it."""
    from sigchain.core.validate.validator import Evidence, Question, ZoneCut, validate

    z = build("w.test.", {"*": [("A", ("192.0.2.1",))], "www": [("A", ("192.0.2.2",))],
                          "mail": [("A", ("192.0.2.3",))]})
    anchor = [dns.rrset.from_rdata_list(z.origin, TTL, z.ds_rdatas())]
    cut = (ZoneCut(z.origin, dnskey=z.rrsets(z.origin, "DNSKEY")),)
    soa = z.rrsets("w.test.", "SOA")
    www = N("www.w.test.")
    moved = z.rrsets("*.w.test.", "NSEC", owner=N("wwv.w.test."))
    nx = validate(Evidence(Question(www, dns.rdatatype.A), dns.rcode.NXDOMAIN, (), soa + moved, cut),
                  anchor, NOW)
    assert nx.status is Status.BOGUS and "RRSIG_FIELDS_WRONG" in nx.codes, nx.codes
    onto = z.rrsets("*.w.test.", "NSEC", owner=www)
    nodata = validate(Evidence(Question(www, dns.rdatatype.MX), 0, (), soa + onto, cut), anchor, NOW)
    assert nodata.status is Status.BOGUS
    expanded = z.rrsets("*.w.test.", "A", owner=www)
    forged = validate(Evidence(Question(www, dns.rdatatype.A), 0, expanded, moved, cut), anchor, NOW)
    assert forged.status is Status.BOGUS
    assert not any(link.kind == "rrsig" and link.name == N("wwv.w.test.") for link in nx.links)
    # the record under its own name still proves what it covers
    own = z.rrsets("*.w.test.", "NSEC")
    below = validate(Evidence(Question(N("*.w.test."), dns.rdatatype.MX), 0, (), soa + own, cut),
                     anchor, NOW)
    assert below.status is Status.SECURE


def test_nsec3_wildcard_answer_and_nodata() -> None:
    answer = N3.rrsets("*.wild.nsec3.test.", "TXT", owner=N("host.wild.nsec3.test."))
    cover = N3.denial(N3.nsec3_owner("host.wild.nsec3.test.", cover=True))
    assert ask("host.wild.nsec3.test.", "TXT", answer, cover).status is Status.SECURE
    assert ask("host.wild.nsec3.test.", "TXT", answer).status is Status.BOGUS
    v = ask("host.wild.nsec3.test.", "A", (), N3.rrsets("nsec3.test.", "SOA") + N3.all_denial())
    assert (v.status, v.kind) == (Status.SECURE, Kind.NODATA)


# ---------------------------------------------------------------------------------------------
# CNAME and DNAME chains
# ---------------------------------------------------------------------------------------------


def test_cname_chain_is_validated_link_by_link() -> None:
    chain = EX.rrsets("alias.example.test.", "CNAME") + EX.rrsets("www.example.test.", "A")
    v = ask("alias.example.test.", "A", chain)
    assert (v.status, v.kind) == (Status.SECURE, Kind.ANSWER)
    assert [dns.rdatatype.to_text(link.rdtype) for link in v.links if link.kind == "rrsig"][-2:] == ["CNAME", "A"]
    bad_target = EX.rrsets("alias.example.test.", "CNAME") + (
        dns.rrset.from_text("www.example.test.", TTL, "IN", "A", "192.0.2.66"), EX.rrsets("www.example.test.", "A")[1])
    assert ask("alias.example.test.", "A", bad_target).status is Status.BOGUS
    bad_cname = (dns.rrset.from_text("alias.example.test.", TTL, "IN", "CNAME", "evil.example.test."),
                 EX.rrsets("alias.example.test.", "CNAME")[1])
    assert ask("alias.example.test.", "A", bad_cname).status is Status.BOGUS


def test_a_negative_trust_anchor_covers_its_names_only() -> None:
    """RFC 7646 §2: an NTA makes what is at and below its name insecure — and nothing else.
    A CNAME out of it is followed and its target validated (a forged target is bogus, not
    let through); a secure CNAME into it ends insecure rather than bogus."""
    good = EX.rrsets("alias.example.test.", "CNAME") + EX.rrsets("www.example.test.", "A")
    forged = EX.rrsets("alias.example.test.", "CNAME") + (
        dns.rrset.from_text("www.example.test.", TTL, "IN", "A", "192.0.2.66"), EX.rrsets("www.example.test.", "A")[1])

    def judged(answer: tuple, nta: str) -> Status:
        ev = LAB.evidence("alias.example.test.", "A", answer)
        return validate(ev, LAB.anchors(), NOW, negative=[N(nta)]).status

    assert judged(good, "alias.example.test.") is Status.INSECURE  # never AD under it
    assert judged(forged, "alias.example.test.") is Status.BOGUS  # the target is not under it
    assert judged(forged, "www.example.test.") is Status.INSECURE  # the target is
    assert judged(forged, "example.test.") is Status.INSECURE
    assert judged(forged, "other.test.") is Status.BOGUS
    nx = LAB.evidence("nope.example.test.", "A", (), EX.rrsets("example.test.", "SOA"), dns.rcode.NXDOMAIN)
    assert validate(nx, LAB.anchors(), NOW, negative=[N("example.test.")]).status is Status.INSECURE


def test_cname_into_another_zone_and_into_an_insecure_zone() -> None:
    chain = EX.rrsets("outside.example.test.", "CNAME") + N3.rrsets("www.nsec3.test.", "A")
    v = ask("outside.example.test.", "A", chain, zones=["outside.example.test.", "www.nsec3.test."])
    assert v.status is Status.SECURE
    insecure = LAB["insecure.test."]
    chain = EX.rrsets("toinsecure.example.test.", "CNAME") + insecure.rrsets("host.insecure.test.", "A", sigs=False)
    v = ask("toinsecure.example.test.", "A", chain, zones=["toinsecure.example.test.", "host.insecure.test."])
    assert v.status is Status.INSECURE
    assert any(link.kind == "no-ds" and link.name == N("insecure.test.") for link in v.links)


def test_cname_then_nodata_for_the_target() -> None:
    v = ask("alias.example.test.", "MX", EX.rrsets("alias.example.test.", "CNAME"),
            EX.rrsets("example.test.", "SOA") + EX.denial("www.example.test."))
    assert (v.status, v.kind) == (Status.SECURE, Kind.NODATA)


def test_dname_and_its_synthesised_cname() -> None:
    dname = EX.rrsets("dn.example.test.", "DNAME")
    good = dns.rrset.from_text("www.dn.example.test.", TTL, "IN", "CNAME", "www.nsec3.test.")
    final = N3.rrsets("www.nsec3.test.", "A")
    zones = ["www.dn.example.test.", "www.nsec3.test."]
    v = ask("www.dn.example.test.", "A", dname + (good,) + final, zones=zones)
    assert v.status is Status.SECURE
    wrong = dns.rrset.from_text("www.dn.example.test.", TTL, "IN", "CNAME", "www.example.test.")
    v = ask("www.dn.example.test.", "A", dname + (wrong,) + EX.rrsets("www.example.test.", "A"), zones=zones)
    assert v.status is Status.BOGUS and "DNAME_SYNTHESIS_WRONG" in v.codes
    # CNAME or ANY asked below the DNAME: the synthesised CNAME is the answer, proven by it
    for rdtype in ("CNAME", "ANY"):
        v = ask("www.dn.example.test.", rdtype, dname + (good,), zones=zones[:1])
        assert (v.status, v.kind) == (Status.SECURE, Kind.ANSWER), v.codes
        checked = [dns.rdatatype.to_text(link.rdtype) for link in v.links if link.kind == "rrsig"]
        assert checked[-1] == "DNAME" and "CNAME" not in checked
        v = ask("www.dn.example.test.", rdtype, dname + (wrong,), zones=zones[:1])
        assert v.status is Status.BOGUS and "DNAME_SYNTHESIS_WRONG" in v.codes


# ---------------------------------------------------------------------------------------------
# NSEC denial (RFC 4035 §5.4, RFC 6840 §3)
# ---------------------------------------------------------------------------------------------

SOA = EX.rrsets("example.test.", "SOA")


def test_nsec_nxdomain() -> None:
    name = "nope.example.test."
    wildcard = "*.example.test."
    proof = EX.denial(EX.nsec_owner(name, cover=True), EX.nsec_owner(wildcard, cover=True))
    v = ask(name, "A", (), SOA + proof, dns.rcode.NXDOMAIN)
    assert (v.status, v.kind, v.findings) == (Status.SECURE, Kind.NXDOMAIN, ())
    assert v.ttl == 300  # RFC 2308 / RFC 9077: min(SOA TTL, SOA MINIMUM, NSEC TTLs)
    assert EX.nsec_owner(name, cover=True) != EX.nsec_owner(wildcard, cover=True)
    v = ask(name, "A", (), SOA + EX.denial(EX.nsec_owner(name, cover=True)), dns.rcode.NXDOMAIN)
    assert v.status is Status.BOGUS and "DENIAL_UNPROVEN" in v.codes and 12 in v.ede


def test_nsec_nodata_and_the_cname_bit() -> None:
    v = ask("www.example.test.", "MX", (), SOA + EX.denial("www.example.test."))
    assert (v.status, v.kind) == (Status.SECURE, Kind.NODATA)
    v = ask("www.example.test.", "A", (), SOA + EX.denial("www.example.test."))
    assert v.status is Status.BOGUS and "DENIAL_UNPROVEN" in v.codes  # the bitmap lists A
    v = ask("alias.example.test.", "MX", (), SOA + EX.denial("alias.example.test."))
    assert v.status is Status.BOGUS  # RFC 6840 §3.3: the name owns a CNAME


def test_nsec_empty_non_terminal() -> None:
    v = ask("b.c.example.test.", "A", (), SOA + EX.denial(EX.nsec_owner("b.c.example.test.", cover=True)))
    assert (v.status, v.kind) == (Status.SECURE, Kind.NODATA)
    assert "empty non-terminal" in next(link.detail for link in v.links if link.kind == "denial")


def test_nsec_wildcard_nodata() -> None:
    proof = EX.denial(EX.nsec_owner("host.wild.example.test.", cover=True), "*.wild.example.test.")
    v = ask("host.wild.example.test.", "A", (), SOA + proof)
    assert (v.status, v.kind) == (Status.SECURE, Kind.NODATA)


def test_nsec_from_a_delegation_cannot_deny_names_below_it() -> None:
    """RFC 6840 §3.1: the NSEC at sub.example.test. (NS, no SOA) covers x.sub.example.test. in
    canonical order but cannot deny it: the name is in the child zone."""
    v = ask("x.sub.example.test.", "A", (), SOA + EX.denial("sub.example.test.", "example.test."),
            dns.rcode.NXDOMAIN)
    assert v.status is Status.BOGUS and "DENIAL_WRONG_SIDE" in v.codes


def test_referral_to_an_unsigned_child_is_insecure() -> None:
    ns = (dns.rrset.from_text("sub.example.test.", TTL, "IN", "NS", "ns.sub.example.test."),)
    v = ask("x.sub.example.test.", "A", (), ns + EX.denial("sub.example.test."))
    assert (v.status, v.kind) == (Status.INSECURE, Kind.REFERRAL)
    v = ask("x.sub.example.test.", "A", (), ns)
    assert v.status is Status.BOGUS and "DS_ABSENCE_UNPROVEN" in v.codes


@pytest.mark.parametrize(("rcode", "authority"), [
    (dns.rcode.NXDOMAIN, ("www.example.test.",)),  # NXDOMAIN, but the NSEC proves the name exists
    (dns.rcode.NOERROR, ("nope",)),  # NODATA claimed, but the records prove a name error
])
def test_rcode_must_match_the_proof(rcode: int, authority: tuple) -> None:
    if authority == ("nope",):
        qname = "nope.example.test."
        proof = EX.denial(EX.nsec_owner(qname, cover=True), EX.nsec_owner("*.example.test.", cover=True))
    else:
        qname, proof = "www.example.test.", EX.denial(*authority)
    v = ask(qname, "MX", (), SOA + proof, rcode)
    assert v.status is Status.BOGUS and "RCODE_MISMATCH" in v.codes


def test_unexpected_rcode_is_bogus() -> None:
    v = ask("www.example.test.", "A", EX.rrsets("www.example.test.", "A"), rcode=dns.rcode.NXDOMAIN)
    assert v.status is Status.BOGUS and "RCODE_MISMATCH" in v.codes
    v = ask("www.example.test.", "A", rcode=dns.rcode.SERVFAIL)
    assert v.status is Status.BOGUS and "RCODE_MISMATCH" in v.codes


# ---------------------------------------------------------------------------------------------
# NSEC3 denial (RFC 5155 §8)
# ---------------------------------------------------------------------------------------------

SOA3 = N3.rrsets("nsec3.test.", "SOA")


def test_nsec3_name_error() -> None:
    name = "nope.nsec3.test."
    records = [N3.nsec3_owner("nsec3.test."), N3.nsec3_owner(name, cover=True),
               N3.nsec3_owner("*.nsec3.test.", cover=True)]
    v = ask(name, "A", (), SOA3 + N3.denial(*records), dns.rcode.NXDOMAIN)
    assert (v.status, v.kind, v.findings) == (Status.SECURE, Kind.NXDOMAIN, ())
    assert len(set(records)) == 3  # three distinct records: each one is needed
    v = ask(name, "A", (), SOA3 + N3.denial(*records[:2]), dns.rcode.NXDOMAIN)
    assert v.status is Status.BOGUS and "DENIAL_UNPROVEN" in v.codes
    v = ask(name, "A", (), SOA3 + N3.denial(*records[1:]), dns.rcode.NXDOMAIN)
    assert v.status is Status.BOGUS  # no closest encloser


def test_nsec3_nodata_ent_and_ds() -> None:
    v = ask("www.nsec3.test.", "MX", (), SOA3 + N3.denial(N3.nsec3_owner("www.nsec3.test.")))
    assert (v.status, v.kind) == (Status.SECURE, Kind.NODATA)
    v = ask("b.c.nsec3.test.", "A", (), SOA3 + N3.denial(N3.nsec3_owner("b.c.nsec3.test.")))
    assert (v.status, v.kind) == (Status.SECURE, Kind.NODATA)  # the ENT has its own NSEC3
    v = ask("unsigned.nsec3.test.", "DS", (), SOA3 + N3.denial(N3.nsec3_owner("unsigned.nsec3.test.")))
    assert (v.status, v.kind) == (Status.SECURE, Kind.NODATA)  # RFC 5155 §8.6: NS, no DS
    v = ask("child.nsec3.test.", "DS", (), SOA3 + N3.denial(N3.nsec3_owner("child.nsec3.test.")))
    assert v.status is Status.BOGUS  # the bitmap lists DS


def test_nsec3_referrals() -> None:
    ns = (dns.rrset.from_text("unsigned.nsec3.test.", TTL, "IN", "NS", "ns.unsigned.nsec3.test."),)
    v = ask("x.unsigned.nsec3.test.", "A", (), ns + N3.denial(N3.nsec3_owner("unsigned.nsec3.test.")))
    assert (v.status, v.kind) == (Status.INSECURE, Kind.REFERRAL)
    ns = (dns.rrset.from_text("child.nsec3.test.", TTL, "IN", "NS", "ns.child.nsec3.test."),)
    v = ask("x.child.nsec3.test.", "A", (), ns + N3.rrsets("child.nsec3.test.", "DS"))
    assert (v.status, v.kind) == (Status.SECURE, Kind.REFERRAL)


def test_nsec3_opt_out() -> None:
    """RFC 5155 §6, §8.9, §9.2: opt-out proves an unsigned delegation, and a name error whose
    next closer name is covered by an opt-out record is insecure."""
    soa = OPT.rrsets("optout.test.", "SOA")
    ns = (dns.rrset.from_text("unsigned.optout.test.", TTL, "IN", "NS", "ns.unsigned.optout.test."),)
    v = ask("x.unsigned.optout.test.", "A", (), ns + OPT.all_denial())
    assert (v.status, v.kind) == (Status.INSECURE, Kind.REFERRAL)
    v = ask("nope.optout.test.", "A", (), soa + OPT.all_denial(), dns.rcode.NXDOMAIN)
    assert v.status is Status.INSECURE and "NSEC3_OPT_OUT_INSECURE" in v.codes
    v = ask("unsigned.optout.test.", "DS", (), soa + OPT.all_denial())
    assert (v.status, v.kind) == (Status.INSECURE, Kind.NODATA)


@pytest.mark.parametrize(("iterations", "limit", "status"), [
    (150, 150, Status.SECURE), (151, 150, Status.INSECURE), (200, 150, Status.INSECURE),
    (200, 200, Status.SECURE),
])
def test_nsec3_iterations_above_the_limit_are_insecure(iterations: int, limit: int, status: Status) -> None:
    """RFC 9276 §3.2: above the configured limit (default 150) → insecure with EDE 27."""
    origin = N("iter.test.")
    zone = standalone("iter.test.", [make_key(origin, KeyRole.CSK)], nsec3=Nsec3Params(iterations=iterations))
    ev = alone(zone, "nope.iter.test.", "A", (), zone.rrsets("iter.test.", "SOA") + zone.all_denial(),
               dns.rcode.NXDOMAIN)
    v = run(ev, ds_anchor(zone), policy=DnssecPolicy(max_nsec3_iterations=limit))
    assert v.status is status
    assert (27 in v.ede) == (status is Status.INSECURE)


# ---------------------------------------------------------------------------------------------
# Insecure delegations in the chain (RFC 4035 §5.2, RFC 6840 §3.4)
# ---------------------------------------------------------------------------------------------


def test_signed_proof_of_no_ds_makes_the_child_insecure() -> None:
    insecure = LAB["insecure.test."]
    answer = insecure.rrsets("host.insecure.test.", "A", sigs=False)
    v = ask("host.insecure.test.", "A", answer)
    assert v.status is Status.INSECURE and v.findings == ()
    ev = LAB.evidence("host.insecure.test.", "A", answer)
    v = run(with_zones(ev, ZoneCut(N("insecure.test."))))
    assert v.status is Status.BOGUS and "DS_ABSENCE_UNPROVEN" in v.codes
    v = run(with_zones(ev, ZoneCut(N("insecure.test."), ds_denial=TLD.denial("example.test."))))
    assert v.status is Status.BOGUS  # an NSEC for another name proves nothing here


def test_stripped_signatures_in_a_secure_zone_are_bogus() -> None:
    v = ask("www.example.test.", "A", EX.rrsets("www.example.test.", "A", sigs=False))
    assert v.status is Status.BOGUS and v.codes == {"RRSIG_MISSING"} and v.ede == (10,)


def test_verdict_serialises() -> None:
    v = ask("www.example.test.", "A", EX.rrsets("www.example.test.", "A", sigs=False))
    d = v.to_dict()
    assert d["status"] == "bogus" and d["ede"] == [10] and d["findings"][0]["code"] == "RRSIG_MISSING"  # type: ignore[index]


def test_opt_out_proof_of_no_ds_in_the_chain() -> None:
    """RFC 5155 §8.9: an opt-out NSEC3 covering the delegation makes the child insecure."""
    child = N("unsigned.optout.test.")
    cut = ZoneCut(child, ds_denial=LAB.no_ds_proof(OPT, child))
    ev = LAB.evidence("host.unsigned.optout.test.", "A",
                      (dns.rrset.from_text("host.unsigned.optout.test.", TTL, "IN", "A", "192.0.2.9"),))
    v = run(dataclasses.replace(ev, zones=ev.zones + (cut,)))
    assert v.status is Status.INSECURE
    assert any(link.kind == "no-ds" and "opt-out" in link.detail for link in v.links)


def test_a_junk_rrsig_with_a_deeper_signer_does_not_hide_a_good_one() -> None:
    data, sigs = EX.rrsets("www.example.test.", "A")
    junk = tweak(sigs[0], signer=N("www.example.test."))
    both = dns.rrset.from_rdata_list(sigs.name, sigs.ttl, list(sigs) + [junk])
    assert ask("www.example.test.", "A", (data, both)).status is Status.SECURE
    only_junk = dns.rrset.from_rdata(sigs.name, sigs.ttl, junk)
    v = ask("www.example.test.", "A", (data, only_junk))
    assert v.status is Status.BOGUS and "DS_ABSENCE_UNPROVEN" in v.codes  # a zone with no link


def test_evidence_from_a_dns_message() -> None:
    """A tracer hands over the response as it came; RRSIGs travel as their own RRsets."""
    import dns.message

    query = dns.message.make_query("www.example.test.", "A", want_dnssec=True)
    response = dns.message.make_response(query)
    response.answer.extend(EX.rrsets("www.example.test.", "A"))
    response.authority.extend(EX.rrsets("example.test.", "NS"))
    ev = Evidence.from_message(response, LAB.chain("www.example.test."))
    assert ev.question == Question(N("www.example.test."), dns.rdatatype.A)
    assert run(ev).status is Status.SECURE


def test_ds_and_dnskey_questions() -> None:
    """A DS RRset is data of the parent zone (RFC 4035 §2.4); a DNSKEY RRset of the zone."""
    v = ask("example.test.", "DS", TLD.rrsets("example.test.", "DS"))
    assert (v.status, v.links[-1].zone) == (Status.SECURE, TLD.origin)
    v = ask("example.test.", "DNSKEY", EX.rrsets("example.test.", "DNSKEY"))
    assert v.status is Status.SECURE
    v = ask("insecure.test.", "DS", (), TLD.rrsets("test.", "SOA") + TLD.denial("insecure.test."))
    assert (v.status, v.kind) == (Status.SECURE, Kind.NODATA)  # a secure "no DS"
