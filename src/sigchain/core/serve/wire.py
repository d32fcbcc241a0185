"""The wire renderer: a lookup's sections as response wire, assembled by concatenating each
RRset's pre-rendered records (`index.RecordWires`) behind compressed owner names, without
building a dnspython message. As in BIND, answers are in the zone's letter case."""

from __future__ import annotations

import struct

import dns.rdataclass
from dns.rdatatype import RdataType

from sigchain.core.serve.index import RecordWire, RecordWires, ZoneIndex
from sigchain.core.serve.outcome import Sections
from sigchain.core.serve.rrsets import ServedRRset

_NONE: dict[int, RecordWire] = {}


def _compress(comp: dict[bytes, bytes], name: bytes, pos: int, key: bytes | None = None) -> bytes:
    """`name` (wire) written at offset `pos`: its labels up to the longest suffix already in
    the message — byte for byte, as `message.to_wire` — then a pointer to that suffix
    (RFC 1035 §4.1.4). The suffixes written out become targets for later names. `comp` maps
    each target to its pointer; suffixes are matched on `key` (`name` itself by default; the
    resolver passes it lower-cased, to match regardless of letter case as dnspython does)."""
    low = name if key is None else key
    i = 0
    ptr = b""
    while low[i]:
        hit = comp.get(low[i:])
        if hit is not None:
            ptr = hit
            break
        i += low[i] + 1
    j = 0
    while j < i and pos + j < 0x4000:
        comp[low[j:]] = (0xC000 | (pos + j)).to_bytes(2, "big")
        j += low[j] + 1
    return name[:i] + ptr if ptr else name


def render_sections(
    zone: ZoneIndex | None, qkey: bytes, qtype: int, s: Sections, *, question_target: bool,
    edns: bool, do: bool, udp_size: int,
) -> bytes:
    """A lookup's response wire (ID 0, RD/CD clear: `fastpath._patch` sets them per query), built by
    concatenating each RRset's pre-rendered records (`ZoneIndex.wires`) behind compressed
    owner names. Rdata is left uncompressed (RFC 3597 §4 allows it). The same answer as
    `message.to_wire(message.answer(...))` gives, record for record."""
    out = bytearray(12)
    out += qkey
    out += struct.pack("!HH", qtype, dns.rdataclass.IN)
    comp: dict[bytes, bytes] = {}
    if question_target:
        _compress(comp, qkey, 12)
    kept = zone.wires.get_id if zone is not None else _NONE.get
    counts = []
    for items in (s.answer, s.authority, s.additional):
        n = 0
        for synth, rrset in items:
            if rrset.__class__ is ServedRRset:  # a zone read as wire: its records are bytes
                owner, tails = rrset.owner, rrset.tails  # type: ignore[attr-defined]
            else:
                hit = kept(id(rrset))
                if hit is None:
                    assert zone is not None  # without a zone (REFUSED) there are no records
                    hit = (RecordWires.make(rrset, [rd.to_wire() for rd in rrset])
                           if id(rrset) in s.transient else zone.wires.keep(rrset))
                owner, tails = hit[0], hit[1]
            if synth is not None:
                owner = synth
            for tail in tails:
                out += comp.get(owner) or _compress(comp, owner, len(out))
                out += tail
            n += len(tails)
        counts.append(n)
    if edns:  # OPT (RFC 6891 §6.1.2): version 0, our UDP size, DO echoed
        out += struct.pack("!BHHIH", 0, RdataType.OPT, udp_size, 0x8000 if do else 0, 0)
        counts[2] += 1
    flags = (0x8400 if s.aa else 0x8000) | int(s.rcode)  # QR, AA (plain ints: enum "|" is slow)
    out[0:12] = struct.pack("!HHHHHH", 0, flags, 1, *counts)
    return bytes(out)
