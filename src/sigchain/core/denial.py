"""Building NSEC and NSEC3 chains (pure; RFC 4034 §4, RFC 5155 §7.1, RFC 9077, RFC 9276)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.NSEC
import dns.rdtypes.ANY.NSEC3
import dns.rdtypes.ANY.NSEC3PARAM
from dns.rdtypes.util import Bitmap

from sigchain.core.zonedata import ZoneShape, nsec3_covered, nsec3_types, nsec_types

NSEC3_SHA1 = 1
NSEC3_FLAG_OPTOUT = 0x01


@dataclass(frozen=True)
class Nsec3Params:
    iterations: int = 0
    salt: bytes = b""
    opt_out: bool = False
    algorithm: int = NSEC3_SHA1


def nsec3_digest(name: dns.name.Name, salt: bytes, iterations: int) -> bytes:
    """RFC 5155 §5: IH(salt, x, k) over the canonical wire form of `name`."""
    wire = name.canonicalize().to_wire()
    assert wire is not None
    digest = hashlib.sha1(wire + salt).digest()
    for _ in range(iterations):
        digest = hashlib.sha1(digest + salt).digest()
    return digest


def b32hex(digest: bytes) -> str:
    return base64.b32hexencode(digest).decode("ascii").lower()


def nsec3_owner(name: dns.name.Name, origin: dns.name.Name, p: Nsec3Params) -> dns.name.Name:
    return dns.name.Name((b32hex(nsec3_digest(name, p.salt, p.iterations)).encode(),) + origin.labels)


def nsec_chain(
    shape: ZoneShape, types_at: Mapping[dns.name.Name, Iterable[int]]
) -> list[tuple[dns.name.Name, dns.rdtypes.ANY.NSEC.NSEC]]:
    """One NSEC per authoritative name, each pointing at the next, the last at the apex."""
    names = shape.authoritative()
    out = []
    for i, name in enumerate(names):
        nxt = names[(i + 1) % len(names)]
        types = nsec_types(shape.kinds[name], types_at.get(name, ()))
        rd = dns.rdtypes.ANY.NSEC.NSEC(
            dns.rdataclass.IN, dns.rdatatype.NSEC, nxt, Bitmap.from_rdtypes(types).windows
        )
        out.append((name, rd))
    return out


def nsec3param_rdata(p: Nsec3Params) -> dns.rdtypes.ANY.NSEC3PARAM.NSEC3PARAM:
    # The NSEC3PARAM flags field is 0: opt-out lives in the NSEC3 records (RFC 5155 §4.1.2).
    return dns.rdtypes.ANY.NSEC3PARAM.NSEC3PARAM(
        dns.rdataclass.IN, dns.rdatatype.NSEC3PARAM, p.algorithm, 0, p.iterations, p.salt
    )


class HashCollision(Exception):
    pass


def nsec3_chain(
    shape: ZoneShape, types_at: Mapping[dns.name.Name, Iterable[int]], p: Nsec3Params
) -> list[tuple[dns.name.Name, dns.rdtypes.ANY.NSEC3.NSEC3]]:
    """NSEC3 records for every covered name (ENTs included), in hash order."""
    hashed: dict[bytes, dns.name.Name] = {}
    for name in nsec3_covered(shape, types_at, p.opt_out):
        d = nsec3_digest(name, p.salt, p.iterations)
        if d in hashed:
            raise HashCollision(f"NSEC3 hash collision between {hashed[d]} and {name}")
        hashed[d] = name
    order = sorted(hashed)
    flags = NSEC3_FLAG_OPTOUT if p.opt_out else 0
    out = []
    for i, d in enumerate(order):
        name = hashed[d]
        nxt = order[(i + 1) % len(order)]
        types = nsec3_types(shape.kinds[name], types_at.get(name, ()), nsec3param=True)
        rd = dns.rdtypes.ANY.NSEC3.NSEC3(
            dns.rdataclass.IN, dns.rdatatype.NSEC3, p.algorithm, flags, p.iterations, p.salt,
            nxt, Bitmap.from_rdtypes(types).windows,
        )
        owner = dns.name.Name((b32hex(d).encode(),) + shape.origin.labels)
        out.append((owner, rd))
    return out
