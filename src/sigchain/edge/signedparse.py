"""A fast master-file reader for verifying signed zones: text → wire RRsets (core/zone/wire).

Signed zones are mostly RRSIG, NSEC and NSEC3 records: those become canonical wire here,
straight from their tokens; every other type goes through `fastparse` (its common types
directly, the rest through dnspython). Anything the fast path does not take exactly as
dnspython would (mnemonic algorithms, odd spellings, out-of-range values) is handed to
dnspython too, so the records, and the error messages, are dnspython's. Files with $INCLUDE
or $GENERATE raise `fastparse.NeedsFullReader`; errors name the file and the record's line.
"""

from __future__ import annotations

import binascii
import datetime
import struct
from collections.abc import Iterable
from typing import NamedTuple

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.ttl

from sigchain.core.zone.records import Key, key_of, key_wire, type_bitmap
from sigchain.core.zone.wire import WireRRset
from sigchain.edge.fastparse import (
    CnameCheck,
    _name,
    _Origin,
    _rdata,
    _State,
    bad_record,
    check_apex,
    is_class,
    load_warnings,
    logical_lines,
    mixed_ttl,
)
from sigchain.edge.zonetext import check_rdata_size

_RRSIG, _NSEC, _NSEC3, _SOA, _NS = (
    dns.rdatatype.RRSIG, dns.rdatatype.NSEC, dns.rdatatype.NSEC3, dns.rdatatype.SOA, dns.rdatatype.NS,
)
_RRSIG_FIXED = struct.Struct("!HBBIIIH")
_EPOCH_DAY = datetime.date(1970, 1, 1).toordinal()
_days: dict[str, int] = {}
_types: dict[str, int] = {}
_signers: dict[tuple[str, str], bytes] = {}
_bitmaps: dict[tuple[str, ...], bytes] = {}


def _type(tok: str) -> int:
    t = _types.get(tok)
    if t is None:
        t = _types[tok] = dns.rdatatype.from_text(tok)
    return t


def _digits(*toks: str) -> None:
    """ValueError unless every token is ASCII decimal digits (int() takes more: '+1', '1_0')."""
    joined = "".join(toks)
    if not (joined.isascii() and joined.isdigit()):
        raise ValueError(joined)


_times: dict[str, int] = {}  # the first few thousand times read (the inceptions repeat)


def _sigtime(tok: str) -> int:
    """An RRSIG time, YYYYMMDDHHMMSS or seconds (as dnspython's sigtime_to_posixtime);
    the caller has checked the digits."""
    if len(tok) <= 10:
        return int(tok)
    t = _times.get(tok)
    if t is not None:
        return t
    if len(tok) != 14:
        raise ValueError(tok)
    day = _days.get(tok[:8])
    if day is None:
        day = datetime.date(int(tok[:4]), int(tok[4:6]), int(tok[6:8])).toordinal() - _EPOCH_DAY
        _days[tok[:8]] = day
    h, m, s = int(tok[8:10]), int(tok[10:12]), int(tok[12:14])
    if h > 23 or m > 59 or s > 59:
        raise ValueError(tok)
    t = day * 86400 + h * 3600 + m * 60 + s
    if len(_times) < 4096:
        _times[tok] = t
    return t


def _bitmap(tokens: list[str]) -> bytes:
    """A type bitmap's wire form (a zone has few distinct type lists: memoised)."""
    key = tuple(tokens)
    wire = _bitmaps.get(key)
    if wire is None:
        types = [_type(t) for t in tokens]
        if 0 in types:
            raise ValueError("type 0 in a bitmap")
        wire = _bitmaps[key] = type_bitmap(types)[0]
    return wire


def _ttl(tok: str) -> int:
    if tok.isdigit() and tok.isascii() and len(tok) < 10:
        return int(tok)
    return dns.ttl.from_text(tok)


