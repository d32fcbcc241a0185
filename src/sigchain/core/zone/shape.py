"""Zone structure shared by the signer and the verifier (pure).

Decides which names are authoritative, which are delegation points, which are glue or
occluded (below a zone cut or a DNAME), and which empty non-terminals exist — the facts
that both signing and verification must agree on (RFC 4035 §2.2, RFC 5155 §7.1).
"""

from __future__ import annotations

import enum
from collections.abc import Container, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import dns.name
import dns.rdatatype
from dns.rdatatype import RdataType

# Records a signer produces; an already signed input has them dropped before re-signing.
DNSSEC_GENERATED = frozenset(
    {RdataType.RRSIG, RdataType.NSEC, RdataType.NSEC3, RdataType.NSEC3PARAM}
)


class NodeKind(enum.Enum):
    APEX = "apex"
    AUTH = "auth"  # authoritative data
    DELEGATION = "delegation"  # zone cut below the apex: NS (+DS) (+glue below)
    OCCLUDED = "occluded"  # glue or data below a cut or a DNAME: never signed
    ENT = "ent"  # empty non-terminal (exists only implicitly)


class NameOps(Protocol):
    """The three name operations the shape logic needs, so one implementation serves both
    dnspython Names (verifier, server) and the signer's label-tuple keys (see core/zone/records)."""

    def below(self, a: Any, b: Any) -> bool:
        """a is strictly below b."""
        ...

    def parent(self, a: Any) -> Any: ...

    def depth(self, a: Any) -> int: ...


class _DnsNames:
    def below(self, a: dns.name.Name, b: dns.name.Name) -> bool:
        return a != b and a.is_subdomain(b)

    def parent(self, a: dns.name.Name) -> dns.name.Name:
        return a.parent()

    def depth(self, a: dns.name.Name) -> int:
        return len(a)


class _LabelKeys:
    """Names as tuples of lower-cased labels from the root down (root = ()): tuple order is
    canonical DNSSEC order (RFC 4034 §6.1) and hashing is cheap."""

    def below(self, a: tuple[bytes, ...], b: tuple[bytes, ...]) -> bool:
        return len(a) > len(b) and a[: len(b)] == b

    def parent(self, a: tuple[bytes, ...]) -> tuple[bytes, ...]:
        return a[:-1]

    def depth(self, a: tuple[bytes, ...]) -> int:
        return len(a)


DNS_NAMES: NameOps = _DnsNames()
LABEL_KEYS: NameOps = _LabelKeys()


@dataclass(frozen=True)
class ZoneShape:
    """Classification of every owner name of a zone, in canonical order."""

    origin: Any  # dns.name.Name, or a label key with LABEL_KEYS
    kinds: Mapping[Any, NodeKind]
    order: tuple[Any, ...]  # every name in `kinds`, canonical DNSSEC order
    ops: NameOps = DNS_NAMES

    def authoritative(self) -> list[Any]:
        """Names that own an NSEC record: apex, authoritative data, delegation points."""
        return [n for n in self.order if self.kinds[n] in _NSEC_KINDS]

    def is_signed_at(self, name: dns.name.Name, rdtype: int) -> bool:
        """Whether the RRset (name, rdtype) gets RRSIGs (RFC 4035 §2.2)."""
        kind = self.kinds.get(name)
        if kind in (NodeKind.APEX, NodeKind.AUTH):
            return rdtype != RdataType.RRSIG
        if kind is NodeKind.DELEGATION:
            return rdtype in (RdataType.DS, RdataType.NSEC)
        return False


_NSEC_KINDS = (NodeKind.APEX, NodeKind.AUTH, NodeKind.DELEGATION)


def shape(
    origin: Hashable,
    types_at: Mapping[Any, Iterable[int]],
    ignore: frozenset[int] = frozenset(),
    ops: NameOps = DNS_NAMES,
) -> ZoneShape:
    """Classify names given the rdata types at each (types in `ignore` do not make a node).

    `ignore` lets the verifier pass NSEC3/RRSIG so hashed NSEC3 owners and signature-only
    leftovers do not count as data.
    """
    if ignore:
        present: Mapping[Any, Iterable[int]] = {
            n: {t for t in ts if t not in ignore} for n, ts in types_at.items()
        }
    else:
        present = types_at
    names = sorted(n for n, ts in present.items() if ts)
    kinds: dict[Any, NodeKind] = {}
    cut: Any = None
    for name in names:
        if cut is not None and ops.below(name, cut):
            kinds[name] = NodeKind.OCCLUDED
            continue
        cut = None
        ts = present[name]
        if name == origin:
            kinds[name] = NodeKind.APEX
            if RdataType.DNAME in ts:
                cut = name
        elif RdataType.NS in ts:
            kinds[name] = NodeKind.DELEGATION
            cut = name
        else:
            kinds[name] = NodeKind.AUTH
            if RdataType.DNAME in ts:
                cut = name
    # Empty non-terminals: ancestors (below the apex) of non-occluded names that own nothing.
    for name in list(kinds):
        if kinds[name] is NodeKind.OCCLUDED:
            continue
        parent = name
        while ops.depth(parent) > ops.depth(origin) + 1:
            parent = ops.parent(parent)
            if parent in kinds:
                break
            kinds[parent] = NodeKind.ENT
    return ZoneShape(origin, kinds, tuple(sorted(kinds)), ops)


