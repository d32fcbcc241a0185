"""Denial-of-existence proofs on hand-written NSEC/NSEC3 records (no signatures involved):
the corners that a correctly signed zone never produces but an attacker or a broken server
can (RFC 4035 §3.1.4.1, §5.4; RFC 6840 §3.1, §3.3, §3.4; RFC 5155 §8.1, §8.3)."""

from __future__ import annotations

import dns.name
import dns.rdata
from dns.rdatatype import RdataType

from sigchain.core.validate import proofs
from sigchain.core.validate.proofs import Nsec3Record, NsecRecord, ProofStatus
from sigchain.core.zone.nsec3hash import b32hex, nsec3_digest

N = dns.name.from_text
ZONE = N("zone.test.")


def nsec(owner: str, nxt: str, *types: str) -> NsecRecord:
    return NsecRecord(N(owner), N(nxt), frozenset(RdataType.from_text(t) for t in types))


def test_covers_wraps_at_the_end_of_the_zone() -> None:
    last = nsec("z.zone.test.", "zone.test.", "A")
    assert last.covers(N("zz.zone.test.")) and not last.covers(N("a.zone.test."))
    middle = nsec("a.zone.test.", "c.zone.test.", "A")
    assert middle.covers(N("b.zone.test.")) and middle.covers(N("x.a.zone.test."))
    assert not middle.covers(N("a.zone.test.")) and not middle.covers(N("d.zone.test."))


def test_child_apex_nsec_cannot_deny_a_ds() -> None:
    """RFC 4035 §3.1.4.1: the DS lives in the parent; the child's apex NSEC (SOA set) is the
    wrong side of the cut. The root's own apex NSEC is fine (there is no parent)."""
    apex = nsec("child.zone.test.", "www.child.zone.test.", "NS", "SOA", "RRSIG", "NSEC", "DNSKEY")
    p = proofs.nsec_nodata([apex], N("child.zone.test."), RdataType.DS)
    assert p.status is ProofStatus.FAILED and p.code == "DENIAL_WRONG_SIDE"
    root = nsec(".", "aaa.", "NS", "SOA", "RRSIG", "NSEC", "DNSKEY")
    assert proofs.nsec_nodata([root], dns.name.root, RdataType.DS).status is ProofStatus.PROVEN


def test_parent_side_nsec_proves_only_ds() -> None:
    """RFC 6840 §3.1: at a delegation the NSEC speaks for DS and nothing else."""
    cut = nsec("sub.zone.test.", "www.zone.test.", "NS", "RRSIG", "NSEC")
    assert proofs.nsec_nodata([cut], N("sub.zone.test."), RdataType.DS).holds
    a = proofs.nsec_nodata([cut], N("sub.zone.test."), RdataType.A)
    assert a.code == "DENIAL_WRONG_SIDE"
    below = proofs.nsec_nxdomain([cut], N("x.sub.zone.test."))
    assert below.code == "DENIAL_WRONG_SIDE"


def test_insecure_delegation_needs_ns_and_no_ds_or_soa() -> None:
    """RFC 6840 §3.4."""
    assert proofs.nsec_no_ds([nsec("sub.zone.test.", "x.zone.test.", "NS", "NSEC")], N("sub.zone.test.")).holds
    for types in (("NS", "DS"), ("A",), ("NS", "SOA")):
        p = proofs.nsec_no_ds([nsec("sub.zone.test.", "x.zone.test.", *types)], N("sub.zone.test."))
        assert not p.holds, types


def test_dname_above_the_name_cannot_deny_it() -> None:
    dname = nsec("d.zone.test.", "e.zone.test.", "DNAME", "RRSIG", "NSEC")
    assert proofs.nsec_nxdomain([dname], N("x.d.zone.test.")).code == "DENIAL_WRONG_SIDE"


def _nsec3(name: str | dns.name.Name, nxt: bytes, *types: str, opt_out: bool = False,
           algorithm: int = 1) -> Nsec3Record:
    n = N(name) if isinstance(name, str) else name
    h = nsec3_digest(n, b"", 0)
    return Nsec3Record(dns.name.Name((b32hex(h).encode(),) + ZONE.labels), h, nxt,
                       frozenset(RdataType.from_text(t) for t in types), opt_out, algorithm, 0, b"")


