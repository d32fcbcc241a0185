"""What the validator remembers across questions — NSEC3 hashes (by value), NSEC/NSEC3 records
parsed and a zone's key set (by the identity of the records they come from) — answers only
for those very inputs, and never stands in for a signature or its validity times."""

from __future__ import annotations

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from sigchain.core.dnssec import ds
from sigchain.core.validate import proofs, trust
from sigchain.core.validate.memo import Verified
from sigchain.core.validate.proofs import Nsec3Record, NsecRecord
from sigchain.core.validate.validator import Evidence, Question, Status, ZoneCut, validate
from sigchain.core.zone import nsec3hash
from sigchain.core.zone.sharedname import shared
from sigchain.model.keys import KeyRole
from tests.unit.lab import NOW, TTL, make_key
from tests.unit.test_validator_limits import EXPIRATION, ZONE, TrapZone, garbage_rrsig

N = dns.name.from_text
A = dns.rdatatype.A
NSEC3 = "1 0 3 abcd 2t7b4g4vsa5smi47k61mv5bv1a22bojr A RRSIG"


def _rdata(rdtype: str, text: str) -> dns.rdata.Rdata:
    return dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(rdtype), text)


def test_kept_digest_is_the_hash_of_that_name_salt_and_iterations() -> None:
    nsec3hash._DIGESTS.clear()
    names = ["a.example.", "A.Example.", "*.example.", "example.", "."]
    for salt, iterations in [(b"", 0), (b"\xab\xcd", 0), (b"", 3), (b"\xab\xcd", 3)] * 2:
        for text in names:
            name = N(text)
            want = nsec3hash.nsec3_digest(name, salt, iterations)
            assert nsec3hash.kept_digest(name, salt, iterations) == want
            assert nsec3hash.kept_digest(shared(name.labels), salt, iterations) == want
    assert nsec3hash.kept_digest(N("a.example."), b"", 0) != nsec3hash.kept_digest(N("a.example."), b"", 1)
    with pytest.raises(dns.name.NeedAbsoluteNameOrOrigin):
        nsec3hash.kept_digest(dns.name.Name((b"a",)), b"", 0)


def test_parsed_answers_for_the_very_rdata_and_owner() -> None:
    proofs._PARSED.clear()
    owner = N("2t7b4g4vsa5smi47k61mv5bv1a22bojr.example.")
    rd = _rdata("NSEC3", NSEC3)
    first = proofs.parsed(owner, rd)
    assert first == Nsec3Record.from_rdata(owner, rd)
    assert proofs.parsed(owner, rd) is first
    other = N("0p9mhaveqvm6t7vbl5lop2u3t2rp3tom.example.")
    assert proofs.parsed(other, rd) == Nsec3Record.from_rdata(other, rd)  # same rdata, owner differs
    assert proofs.parsed(N("not-a-hash.example."), rd) is None
    nsec = _rdata("NSEC", "c.example. A RRSIG NSEC")
    assert proofs.parsed(N("b.example."), nsec) == NsecRecord.from_rdata(N("b.example."), nsec)
    # an entry left by another rdata object under this one's id is never taken for it
    twin = _rdata("NSEC3", NSEC3.replace("A RRSIG", "MX"))
    proofs._PARSED[(id(twin), owner.labels)] = (rd, first)
    got = proofs.parsed(owner, twin)
    assert got == Nsec3Record.from_rdata(owner, twin) and got != first


def _cut(trap: TrapZone, sig: dns.rdata.Rdata | None = None) -> ZoneCut:
    """The trap zone's cut with the same DNSKEY rdata objects, and `sig` as its RRSIG."""
    if sig is None:
        return trap.cut
    return ZoneCut(ZONE, dnskey=(trap.cut.dnskey[0], dns.rrset.from_rdata(ZONE, TTL, sig)))