def _cased_wire(tok: str, origin: _Origin) -> bytes:
    """Wire form of a name with its case kept (NSEC next names are not lower-cased, RFC 6840
    §5.1); plain ASCII names only, others raise ValueError."""
    if tok == "@" or "\\" in tok or not tok.isascii():
        raise ValueError(tok)
    if tok.endswith("."):
        labels = tok[:-1].split(".") if tok != "." else []
    else:
        labels = tok.split(".") + list(origin.labels)
    parts = [label.encode() for label in labels]
    wire = b"".join(bytes((len(p),)) + p for p in parts) + b"\x00"
    if len(wire) > 255 or any(not p or len(p) > 63 for p in parts):
        raise ValueError(tok)
    return wire


def _signer(tok: str, origin: _Origin) -> bytes:
    """Canonical wire of an RRSIG signer name (nearly always the same few: memoised)."""
    wire = _signers.get((tok, origin.text))
    if wire is None:
        wire = _signers[(tok, origin.text)] = key_wire(_name(tok, origin)[0])
    return wire


class BadBase64(dns.exception.SyntaxError):
    """Not a ValueError: not handed to dnspython's reader, whose base64 decoder skips what is
    not base64 (RFC 4648 §3.3: such data is rejected; dnssec-verify and ldns refuse it)."""


def _base64(text: str) -> bytes:
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except binascii.Error as exc:
        raise BadBase64(f"bad base64 in the signature: {exc}") from None