def _hasher(name: dns.name.Name, record: Nsec3Record) -> bytes:
    return nsec3_digest(name, record.salt, record.iterations)


def _chain(*specs: tuple[str, tuple[str, ...]], opt_out: bool = False, algorithm: int = 1) -> list[Nsec3Record]:
    """A closed NSEC3 chain over the given (name, types)."""
    hashed = sorted((nsec3_digest(N(n), b"", 0), n, t) for n, t in specs)
    return [_nsec3(n, hashed[(i + 1) % len(hashed)][0], *t, opt_out=opt_out, algorithm=algorithm)
            for i, (_, n, t) in enumerate(hashed)]


def test_nsec3_closest_encloser_at_a_delegation_is_the_wrong_side() -> None:
    chain = _chain(("zone.test.", ("SOA", "NS")), ("sub.zone.test.", ("NS",)))
    p = proofs.nsec3_nxdomain(chain, N("x.sub.zone.test."), ZONE, _hasher)
    assert p.status is ProofStatus.FAILED and p.code == "DENIAL_WRONG_SIDE"


def test_nsec3_with_unknown_hash_algorithm_is_ignored() -> None:
    """RFC 5155 §8.1: such records are ignored, so they prove nothing."""
    specs = (("zone.test.", ("SOA", "NS")), ("www.zone.test.", ("A",)))
    assert proofs.nsec3_nxdomain(_chain(*specs), N("nope.zone.test."), ZONE, _hasher).holds
    p = proofs.nsec3_nxdomain(_chain(*specs, algorithm=2), N("nope.zone.test."), ZONE, _hasher)
    assert p.status is ProofStatus.FAILED


def test_nsec3_opt_out_name_error_is_insecure() -> None:
    specs = (("zone.test.", ("SOA", "NS")), ("www.zone.test.", ("A",)))
    p = proofs.nsec3_nxdomain(_chain(*specs, opt_out=True), N("nope.zone.test."), ZONE, _hasher)
    assert p.status is ProofStatus.INSECURE


def test_nsec3_nodata_checks_the_cname_bit() -> None:
    chain = _chain(("zone.test.", ("SOA", "NS")), ("alias.zone.test.", ("CNAME",)))
    assert not proofs.nsec3_nodata(chain, N("alias.zone.test."), RdataType.A, ZONE, _hasher).holds


def test_nsec3_owner_label_must_be_base32hex() -> None:
    rd = dns.rdata.from_text("IN", "NSEC3", "1 0 0 - 0p9mhaveqvm6t7vbl5lop2u3t2rp3tom A")
    assert Nsec3Record.from_rdata(N("not-a-hash!.zone.test."), rd) is None
    assert Nsec3Record.from_rdata(N("0p9mhaveqvm6t7vbl5lop2u3t2rp3tom.zone.test."), rd) is not None


def test_covers_agrees_with_dnspython_canonical_order() -> None:
    """The tuple keys order names as dnspython's canonical comparison does: case, label
    counts, a zero octet and octets above 0x7f included."""
    import itertools

    labels = [b"a", b"A", b"b", b"a\x00", b"\x00", b"\xff", b"z", b"aa", b"*", b"-"]
    names = [dns.name.Name((*combo, b"example", b"")) for n in (0, 1, 2)
             for combo in itertools.product(labels, repeat=n)]
    names.append(dns.name.Name((b"example", b"")))
    for owner, nxt in [(names[3], names[40]), (names[40], names[3]), (names[0], names[0])]:
        rec = NsecRecord(owner, nxt, frozenset())
        for name in names:
            expected = owner < name < nxt if owner < nxt else (name > owner or name < nxt)
            assert rec.covers(name) is expected, (owner, nxt, name)
    for x, y in itertools.product(names[:60], repeat=2):
        assert (proofs.canonical_key(x) < proofs.canonical_key(y)) is (x < y)