def test_a_remembered_key_set_still_has_its_signatures_and_times_checked() -> None:
    trap = TrapZone(0)
    answer = trap.signed("www.trap.test.", "A", "192.0.2.1", garbage=0)
    q = Question(N("www.trap.test."), A)
    memo = Verified(100)

    def judged(cut: ZoneCut, now: int = NOW, anchor: list[dns.rrset.RRset] | None = None) -> tuple:
        v = validate(Evidence(q, 0, answer, (), (cut,)), anchor or trap.anchor, now, verified=memo)
        return v.status, v.links, {(f.code, f.rdtype) for f in v.findings}

    first = judged(trap.cut)
    assert first[0] is Status.SECURE
    assert judged(trap.cut) == first  # the key set remembered: the same links, no findings
    # the same DNSKEY rdata under a signature that does not verify: bogus
    forged = judged(_cut(trap, garbage_rrsig(dns.rdatatype.DNSKEY, trap.ksk.key_tag, 2)))
    assert forged[0] is Status.BOGUS and ("RRSIG_BAD_SIGNATURE", "DNSKEY") in forged[2]
    # the remembered key set after its RRSIG expired: bogus
    late = judged(trap.cut, EXPIRATION + 86400)
    assert late[0] is Status.BOGUS and ("RRSIG_EXPIRED", "DNSKEY") in late[2]
    # another DS over the same DNSKEY rdata: it matches none of them
    stranger = make_key(ZONE, KeyRole.KSK, 8)
    other = [dns.rrset.from_rdata(ZONE, TTL, ds.make_ds(ZONE, stranger.dnskey, 2))]
    missed = judged(trap.cut, anchor=other)
    assert missed[0] is Status.BOGUS and ("DS_NO_MATCHING_DNSKEY", "DNSKEY") in missed[2]
    assert judged(trap.cut) == first


def test_a_key_set_entry_for_other_objects_is_not_used() -> None:
    """An entry whose held records are not these very objects (as if an id were reused) is
    ignored: here it would have authenticated no key, and the answer stays secure."""
    trap = TrapZone(0)
    answer = trap.signed("www.trap.test.", "A", "192.0.2.1", garbage=0)
    ev = Evidence(Question(N("www.trap.test."), A), 0, answer, (), (trap.cut,))
    trust._KEYSETS.clear()
    assert validate(ev, trap.anchor, NOW).status is Status.SECURE
    (key, (policy, held, made)), = trust._KEYSETS.items()
    copies = tuple(tuple(dns.rdata.from_text(r.rdclass, r.rdtype, r.to_text()) for r in part)
                   for part in held)
    trust._KEYSETS[key] = (policy, copies, ({}, {}, (), ()))
    assert validate(ev, trap.anchor, NOW).status is Status.SECURE
    trust._KEYSETS[key] = (policy, held, ({}, {}, (), ()))  # the very objects: this one is used
    assert validate(ev, trap.anchor, NOW).status is Status.BOGUS
    trust._KEYSETS.clear()


def test_a_key_set_whose_signature_fails_is_not_remembered() -> None:
    """Only a DNSKEY RRset whose RRSIG verified leaves an entry: forged key sets (any zone
    owner can send them) are not held."""
    trap = TrapZone(0)
    answer = trap.signed("www.trap.test.", "A", "192.0.2.1", garbage=0)
    ev = Evidence(Question(N("www.trap.test."), A), 0, answer, (),
                  (_cut(trap, garbage_rrsig(dns.rdatatype.DNSKEY, trap.ksk.key_tag, 2)),))
    trust._KEYSETS.clear()
    assert validate(ev, trap.anchor, NOW).status is Status.BOGUS
    assert len(trust._KEYSETS) == 0
    good = Evidence(ev.question, 0, answer, (), (trap.cut,))
    assert validate(good, trap.anchor, NOW).status is Status.SECURE
    assert len(trust._KEYSETS) == 1
    trust._KEYSETS.clear()


def test_bitmap_types_answer_as_the_decoded_set_and_stay_small() -> None:
    """BitmapTypes (what parsed NSEC/NSEC3 records hold) agrees with the decoded type set for
    every type number, and a bitmap naming all 65,536 types stays the size of its wire."""
    import random
    import sys

    from sigchain.core.zone.shape import BitmapTypes, bitmap_types

    rng = random.Random(7)
    for _ in range(40):
        windows = sorted((w, bytes(rng.randrange(256) for _ in range(rng.randrange(1, 33))))
                         for w in rng.sample(range(256), rng.randrange(1, 4)))
        view, decoded = BitmapTypes(windows), bitmap_types(windows)
        assert all((t in view) == (t in decoded) for t in range(65536))
    full = BitmapTypes((w, b"\xff" * 32) for w in range(256))
    assert 0xFFFF in full and -1 not in full and 65536 not in full and "A" not in full
    assert sys.getsizeof(full._windows) < 20_000  # a frozenset of 65,536 ints is megabytes
