"""RRSIG construction and checking for one RRset (pure; RFC 4034 §3, RFC 4035 §5.3).

Everything a signer worker needs is passed in: no global state, so a process pool can share
RRsets out freely.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.RRSIG

_SERIAL = 1 << 32


def rrsig_labels(owner: dns.name.Name) -> int:
    """The RRSIG Labels field: owner labels without the root and a leading wildcard."""
    n = len(owner) - 1
    return n - 1 if owner.is_wild() else n


def signature_data(
    owner: dns.name.Name,
    rdtype: int,
    rdclass: int,
    original_ttl: int,
    rdatas: Sequence[dns.rdata.Rdata],
    rrsig_header: bytes,
    origin: dns.name.Name | None = None,
) -> bytes:
    """RRSIG_RDATA (without the signature) followed by the RRset in canonical form."""
    name_wire = owner.canonicalize().to_wire()
    assert name_wire is not None
    canon = sorted({rd.to_digestable(origin) for rd in rdatas})
    return rrsig_header + rrset_data(name_wire, rdtype, original_ttl, canon, rdclass)


def rrset_data(
    owner_wire: bytes, rdtype: int, original_ttl: int, sorted_wires: Sequence[bytes], rdclass: int = 1
) -> bytes:
    """The RRset part of the signed data: each RR in canonical form and order (RFC 4034 §6.3)."""
    rrfixed = owner_wire + struct.pack("!HHI", rdtype, rdclass, original_ttl)
    return b"".join(rrfixed + struct.pack("!H", len(rd)) + rd for rd in sorted_wires)


def rrsig_header(
    type_covered: int,
    algorithm: int,
    labels: int,
    original_ttl: int,
    expiration: int,
    inception: int,
    key_tag: int,
    signer: dns.name.Name | bytes,
) -> bytes:
    """RRSIG RDATA without the signature field; `signer` as a Name or canonical wire."""
    if isinstance(signer, dns.name.Name):
        wire = signer.canonicalize().to_wire()
        assert wire is not None
        signer = wire
    return (
        struct.pack(
            "!HBBIIIH",
            type_covered,
            algorithm,
            labels,
            original_ttl,
            expiration % _SERIAL,
            inception % _SERIAL,
            key_tag,
        )
        + signer
    )


def header_of(rrsig: dns.rdtypes.ANY.RRSIG.RRSIG) -> bytes:
    return rrsig_header(
        rrsig.type_covered, rrsig.algorithm, rrsig.labels, rrsig.original_ttl,
        rrsig.expiration, rrsig.inception, rrsig.key_tag, rrsig.signer,
    )


@dataclass(frozen=True)
class SigWindow:
    inception: int
    validity: int  # seconds
    jitter: int  # up to this many seconds are taken off each expiration
    jitter_seed: bytes = b""

    def expiration_for(self, owner: dns.name.Name | bytes, rdtype: int) -> int:
        """inception + validity − a share of the jitter that depends only on (seed, owner,
        type), so expirations spread out and any worker computes the same value. `owner` is
        a Name or its canonical wire form."""
        if self.jitter <= 0:
            return self.inception + self.validity
        wire = owner if isinstance(owner, bytes) else (owner.canonicalize().to_wire() or b"")
        h = hashlib.blake2b(self.jitter_seed + wire + rdtype.to_bytes(2, "big"), digest_size=8)
        share = int.from_bytes(h.digest(), "big") % (self.jitter + 1)
        return self.inception + self.validity - share


def serial_lt(a: int, b: int) -> bool:
    """RFC 1982 serial-number comparison on 32 bits (RRSIG times, RFC 4034 §3.1.5)."""
    a %= _SERIAL
    b %= _SERIAL
    return a != b and ((a < b and b - a < 2**31) or (a > b and a - b > 2**31))


def wrong_fields(
    *, signer_is_zone: bool, labels: int, owner_labels: int,
    original_ttl: int | None = None, rrset_ttl: int | None = None, may_expand: bool = False,
) -> list[str]:
    """RFC 4035 §5.3.1: which of an RRSIG's signer, labels and original TTL fields do not fit
    the RRset it covers ("signer", "labels", "original-ttl"). A validator passes
    `may_expand` (fewer labels than the owner: a wildcard expansion, RFC 4035 §5.3.2) and no
    TTLs (caches decrement them); a zone verifier passes the RRset TTL, which must equal the
    original TTL, and requires the exact label count."""
    wrong = []
    if not signer_is_zone:
        wrong.append("signer")
    if labels > owner_labels or (labels < owner_labels and not may_expand):
        wrong.append("labels")
    if original_ttl is not None and rrset_ttl is not None and original_ttl != rrset_ttl:
        wrong.append("original-ttl")
    return wrong


def time_status(inception: int, expiration: int, now: int) -> str:
    """'ok', 'expired' or 'not-yet-valid' for an RRSIG window at `now` (serial arithmetic)."""
    if serial_lt(expiration, now):
        return "expired"
    if serial_lt(now, inception):
        return "not-yet-valid"
    return "ok"