def _fast_rdata(rdtype: int, text: str, origin: _Origin) -> bytes:
    """Canonical wire of an RRSIG, NSEC or NSEC3 record; ValueError for dnspython to judge."""
    f = text.split()
    if rdtype == _RRSIG:
        _digits(*f[1:7])
        return _RRSIG_FIXED.pack(
            _type(f[0]), int(f[1]), int(f[2]), int(f[3]), _sigtime(f[4]), _sigtime(f[5]), int(f[6])
        ) + _signer(f[7], origin) + _base64("".join(f[8:]))
    if rdtype == _NSEC:
        return _cased_wire(f[0], origin) + _bitmap(f[1:])
    salt = b"" if f[3] == "-" else binascii.unhexlify(f[3])
    nxt = f[4]
    if len(nxt) % 8 or not (nxt.isascii() and nxt.isalnum()):
        raise ValueError(nxt)
    digest = int(nxt, 32).to_bytes(len(nxt) * 5 // 8, "big")  # base32hex digits are int()'s
    _digits(*f[:3])
    return (
        struct.pack("!BBHB", int(f[0]), int(f[1]), int(f[2]), len(salt)) + salt
        + bytes((len(digest),)) + digest + _bitmap(f[5:])
    )


def _wire(rdtype: int, text: str, origin: _Origin) -> bytes:
    if rdtype in (_RRSIG, _NSEC, _NSEC3):
        try:
            return _fast_rdata(rdtype, text, origin)
        except (ValueError, IndexError, struct.error):
            rd = dns.rdata.from_text(dns.rdataclass.IN, rdtype, text.strip(), origin.name, relativize=False)
            return rd.to_digestable()
    return _rdata(rdtype, text, origin)[0]


def _checked_wire(rdtype: int, text: str, origin: _Origin) -> bytes:
    wire = _wire(rdtype, text, origin)
    check_rdata_size(wire)
    return wire


def _add(sets: dict[tuple[Key, int], list], owner: tuple[Key, str], rdtype: int, ttl: int, wire: bytes) -> int | None:
    """One record into its RRset: [owner text, smallest TTL, wire, or a set of wires]. None
    if it starts a new RRset, else the RRset's TTL before it (`ttl` when they agree)."""
    entry = sets.get((owner[0], rdtype))
    if entry is None:
        sets[(owner[0], rdtype)] = [owner[1], ttl, wire]
        return None
    before = entry[1]
    entry[1] = min(before, ttl)
    if isinstance(entry[2], bytes):
        entry[2] = {entry[2]}
    entry[2].add(wire)
    return before  # type: ignore[no-any-return]


def _header(fields: list[str], pos: int) -> tuple[int | None, int]:
    """The TTL and class after the owner (either order, class IN): (TTL if given, position
    of the type in `fields`)."""
    ttl: int | None = None
    for word in fields[pos : pos + 2]:
        if word[:1].isdigit():
            ttl = _ttl(word)
        elif not is_class(word):
            break
        pos += 1
    return ttl, pos


def parse(
    text: str | Iterable[str], path: str, zone_origin: dns.name.Name, require_ns: bool = True,
    refuse_cname_clash: bool = True,
) -> tuple[list[WireRRset], list[str]]:
    """Parse a master file (its text, or its lines as `fastparse.logical_lines` takes them)
    into wire RRsets (in order of first appearance); returns (rrsets, warnings).
    `refuse_cname_clash` False leaves CNAME-and-other-data to the verifier's finding."""
    part = parse_part(text, path, zone_origin, refuse_cname_clash)
    check_apex(part.has_soa, not require_ns or part.has_ns, zone_origin, path)
    return part.rrsets, load_warnings(path, part.ignored, part.mixed)


class Part(NamedTuple):
    """What a stretch of a master file holds: its RRsets (in order of first appearance), the
    out-of-zone records it skipped, whether the apex SOA and NS are among them, and the
    records whose TTL differs from their RRset's (`fastparse.load_warnings`)."""

    rrsets: list[WireRRset]
    ignored: list[str]
    has_soa: bool
    has_ns: bool
    mixed: list[str]


def parse_part(
    text: str | Iterable[str], path: str, zone_origin: dns.name.Name, refuse_cname_clash: bool = True,
    state: _State | None = None, first: int = 1,
) -> Part:
    """`parse` of a master file or a stretch of one that starts at a record with its owner
    written out (line `first`, in the $ORIGIN and $TTL of `state`), without the apex checks."""
    state = state if state is not None else _State(_Origin(zone_origin))
    zkey = key_of(zone_origin)
    zlen = len(zkey)
    sets: dict[tuple[Key, int], list] = {}  # (key, type) → see _add  # type: ignore[type-arg]
    ignored: list[str] = []
    mixed: list[str] = []
    cnames = CnameCheck(path, refuse_cname_clash)
    for lineno, line in logical_lines(text, path, first):
        try:
            if line[0] == "$":
                state.directive(line)
                continue
            fields = line.split(None, 4)
            if line[0] not in " \t":
                owner = state.owner_named(fields[0])
                pos = 1
            else:
                owner = state.last_owner()
                pos = 0
            ttl, pos = _header(fields, pos)
            rdtype = _type(fields[pos])
            rest = fields if pos == 3 else line.split(None, pos + 1)  # (owner, TTL, class given)
            wire = _checked_wire(rdtype, rest[pos + 1] if len(rest) > pos + 1 else "", state.origin)
            ttl = state.ttl_for(ttl, rdtype, wire)
        except (ValueError, IndexError, dns.exception.DNSException) as exc:
            raise bad_record(exc, path, lineno, line) from None
        if owner[0][:zlen] == zkey:
            # RRSIGs are kept per covered type, each with its own TTL, as dnspython's
            # rdatasets (the server answers with them): the covered type rides above bit 16.
            t = rdtype | (wire[0] << 24 | wire[1] << 16) if rdtype == _RRSIG else rdtype
            before = _add(sets, owner, t, ttl, wire)
            if before is None:
                cnames.new_rrset(owner[0], owner[1], t, lineno, line)
            elif before != ttl:
                mixed.append(mixed_ttl(lineno, owner[1], dns.rdatatype.to_text(rdtype), ttl, before))
        else:
            ignored.append(f"line {lineno} {owner[1]}")
    cnames.finish(sets)
    rrsets = [
        WireRRset(k, e[0], t & 0xFFFF, e[1], (e[2],) if isinstance(e[2], bytes) else tuple(sorted(e[2])))
        for (k, t), e in sets.items()
    ]
    return Part(rrsets, ignored, (zkey, _SOA) in sets, (zkey, _NS) in sets, mixed)
