"""An upstream reply read from the wire (pure) into the `dns.message.Message` the resolution
machine and the validator take, the same message `dns.message.from_wire` makes, for less:
names are made once per distinct name and kept across replies, rdata whose wire form holds no
compressed name (RRSIG, NSEC3, A, DNSKEY, …: most of a DNSSEC reply) is made once per distinct
wire form and shared (dnspython's rdata are immutable), and RRsets are grouped on bytes
instead of on `Name` hashes. Anything unusual (TC, another opcode, TSIG) goes to dnspython.

Malformed input raises what `dns.message.from_wire` raises for it — a `FormError` (bad
pointer, pointer loop, truncation, trailing junk) or `BadEDNS` — so callers keep one rule."""

from __future__ import annotations

import struct

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.wire
from dns.rdatatype import RdataType

from sigchain.core.zone.sharedname import shared
from sigchain.memo import Kept

_HEADER = struct.Struct("!HHHHHH")
_RR = struct.Struct("!HHIH")
_QUESTION = struct.Struct("!HH")
# types whose rdata has no domain name a sender may compress (RFC 3597 §4): their object is a
# function of their bytes alone. RRSIG's signer and NSEC's next name must not be compressed
# (RFC 4034 §3.1.7, §4.1.1); a reply that does it anyway is read the slow way.
_NAME_FREE = frozenset({RdataType.A, RdataType.AAAA, RdataType.NSEC3, RdataType.NSEC3PARAM,
                        RdataType.DNSKEY, RdataType.DS, RdataType.TXT})
_UNCOMPRESSED_NAME_AT = {RdataType.RRSIG: 18, RdataType.NSEC: 0, RdataType.DNAME: 0}
# types whose names dnspython decompresses: (octets before the names, names, octets after)
_NAMED = {RdataType.SOA: (0, 2, 20), RdataType.NS: (0, 1, 0), RdataType.CNAME: (0, 1, 0),
          RdataType.PTR: (0, 1, 0), RdataType.MX: (2, 1, 0)}
_SINGLETONS = frozenset(t for t in RdataType if dns.rdatatype.is_singleton(t))
_IN = dns.rdataclass.IN
MAX_KEPT = 10_000  # names, rdata and RRsets kept across replies (each lot dropped when full):
# bounded apart from the cache, and small, since what recurs is the zones' own records

_names: Kept[tuple[bytes, ...], tuple[dns.name.Name, bytes]] = Kept(MAX_KEPT)  # labels → (name, key)
_kept_rdata: Kept[tuple[object, ...], dns.rdata.Rdata] = Kept(MAX_KEPT)  # `_share_key` → rdata
# RRsets by all but their owner (never handed out: copies are, renamed to the reply's owner)
_kept_rrsets: Kept[tuple[object, ...], dns.rrset.RRset] = Kept(MAX_KEPT)


class _Unusual(Exception):
    """Something this reader leaves to dnspython (TSIG)."""


def _name(labels: tuple[bytes, ...]) -> tuple[dns.name.Name, bytes]:
    """The (shared) Name for `labels` (root label included) and its lower-cased wire key."""
    hit = _names.get(labels)
    if hit is None:
        name = shared(labels)  # the question's own (shared) name; raises NameTooLong past 255 octets
        hit = _names.keep(labels, (name, b"".join(bytes((len(x),)) + x for x in labels).lower()))
    return hit


def name_of(labels: tuple[bytes, ...]) -> dns.name.Name:
    """The Name for `labels` (root label included), shared with the replies read."""
    return _name(labels)[0]


