"""Work limits against KeyTrap-class inputs (CVE-2023-50387, CVE-2023-50868).

Zones built to exhaust a validator: many DNSKEYs sharing one key tag, many RRSIGs per RRset,
many signed RRsets per response, and NSEC3 chains whose proofs need many hashes. The tests
count the work themselves by wrapping the crypto and hash calls, not from a figure the
validator reports."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator

import dns.dnssec
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.DNSKEY
import dns.rdtypes.ANY.RRSIG
import dns.rrset
import pytest

from sigchain.core.dnssec import algorithms, ds, rrsig
from sigchain.core.dnssec.policy import DEFAULT_POLICY, DnssecPolicy, ValidationLimits
from sigchain.core.validate.validator import (
    Evidence,
    Question,
    Status,
    Verdict,
    ZoneCut,
    validate,
)
from sigchain.core.zone import nsec3hash
from sigchain.model.keys import KeyPair, KeyRole
from tests.unit.lab import DAY, NOW, TTL, make_key
from tests.zonetools import sign_rrset

N = dns.name.from_text
ZONE = N("trap.test.")
INCEPTION, EXPIRATION = NOW - DAY, NOW + 30 * DAY


def _counted(monkeypatch: pytest.MonkeyPatch, module: object, attr: str) -> list[int]:
    """Wrap `module.attr` so that every call appends to the returned list."""
    calls: list[int] = []
    real = getattr(module, attr)

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, attr, counting)
    return calls


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts every signature verification the validator asks the crypto layer for."""
    yield _counted(monkeypatch, algorithms, "verify")


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts every NSEC3 hash computed (not those a memo of earlier questions answers)."""
    nsec3hash._DIGESTS.clear()
    yield _counted(monkeypatch, nsec3hash, "nsec3_digest_wire")


def _key_tag(rdata: bytes) -> int:
    """RFC 4034 Appendix B."""
    ac = sum(b << 8 if i % 2 == 0 else b for i, b in enumerate(rdata))
    return (ac + (ac >> 16)) & 0xFFFF


def colliding_rsa_key(tag: int, flags: int = 256) -> dns.rdtypes.ANY.DNSKEY.DNSKEY:
    """A well-formed RSA/SHA-256 DNSKEY (e=65537, a random odd 2048-bit modulus) whose key tag
    is `tag`: two modulus bytes at an even RDATA offset are chosen to hit the checksum. For
    some moduli no such word exists (the end-around carry skips `tag`): another is drawn."""
    header = flags.to_bytes(2, "big") + bytes([3, 8])
    offset = 16  # RDATA offset 20/21: an even-aligned 16-bit word inside the modulus
    for _ in range(100):
        modulus = bytearray(os.urandom(256))
        modulus[0] |= 0x80
        modulus[-1] |= 1
        key = bytearray(b"\x03\x01\x00\x01") + modulus
        key[offset:offset + 2] = b"\x00\x00"
        base = sum(b << 8 if i % 2 == 0 else b for i, b in enumerate(header + bytes(key)))
        for carry in (base >> 16, (base >> 16) + 1):  # the word adds to the sum as a whole
            key[offset:offset + 2] = ((tag - carry - base) % 65536).to_bytes(2, "big")
            if _key_tag(header + bytes(key)) == tag:
                rd = dns.rdtypes.ANY.DNSKEY.DNSKEY(dns.rdataclass.IN, dns.rdatatype.DNSKEY,
                                                   flags, 3, 8, bytes(key))
                assert dns.dnssec.key_id(rd) == tag
                return rd
    raise AssertionError(f"no modulus gave key tag {tag} in 100 draws")


def garbage_rrsig(covered: int, key_tag: int, labels: int) -> dns.rdata.Rdata:
    """An RRSIG that passes every cheap check (time, signer, labels, known tag) and fails only
    in the crypto: the expensive kind."""
    return dns.rdtypes.ANY.RRSIG.RRSIG(
        dns.rdataclass.IN, dns.rdatatype.RRSIG, covered, 8, labels, TTL, EXPIRATION, INCEPTION,
        key_tag, ZONE, os.urandom(256))


class TrapZone:
    """trap.test. signed with RSA/SHA-256, its DNSKEY RRset stuffed with keys whose tag is the
    ZSK's. `fakes_first` puts them before the real ZSK in the RRset."""

    def __init__(self, fakes: int, fakes_first: bool = False):
        self.ksk = make_key(ZONE, KeyRole.KSK, 8)
        self.zsk = make_key(ZONE, KeyRole.ZSK, 8)
        while self.zsk.key_tag == self.ksk.key_tag:  # the checks counted assume one key per tag
            self.zsk = make_key(ZONE, KeyRole.ZSK, 8)
        self.fakes = [colliding_rsa_key(self.zsk.key_tag) for _ in range(fakes)]
        order = (self.fakes + [self.zsk.dnskey]) if fakes_first else ([self.zsk.dnskey] + self.fakes)
        keys = [self.ksk.dnskey] + order
        dnskey = dns.rrset.from_rdata_list(ZONE, TTL, keys)
        sig = sign_rrset(ZONE, dns.rdatatype.DNSKEY, TTL, keys, self.ksk, ZONE, INCEPTION, EXPIRATION)
        self.cut = ZoneCut(ZONE, dnskey=(dnskey, dns.rrset.from_rdata(ZONE, TTL, sig)))
        self.anchor = [dns.rrset.from_rdata(ZONE, TTL, ds.make_ds(ZONE, self.ksk.dnskey, 2))]

    def signed(self, owner: str, rdtype: str, text: str, garbage: int, real: bool = True,
               key: KeyPair | None = None) -> tuple[dns.rrset.RRset, dns.rrset.RRset]:
        name = N(owner)
        data = dns.rrset.from_text(name, TTL, "IN", rdtype, text)
        sigs = [garbage_rrsig(data.rdtype, self.zsk.key_tag, rrsig.rrsig_labels(name)) for _ in range(garbage)]
        if real:
            sigs.append(sign_rrset(name, data.rdtype, TTL, list(data), key or self.zsk, ZONE,
                                         INCEPTION, EXPIRATION))
        return data, dns.rrset.from_rdata_list(name, TTL, sigs)

    def validate(self, answer: tuple = (), authority: tuple = (), rcode: int = 0,
                 qname: str = "www.trap.test.", qtype: str = "A", policy: DnssecPolicy = DEFAULT_POLICY) -> Verdict:
        q = Question(N(qname), dns.rdatatype.from_text(qtype))
        ev = Evidence(q, rcode, tuple(answer), tuple(authority), (self.cut,))
        return validate(ev, self.anchor, NOW, policy)


