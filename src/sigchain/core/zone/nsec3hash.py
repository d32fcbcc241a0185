"""NSEC3 hashing and parameters (pure; RFC 5155 §5, §4, RFC 9276)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.NSEC3PARAM

from sigchain.core.zone import records
from sigchain.core.zone.sharedname import lower_labels
from sigchain.memo import Kept

NSEC3_SHA1 = 1
NSEC3_FLAG_OPTOUT = 0x01
MAX_DIGESTS = 4096  # hashes kept by `kept_digest` (all dropped when full)


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
    return nsec3_digest_wire(wire, salt, iterations)


def kept_digest(name: dns.name.Name, salt: bytes, iterations: int) -> bytes:
    """`nsec3_digest`, remembered by the name's lower-cased labels, salt and iterations (the
    hash is a function of those alone): a resolver hashes the same zone, ancestors and
    wildcards for every cold name under a zone, in the proofs it offers and in the ones it
    checks."""
    labels = lower_labels(name)
    key = (labels, salt, iterations)
    digest = _DIGESTS.get(key)
    if digest is None:  # the canonical wire form from the lower-cased labels (no Name made)
        if not labels or labels[-1]:
            raise dns.name.NeedAbsoluteNameOrOrigin
        wire = b"".join(bytes((len(label),)) + label for label in labels)
        digest = _DIGESTS.keep(key, nsec3_digest_wire(wire, salt, iterations))
    return digest


_DIGESTS: Kept[tuple[tuple[bytes, ...], bytes, int], bytes] = Kept(MAX_DIGESTS)


def nsec3_digest_wire(wire: bytes, salt: bytes, iterations: int) -> bytes:
    """IH over a name already in canonical wire form."""
    digest = hashlib.sha1(wire + salt).digest()
    for _ in range(iterations):
        digest = hashlib.sha1(digest + salt).digest()
    return digest


def b32hex(digest: bytes) -> str:
    return records.b32hex(digest)


def nsec3_owner(name: dns.name.Name, origin: dns.name.Name, p: Nsec3Params) -> dns.name.Name:
    return dns.name.Name((b32hex(nsec3_digest(name, p.salt, p.iterations)).encode(),) + origin.labels)


def nsec3param_rdata(p: Nsec3Params) -> dns.rdtypes.ANY.NSEC3PARAM.NSEC3PARAM:
    # The NSEC3PARAM flags field is 0: opt-out lives in the NSEC3 records (RFC 5155 §4.1.2).
    return dns.rdtypes.ANY.NSEC3PARAM.NSEC3PARAM(
        dns.rdataclass.IN, dns.rdatatype.NSEC3PARAM, p.algorithm, 0, p.iterations, p.salt
    )