def _authoritative_types(kind: NodeKind, data_types: Iterable[int]) -> set[int]:
    """The types a denial bitmap lists: at a zone cut only NS and DS, the rest there being
    the child's (as dnssec-signzone and dnssec-verify have it)."""
    if kind is NodeKind.DELEGATION:
        return {t for t in data_types if t in (RdataType.NS, RdataType.DS)}
    return {t for t in data_types if t not in DNSSEC_GENERATED}


def nsec_types(kind: NodeKind, data_types: Iterable[int]) -> list[int]:
    """The NSEC type bitmap for a node: its data types plus NSEC and RRSIG."""
    types = _authoritative_types(kind, data_types)
    types |= {RdataType.NSEC, RdataType.RRSIG}
    return sorted(types)


def nsec3_types(kind: NodeKind, data_types: Iterable[int], nsec3param: bool) -> list[int]:
    """The NSEC3 type bitmap: data types, RRSIG when the node has signed data (RFC 5155 §7.1)."""
    types = _authoritative_types(kind, data_types)
    if kind is NodeKind.APEX and nsec3param:
        types.add(RdataType.NSEC3PARAM)
    if kind in (NodeKind.APEX, NodeKind.AUTH) and types:
        types.add(RdataType.RRSIG)
    elif kind is NodeKind.DELEGATION and RdataType.DS in types:
        types.add(RdataType.RRSIG)
    return sorted(types)


def nsec3_covered(
    shape_: ZoneShape, types_at: Mapping[Any, Iterable[int]], opt_out: bool
) -> list[Any]:
    """Names that need an NSEC3 record. With opt-out, insecure delegations are left out, and so
    are empty non-terminals whose only descendants are insecure delegations (RFC 5155 §7.1)."""
    names = [n for n in shape_.order if shape_.kinds[n] is not NodeKind.OCCLUDED]
    if not opt_out:
        return names

    def insecure_delegation(n: Any) -> bool:
        return shape_.kinds[n] is NodeKind.DELEGATION and RdataType.DS not in set(types_at[n])

    needed = {n for n in names if shape_.kinds[n] is not NodeKind.ENT and not insecure_delegation(n)}
    # An ENT is needed when some needed name lies below it.
    ops = shape_.ops
    for n in list(needed):
        p = n
        while ops.depth(p) > ops.depth(shape_.origin) + 1:
            p = ops.parent(p)
            if shape_.kinds.get(p) is NodeKind.ENT:
                needed.add(p)
    return [n for n in names if n in needed]


def bitmap_types(windows: Iterable[tuple[int, bytes]]) -> set[int]:
    """Decode an NSEC/NSEC3 type bitmap into a set of type numbers."""
    out: set[int] = set()
    for window, bits in windows:
        for i, byte in enumerate(bits):
            for j in range(8):
                if byte & (0x80 >> j):
                    out.add(window * 256 + i * 8 + j)
    return out


class BitmapTypes:
    """The types an NSEC/NSEC3 type bitmap names, for membership tests only, read off the
    bitmap's own bytes: a bitmap can name up to 65,536 types (8 KiB of wire), which as a set
    of ints would take megabytes per record. Equal to another whose windows are equal."""

    __slots__ = ("_windows",)

    def __init__(self, windows: Iterable[tuple[int, bytes]]):
        self._windows = {window: bytes(bits) for window, bits in windows}

    def __contains__(self, rdtype: object) -> bool:
        if not isinstance(rdtype, int) or not 0 <= rdtype <= 0xFFFF:
            return False
        bits = self._windows.get(rdtype >> 8)
        i = (rdtype & 0xFF) >> 3
        return bits is not None and i < len(bits) and bool(bits[i] & (0x80 >> (rdtype & 7)))

    def other_than(self, ignored: Container[int]) -> int | None:
        """The lowest type the bitmap names that is not in `ignored`, or None."""
        for window, bits in sorted(self._windows.items()):
            for i, byte in enumerate(bits):
                for bit in range(8) if byte else ():
                    rdtype = window << 8 | i << 3 | bit
                    if byte & (0x80 >> bit) and rdtype not in ignored:
                        return rdtype
        return None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BitmapTypes) and self._windows == other._windows

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._windows.items())))

    def __repr__(self) -> str:
        return f"BitmapTypes({sorted(bitmap_types(self._windows.items()))})"


def type_text(t: int) -> str:
    return dns.rdatatype.to_text(t)


_BESIDE_CNAME = frozenset({RdataType.CNAME, RdataType.NSEC, RdataType.NSEC3, RdataType.KEY})


def clashes_with_cname(rdtype: int) -> bool:
    """Data that may not share a name with a CNAME (RFC 1034 §3.6.2, RFC 2181 §10.1): anything
    but the CNAME itself and the DNSSEC types (RFC 4035 §2.5), as dnspython classifies them.
    An RRSIG counts as the type it covers, taken from above bit 16 (the signed reader's keys);
    without it, as neutral."""
    base = rdtype & 0xFFFF
    if base == RdataType.RRSIG:
        base = rdtype >> 16
        if base == 0:
            return False
    return base not in _BESIDE_CNAME