def test_control_the_trap_zone_validates(verifications: list[int]) -> None:
    trap = TrapZone(fakes=0)
    v = trap.validate(trap.signed("www.trap.test.", "A", "192.0.2.1", garbage=0))
    assert v.status is Status.SECURE and len(verifications) == 2  # DNSKEY RRset + the answer


def test_many_rrsigs_per_rrset_stop_at_the_per_rrset_cap(verifications: list[int]) -> None:
    """20 bogus RRSIGs (and a good one last) over one RRset, 30 keys sharing the ZSK's tag:
    unbounded, that is up to 21 × 31 verifications; capped, at most 8."""
    trap = TrapZone(fakes=30)
    v = trap.validate(trap.signed("www.trap.test.", "A", "192.0.2.1", garbage=20))
    assert v.status is Status.BOGUS and v.ede == (6,)
    assert any("max_verifications_per_rrset (8)" in f.message for f in v.findings)
    assert len(verifications) == 1 + 8  # the DNSKEY RRset's one, then the cap


def test_many_keys_per_tag_stop_at_the_per_tag_cap(verifications: list[int]) -> None:
    """One genuine RRSIG, but 30 impostor keys with the ZSK's tag ahead of it: 4 are tried."""
    trap = TrapZone(fakes=30, fakes_first=True)
    v = trap.validate(trap.signed("www.trap.test.", "A", "192.0.2.1", garbage=0))
    assert v.status is Status.BOGUS
    assert any("max_keys_per_tag (4)" in f.message for f in v.findings)
    assert len(verifications) == 1 + 4