def read_name(wire: bytes, pos: int, end: int) -> tuple[tuple[bytes, ...], int]:
    """The labels of the (possibly compressed) name at `pos`, root label included, and the
    offset after it, by dnspython's rules (`dns.name.from_wire_parser`): the name starts
    before `end`; each pointer points before the last one followed (so no loop can form), at
    most 16 of them, and what a pointer leads to lies wholly before the part of the name that
    holds the pointer."""
    labels: list[bytes] = []
    after = -1
    limit = start = pos  # a pointer must point before `limit`
    hops = 0
    while True:
        if pos >= end:
            raise dns.exception.FormError("name runs past its end")
        n = wire[pos]
        if n == 0:
            labels.append(b"")
            pos += 1
            break
        if n < 64:
            if pos + 1 + n > end:
                raise dns.exception.FormError("label runs past its end")
            labels.append(wire[pos + 1 : pos + 1 + n])
            pos += 1 + n
            continue
        if n < 0xC0:
            raise dns.name.BadLabelType
        if pos + 1 >= end:
            raise dns.exception.FormError("pointer runs past its end")
        target = (n & 0x3F) << 8 | wire[pos + 1]
        if after < 0:
            after = pos + 2
        if target >= limit:
            raise dns.name.BadPointer
        hops += 1
        if hops > dns.name.MAX_COMPRESSION_POINTER_CHAIN:
            raise dns.name.PointerChainTooLong
        limit = pos = target
        end, start = start, target  # the target must not overlap this part of the name
    return tuple(labels), pos if after < 0 else after


def _slow_rdata(wire: bytes, rdtype: int, rdclass: int, pos: int, rdlen: int) -> dns.rdata.Rdata:
    parser = dns.wire.Parser(wire, pos)
    with parser.restrict_to(rdlen):
        rd = dns.rdata.from_wire_parser(rdclass, rdtype, parser, None)
    if rdtype == RdataType.RRSIG:  # the signer is compared with zone names, again and again
        rd = rd.replace(signer=shared(rd.signer.labels))  # type: ignore[attr-defined]
    return rd


def _share_key(wire: bytes, rdtype: int, rdclass: int, pos: int, rdlen: int
               ) -> tuple[object, ...] | None:
    """What the record's rdata object is a function of, when it can be shared between
    replies: its bytes when it holds no compressed name, its fixed octets and decompressed
    names for the types dnspython decompresses (SOA, NS, …); None otherwise (made anew)."""
    if rdclass != _IN:
        return None
    end = pos + rdlen
    if rdtype in _NAME_FREE:
        return (rdtype, wire[pos:end])
    at = _UNCOMPRESSED_NAME_AT.get(rdtype)
    if at is not None:
        i = pos + at
        while i < end and 0 < wire[i] < 64:
            i += 1 + wire[i]
        return (rdtype, wire[pos:end]) if i < end and not wire[i] else None  # no pointer
    shape = _NAMED.get(rdtype)
    if shape is None:
        return None
    head, names, tail = shape
    i = pos + head
    key: list[object] = [rdtype, wire[pos:i]]
    try:
        for _ in range(names):
            labels, i = read_name(wire, i, end)
            key.append(labels)
    except dns.exception.DNSException:
        return None  # dnspython says why
    if i + tail != end:
        return None
    key.append(wire[i:end])
    return tuple(key)


def _rdata(wire: bytes, rdtype: int, rdclass: int, pos: int, rdlen: int,
           key: tuple[object, ...] | None) -> dns.rdata.Rdata:
    """One record's rdata object: made once for all the replies holding the same one when
    it has a `key` (see `_share_key`)."""
    if key is None:
        return _slow_rdata(wire, rdtype, rdclass, pos, rdlen)
    rd = _kept_rdata.get(key)
    if rd is None:
        rd = _kept_rdata.keep(key, _slow_rdata(wire, rdtype, rdclass, pos, rdlen))
    return rd


