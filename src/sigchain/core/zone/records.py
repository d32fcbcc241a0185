"""The signer's compact record model (pure): owner names as label keys, rdata as canonical
wire plus presentation text. No dnspython objects per record on the hot path, so a million
names fit in memory and a batch of RRsets pickles cheaply to a worker process."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

import dns.name
import dns.rdataset
import dns.rdatatype

Key = tuple[bytes, ...]  # lower-cased labels from the root down; the root is ()


class RRsetRec(NamedTuple):
    key: Key
    owner: str  # presentation form, absolute, case as written
    rdtype: int
    ttl: int
    wires: tuple[bytes, ...]  # canonical rdata wire (RFC 4034 §6.2), unique, sorted
    texts: tuple[str, ...]  # presentation rdata with absolute names, same order as `wires`


def key_of(name: dns.name.Name) -> Key:
    return tuple(label.lower() for label in reversed(name.labels[:-1]))


def name_of(key: Key) -> dns.name.Name:
    return dns.name.Name(tuple(reversed(key)) + (b"",))


def key_wire(key: Key) -> bytes:
    """Canonical (lower-case, uncompressed) wire form of the name."""
    return b"".join(bytes((len(label),)) + label for label in reversed(key)) + b"\x00"


def key_wire_via(key: Key, parents: dict[Key, bytes]) -> bytes:
    """`key_wire(key)` from its parent's wire, memoised in `parents`: a zone's names share a
    few parents, and building each name's wire label by label was a tenth of verify's planning."""
    if not key:
        return b"\x00"
    parent = key[:-1]
    pw = parents.get(parent)
    if pw is None:
        pw = parents[parent] = key_wire(parent)
    label = key[-1]
    return bytes((len(label),)) + label + pw


def is_wild(key: Key) -> bool:
    return bool(key) and key[-1] == b"*"


def make_rrset(key: Key, owner: str, rdtype: int, ttl: int, rdatas: Iterable[tuple[bytes, str]]) -> RRsetRec:
    """An RRset from (wire, text) pairs: duplicates dropped, canonical rdata order."""
    pairs = sorted(dict(rdatas).items())
    if len(pairs) == 1:
        return RRsetRec(key, owner, rdtype, ttl, (pairs[0][0],), (pairs[0][1],))
    return RRsetRec(key, owner, rdtype, ttl, tuple(w for w, _ in pairs), tuple(t for _, t in pairs))


def from_rdataset(name: dns.name.Name, rds: dns.rdataset.Rdataset) -> RRsetRec:
    return make_rrset(
        key_of(name), name.to_text(), rds.rdtype, rds.ttl,
        ((rd.to_digestable(), rd.to_text(relativize=False)) for rd in rds),
    )


def from_rdatasets(nodes: Mapping[dns.name.Name, Sequence[dns.rdataset.Rdataset]]) -> list[RRsetRec]:
    return [from_rdataset(name, rds) for name, rdatasets in nodes.items() for rds in rdatasets]


_TYPE_TEXT: dict[int, str] = {}


def type_text(rdtype: int) -> str:
    """dns.rdatatype.to_text, memoised (it is slow and called per record)."""
    t = _TYPE_TEXT.get(rdtype)
    if t is None:
        t = _TYPE_TEXT[rdtype] = dns.rdatatype.to_text(rdtype)
    return t


_B32HEX = "0123456789abcdefghijklmnopqrstuv"
_B32_PAIRS = [_B32HEX[i >> 5] + _B32HEX[i & 31] for i in range(1024)]


def b32hex(data: bytes) -> str:
    """Lower-case base32hex without padding, as NSEC3 owner labels use (RFC 4648 §7);
    a table-driven version of base64.b32hexencode, which is pure Python and slow."""
    if len(data) == 20:  # SHA-1, every NSEC3 hash: 160 bits, 16 pairs of characters, unrolled
        n = int.from_bytes(data, "big")
        p = _B32_PAIRS
        return (
            p[n >> 150] + p[(n >> 140) & 1023] + p[(n >> 130) & 1023] + p[(n >> 120) & 1023]
            + p[(n >> 110) & 1023] + p[(n >> 100) & 1023] + p[(n >> 90) & 1023] + p[(n >> 80) & 1023]
            + p[(n >> 70) & 1023] + p[(n >> 60) & 1023] + p[(n >> 50) & 1023] + p[(n >> 40) & 1023]
            + p[(n >> 30) & 1023] + p[(n >> 20) & 1023] + p[(n >> 10) & 1023] + p[n & 1023]
        )
    nbits = len(data) * 8
    pad = (-nbits) % 10
    n = int.from_bytes(data, "big") << pad
    chars = "".join([_B32_PAIRS[(n >> s) & 1023] for s in range(nbits + pad - 10, -1, -10)])
    return chars[: (nbits + 4) // 5]


def b32hex_decode(label: bytes | str) -> bytes:
    """The inverse of `b32hex` for a valid label (either case): base-32 digits are exactly the
    base32hex alphabet, so int() decodes it in C. Raises ValueError on other characters."""
    nbytes = len(label) * 5 // 8
    n = int(label, 32) >> (len(label) * 5 - nbytes * 8)
    return n.to_bytes(nbytes, "big")


def type_bitmap(types: Iterable[int]) -> tuple[bytes, str]:
    """NSEC/NSEC3 type bitmap (RFC 4034 §4.1.2): wire form and presentation text."""
    ordered = sorted(set(types))
    windows: dict[int, bytearray] = {}
    for t in ordered:
        bits = windows.setdefault(t >> 8, bytearray(32))
        bits[(t & 0xFF) >> 3] |= 0x80 >> (t & 7)
    wire = bytearray()
    for window in sorted(windows):
        bits = windows[window].rstrip(b"\x00")
        wire += bytes((window, len(bits))) + bits
    return bytes(wire), " ".join(type_text(t) for t in ordered)
