"""A zone as canonical wire RRsets (pure): the verifier's input model.

Owner names are label keys (core/records: lower-cased labels from the root down), so dicts
hash bytes in C and sorting a key list gives canonical DNSSEC order; rdata is the canonical
wire form (RFC 4034 §6.2) that signatures cover, parsed field by field only where needed.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import dns.name
import dns.rdataset

from sigchain.core.zone.records import Key, key_of


class WireRRset(NamedTuple):
    key: Key
    owner: str  # presentation form, absolute, case as first written
    rdtype: int
    ttl: int  # the smallest TTL of the records (as dnspython's rdatasets)
    wires: tuple[bytes, ...]  # canonical rdata wire, unique, sorted


class Rrsig(NamedTuple):
    """The fields of one RRSIG's canonical wire form that verification needs."""

    type_covered: int
    algorithm: int
    labels: int
    original_ttl: int
    expiration: int
    inception: int
    key_tag: int
    signer: Key
    header: bytes  # RRSIG RDATA without the signature: the start of the signed data
    signature: bytes


_RRSIG_FIXED = struct.Struct("!HBBIIIH")


def from_nodes(nodes: Mapping[dns.name.Name, Sequence[dns.rdataset.Rdataset]]) -> list[WireRRset]:
    """Rdatasets per dnspython Name (as `zonefile.load_zone` gives) as wire RRsets, in order."""
    out = []
    for name, rdatasets in nodes.items():
        key, owner = key_of(name), name.to_text()
        for rds in rdatasets:
            wires = tuple(sorted({rd.to_digestable() for rd in rds}))
            out.append(WireRRset(key, owner, rds.rdtype, rds.ttl, wires))
    return out


def read_name(wire: bytes, pos: int) -> tuple[tuple[bytes, ...], int]:
    """An uncompressed wire name at `pos`: (labels as written, root first excluded, left to
    right), and the offset after it. Raises ValueError when the name runs past the end."""
    labels = []
    while True:
        if pos >= len(wire):
            raise ValueError("truncated name")
        n = wire[pos]
        if n == 0:
            return tuple(labels), pos + 1
        if n > 63 or pos + 1 + n > len(wire):
            raise ValueError("bad label")
        labels.append(wire[pos + 1 : pos + 1 + n])
        pos += 1 + n


def key_from_labels(labels: tuple[bytes, ...]) -> Key:
    return tuple(label.lower() for label in reversed(labels))


def name_text(labels: tuple[bytes, ...]) -> str:
    return dns.name.Name(labels + (b"",)).to_text()


def key_text(key: Key) -> str:
    return dns.name.Name(tuple(reversed(key)) + (b"",)).to_text()


def parse_rrsig(wire: bytes, signers: dict[bytes, Key] | None = None) -> Rrsig:
    """Split an RRSIG's wire form; raises ValueError (struct.error) when malformed. `signers`
    memoises signer wire → key (a zone has one signer, or a few)."""
    covered, alg, labels, ottl, expiration, inception, tag = _RRSIG_FIXED.unpack_from(wire)
    pos = start = _RRSIG_FIXED.size
    while 0 < wire[pos] < 64:  # skip to the end of the signer name
        pos += 1 + wire[pos]
    end = pos + 1
    signer = signers.get(wire[start:end]) if signers is not None else None
    if signer is None:
        labels_, end = read_name(wire, start)
        signer = key_from_labels(labels_)
        if signers is not None:
            signers[wire[start:end]] = signer
    return Rrsig(covered, alg, labels, ottl, expiration, inception, tag, signer, wire[:end], wire[end:])


def read_bitmap(wire: bytes, pos: int) -> list[tuple[int, bytes]]:
    """NSEC/NSEC3 type bitmap windows from `pos` to the end: [(window, bits)]."""
    out = []
    while pos + 2 <= len(wire):
        window, n = wire[pos], wire[pos + 1]
        out.append((window, wire[pos + 2 : pos + 2 + n]))
        pos += 2 + n
    return out