def test_many_signed_rrsets_stop_at_the_per_question_cap(verifications: list[int]) -> None:
    """A negative answer carrying 20 NSEC RRsets, each with bogus RRSIGs and impostor keys: each
    RRset may cost 8 verifications, the question at most 64."""
    trap = TrapZone(fakes=30)
    nsecs: list[dns.rrset.RRset] = []
    for i in range(20):
        nsecs += trap.signed(f"n{i:02d}.trap.test.", "NSEC", f"n{i + 1:02d}.trap.test. A RRSIG NSEC", garbage=3)
    v = trap.validate(authority=nsecs, rcode=dns.rcode.NXDOMAIN, qname="nope.trap.test.")
    assert v.status is Status.BOGUS
    assert any("max_verifications (64)" in f.message for f in v.findings)
    assert len(verifications) == 64


def test_raised_caps_are_honoured(verifications: list[int]) -> None:
    """The caps are configuration: with room for the work, the good RRSIG is reached."""
    trap = TrapZone(fakes=3)
    answer = trap.signed("www.trap.test.", "A", "192.0.2.1", garbage=5)
    assert trap.validate(answer).status is Status.BOGUS  # 5 × 4 tries > 8
    verifications.clear()
    raised = ValidationLimits(max_verifications_per_rrset=100, max_verifications=200)
    v = trap.validate(answer, policy=DnssecPolicy(limits=raised))
    assert v.status is Status.SECURE and len(verifications) == 1 + 5 * 4 + 1


def _nsec3_text(salt: bytes, iterations: int) -> str:
    nxt = base64.b32hexencode(bytes(20)).decode().lower()
    return f"1 0 {iterations} {salt.hex()} {nxt} A RRSIG"


def test_nsec3_hashes_stop_at_the_per_question_cap(hashes: list[int]) -> None:
    """A name 100 labels deep and NSEC3 records with two salts at the maximum accepted
    iterations: the closest-encloser search needs ~200 hashes of 151 SHA-1 rounds each; the
    cap stops it at 150 (CVE-2023-50868)."""
    zone = N("deep.test.")
    csk = make_key(zone, KeyRole.CSK)
    keys = [csk.dnskey]
    sig = sign_rrset(zone, dns.rdatatype.DNSKEY, TTL, keys, csk, zone, INCEPTION, EXPIRATION)
    cut = ZoneCut(zone, dnskey=(dns.rrset.from_rdata_list(zone, TTL, keys), dns.rrset.from_rdata(zone, TTL, sig)))
    authority: list[dns.rrset.RRset] = []
    for salt in (b"\x01", b"\x02"):
        h = os.urandom(20)
        owner = dns.name.Name((base64.b32hexencode(h).lower(),) + zone.labels)
        data = dns.rrset.from_text(owner, TTL, "IN", "NSEC3", _nsec3_text(salt, 150))
        s = sign_rrset(owner, dns.rdatatype.NSEC3, TTL, list(data), csk, zone, INCEPTION, EXPIRATION)
        authority += [data, dns.rrset.from_rdata(owner, TTL, s)]
    qname = dns.name.Name((b"a",) * 100 + zone.labels)
    ev = Evidence(Question(qname, dns.rdatatype.A), dns.rcode.NXDOMAIN, (), tuple(authority), (cut,))
    anchor = [dns.rrset.from_rdata(zone, TTL, ds.make_ds(zone, csk.dnskey, 2))]
    v = validate(ev, anchor, NOW)
    assert v.status is Status.BOGUS
    assert any("max_nsec3_hashes (150)" in f.message for f in v.findings)
    assert len(hashes) == 150
    hashes.clear()
    again = validate(ev, anchor, NOW)  # hashes remembered from the last question still count
    assert again.status is Status.BOGUS
    assert any("max_nsec3_hashes (150)" in f.message for f in again.findings)
    assert len(hashes) == 0
    nsec3hash._DIGESTS.clear()  # this question's hashing counted, not the last one's remembered
    v = validate(ev, anchor, NOW, DnssecPolicy(limits=ValidationLimits(max_nsec3_hashes=1000)))
    assert v.status is Status.BOGUS and "WORK_LIMIT_EXCEEDED" not in v.codes  # the proof just fails
    assert len(hashes) > 150