def _rrset(wire: bytes, name: dns.name.Name, rdclass: int, rdtype: int,
           covers: int, ttl: int, records: list[tuple[int, int]]) -> dns.rrset.RRset:
    """The RRset of `records` (rdata offsets and lengths), as dnspython's reader adds them one
    by one (duplicates dropped, a singleton type's last record kept). One whose records are
    all shareable is kept, and handed out as copies (a copy does not hash its rdata again)."""
    keys = [_share_key(wire, rdtype, rdclass, p, n) for p, n in records]
    shared = None not in keys
    # the set the records make does not depend on the owner (a wildcard's expansions, one per
    # new name, share it), and a copy hashes none of them
    key = (rdclass, rdtype, covers, ttl, *keys)
    if shared:
        kept = _kept_rrsets.get(key)
        if kept is not None:
            rrset = kept.copy()
            rrset.name = name
            return rrset
    rrset = dns.rrset.RRset(name, rdclass, rdtype, covers)
    rrset.ttl = ttl
    items = rrset.items
    singleton = rdtype in _SINGLETONS
    for (p, n), k in zip(records, keys, strict=True):
        rd = _rdata(wire, rdtype, rdclass, p, n, k)
        if singleton:
            items.clear()
        if rd not in items:
            items[rd] = None
    if shared:
        return _kept_rrsets.keep(key, rrset).copy()
    return rrset


def read_reply(wire: bytes) -> dns.message.Message:
    """The message in `wire`, as `dns.message.from_wire(wire, raise_on_truncation=True)`
    gives it (raises `Truncated` for TC, `FormError`/`BadEDNS` for malformed input)."""
    if len(wire) < 12:
        raise dns.message.ShortHeader
    msg_id, flags, qd, an, ns, ar = _HEADER.unpack_from(wire)
    if flags & (dns.flags.TC | 0x7800):  # truncated, or an opcode other than QUERY
        return dns.message.from_wire(wire, raise_on_truncation=True)
    try:
        return _read(wire, msg_id, flags, qd, (an, ns, ar))
    except _Unusual:
        return dns.message.from_wire(wire, raise_on_truncation=True)


def _read(wire: bytes, msg_id: int, flags: int, qd: int, counts: tuple[int, int, int]
          ) -> dns.message.Message:
    m = dns.message.QueryMessage(id=msg_id)
    m.flags = dns.flags.Flag(flags)
    m.wire = wire
    m.index = None  # find_rrset searches the sections (the index is built only by it)
    size = len(wire)
    pos = 12
    for _ in range(qd):
        labels, pos = read_name(wire, pos, size)
        if pos + 4 > size:
            raise dns.exception.FormError("question runs past the end of the message")
        rdtype, rdclass = _QUESTION.unpack_from(wire, pos)
        pos += 4
        m.question.append(dns.rrset.RRset(_name(labels)[0], rdclass, rdtype))
    for number, count in enumerate(counts, 1):
        groups: dict[tuple[bytes, int, int, int], list] = {}  # type: ignore[type-arg]
        for _ in range(count):
            labels, pos = read_name(wire, pos, size)
            if pos + 10 > size:
                raise dns.exception.FormError("record runs past the end of the message")
            rdtype, rdclass, ttl, rdlen = _RR.unpack_from(wire, pos)
            pos += 10
            if pos + rdlen > size:
                raise dns.exception.FormError("rdata runs past the end of the message")
            name, key = _name(labels)
            if rdtype == RdataType.OPT:
                if number != 3 or m.opt is not None or key != b"\x00":
                    raise dns.message.BadEDNS
                shape = (rdtype, rdclass, wire[pos : pos + rdlen])  # OPT: no names; CLASS is the size
                m.opt = dns.rrset.from_rdata(name, ttl, _rdata(wire, rdtype, rdclass, pos, rdlen, shape))
                pos += rdlen
                continue
            if rdtype == RdataType.TSIG:
                raise _Unusual
            covers = wire[pos] << 8 | wire[pos + 1] if rdtype == RdataType.RRSIG and rdlen >= 2 else 0
            if ttl > 0x7FFFFFFF:
                ttl = 0
            group = groups.get((key, rdclass, rdtype, covers))
            if group is None:
                groups[(key, rdclass, rdtype, covers)] = [name, ttl, [(pos, rdlen)]]
            else:
                group[1] = min(group[1], ttl)
                group[2].append((pos, rdlen))
            pos += rdlen
        section = m.sections[number]
        for (_, rdclass, rdtype, covers), (name, ttl, records) in groups.items():
            section.append(_rrset(wire, name, rdclass, rdtype, covers, ttl, records))
    if pos != size:
        raise dns.message.TrailingJunk
    return m
