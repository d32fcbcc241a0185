"""What the validator remembers across questions — NSEC3 hashes (by value), NSEC/NSEC3 records
parsed (by the identity of the rdata they come from) — answers only for those very inputs."""

from __future__ import annotations

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest

from sigchain.core.validate import proofs
from sigchain.core.validate.proofs import Nsec3Record, NsecRecord
from sigchain.core.zone import nsec3hash
from sigchain.core.zone.sharedname import shared

N = dns.name.from_text
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
