"""A resolver's response to a client rendered straight to wire (pure): the header and question
as the client sent them, each shown record's owner compressed (`serve.wire`'s compressor,
matching suffixes regardless of case as dnspython's renderer does), its rdata wire made once
per rdata object (the cache's RRsets share their rdata), and the OPT record with the EDEs —
instead of building a dnspython message and rendering it."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

import dns.name
import dns.rdata
import dns.rrset
from dns.rdatatype import RdataType

from sigchain.core.serve.wire import _compress
from sigchain.memo import Kept

_RR = struct.Struct("!HHIH")
_HEADER = struct.Struct("!HHHHHH")
_DNSSEC_TYPES = (RdataType.RRSIG, RdataType.NSEC, RdataType.NSEC3)
QR, RA, AD, CD = 0x8000, 0x0080, 0x0020, 0x0010
DO = 0x8000
MAX_KEPT = 20_000  # rdata and owner wire forms kept by object (all dropped when full); small,
# as they keep alive what the cache may have evicted

# id(object) → (object, wire): the object is held so that its id is not reused meanwhile
_rdata_wires: Kept[int, tuple[dns.rdata.Rdata, bytes]] = Kept(MAX_KEPT)
_name_wires: Kept[int, tuple[dns.name.Name, bytes]] = Kept(MAX_KEPT)


def _rdata_wire(rd: dns.rdata.Rdata) -> bytes:
    kept = _rdata_wires.get(id(rd))
    if kept is None or kept[0] is not rd:
        kept = _rdata_wires.keep(id(rd), (rd, rd.to_wire()))
    return kept[1]


def _name_wire(name: dns.name.Name) -> bytes:
    kept = _name_wires.get(id(name))
    if kept is None or kept[0] is not name:
        wire = name.to_wire()
        assert wire is not None  # absolute names only: they came off the wire
        kept = _name_wires.keep(id(name), (name, wire))
    return kept[1]


def shown(rrset: dns.rrset.RRset, do: bool, qtype: int, keep_dnssec_answer: bool) -> bool:
    """Whether a response shows `rrset`: DNSSEC records only with DO, unless asked for (in
    the answer section: their own type, or ANY; RFC 3225 §3)."""
    if do:
        return True
    rdtype = rrset.covers if rrset.rdtype == RdataType.RRSIG else rrset.rdtype
    return not ((rrset.rdtype == RdataType.RRSIG or rdtype in _DNSSEC_TYPES)
                and not (keep_dnssec_answer and qtype in (rrset.rdtype, RdataType.ANY)))


def opt(do: bool, payload: int, ede: Iterable[tuple[int, str]]) -> bytes:
    """The OPT record (RFC 6891): version 0, `payload`, DO echoed, EDE options (RFC 8914)."""
    options = b"".join(struct.pack("!HHH", 15, 2 + len(text), code) + text
                       for code, text in ((c, t.encode()) for c, t in ede))
    return b"\x00" + _RR.pack(RdataType.OPT, payload, DO if do else 0, len(options)) + options


def render_wire(msg_id: bytes, flags: int, question: bytes, sections: Sequence[Sequence[dns.rrset.RRset]],
                age: int, opt_record: bytes | None) -> bytes:
    """The response: `flags` (rcode included), the client's question wire (name, type and
    class, as sent), then the RRsets of the answer and authority `sections` with their TTLs
    less `age` (never below 0), then `opt_record` in the additional section."""
    out = bytearray(12)
    out += question
    comp: dict[bytes, bytes] = {}
    _compress(comp, question[:-4], 12, question[:-4].lower())
    counts = []
    for rrsets in sections:
        n = 0
        for r in rrsets:
            owner = _name_wire(r.name)
            low = owner.lower()
            head = _RR.pack(r.rdtype, r.rdclass, max(0, r.ttl - age), 0)[:-2]
            for rd in r:
                data = _rdata_wire(rd)
                out += _compress(comp, owner, len(out), low)
                out += head
                out += len(data).to_bytes(2, "big")
                out += data
            n += len(r)
        counts.append(n)
    extra = 0
    if opt_record is not None:
        out += opt_record
        extra = 1
    out[0:12] = msg_id + _HEADER.pack(0, flags, 1, counts[0], counts[1], extra)[2:]
    return bytes(out)
