"""The fast path: plain queries read straight from the wire (`plain_query`), answered from
the served set's response cache (`cache.ResponseCache`, kept without the ID and keyed by
the RD/CD bits too) with the ID and the question's letter case put in per query, so a hot name costs one dict lookup and a few
byte copies; misses are looked up and rendered by `wire.render_sections`. Anything unusual
goes to the dnspython message path (`message`). Only the question echoes the client's case
(nothing is compressed against a mixed-case question, so patching it is safe)."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.rcode
from dns.rdatatype import RdataType

from sigchain.core.serve.index import ZoneSet
from sigchain.core.serve.limits import response_limit
from sigchain.core.serve.lookup import lookup
from sigchain.core.serve.message import (
    META_FORMERR,
    META_NOTIMP,
    XFR,
    answer,
    error_response,
    formerr,
    render,
    size_limit,
)
from sigchain.core.serve.outcome import Sections
from sigchain.core.serve.wire import render_sections

# Only zone answers are memoised (REFUSED/FORMERR stay cheap and unbounded otherwise).
_MEMO_RCODES = frozenset({dns.rcode.NOERROR, dns.rcode.NXDOMAIN, dns.rcode.YXDOMAIN})


PlainQuery = tuple[bytes, int, bool, bool, int]  # (qname wire, qtype, DO, EDNS, EDNS size)


def plain_query(wire: bytes) -> PlainQuery | None:
    """The cache key parts of a plain QUERY — (qname wire, qtype, DO, EDNS, EDNS size) — read
    straight from the wire; None for anything else (other opcodes, TSIG-signed or IXFR
    queries, malformed wire: the caller then parses with dnspython). Accepts only: QR=0,
    opcode QUERY, one question of class IN, no answer/authority records, at most one
    additional record which is an EDNS version 0 OPT at the root."""
    n = len(wire)
    if n < 17 or wire[2] & 0xF8 or wire[4:10] != b"\x00\x01\x00\x00\x00\x00" or wire[10] or wire[11] > 1:
        return None
    i = 12
    while True:
        length = wire[i] if i < n else 0xFF
        if length > 63:
            return None  # a compression pointer or a bad label: let dnspython judge
        i += length + 1
        if length == 0:
            break
    if i - 12 > 255 or i + 4 > n:
        return None
    qwire = wire[12:i]
    qtype = (wire[i] << 8) | wire[i + 1]
    if wire[i + 2:i + 4] != b"\x00\x01":
        return None
    i += 4
    if wire[11] == 0:
        return (qwire, qtype, False, False, 0) if i == n else None
    # OPT: root owner, type 41, class = UDP size, TTL = ext-rcode, version, flags; rdata
    if i + 11 > n or wire[i] != 0 or wire[i + 1:i + 3] != b"\x00\x29" or wire[i + 6] != 0:
        return None
    payload = (wire[i + 3] << 8) | wire[i + 4]
    do = bool(wire[i + 7] & 0x80)
    rdlen = (wire[i + 9] << 8) | wire[i + 10]
    if wire[i + 5] or i + 11 + rdlen != n:
        return None
    j = i + 11  # the options (code, length, data): each must end within the RDATA, or the
    while j < n:  # full parser answers FORMERR (RFC 6891 §6.1.2), as named, Knot and NSD
        j += 4 + ((wire[j + 2] << 8) | wire[j + 3]) if j + 4 <= n else n + 1
    if j != n:
        return None
    return qwire, qtype, do, True, payload


def _with_case(body: bytes, qwire: bytes) -> bytes:
    """A cached response `body` (from its flags on, after the ID) with its question in the
    letter case of the query's `qwire` (see `message.to_wire`)."""
    out = bytearray(body)
    out[10:10 + len(qwire)] = qwire
    return bytes(out)


def respond(zones: ZoneSet, wire: bytes, *, tcp: bool = False) -> bytes | None:
    """Query wire → response wire (None: send nothing). Hot path: memoised rendered answers,
    found without building a dnspython message for plain queries."""
    return respond_plain(zones, wire, plain_query(wire), tcp=tcp)


def _answer_plain(zones: ZoneSet, qkey: bytes, qtype: int, do: bool, edns: bool,
                  mixed: bool) -> tuple[bytes, int] | None:
    """(response wire, rcode) for a plain query without dnspython messages; None when the
    query needs `answer` (meta types, transfers)."""
    if qtype in META_FORMERR or qtype in META_NOTIMP or qtype in XFR:
        return None
    zone = zones.find_key(qkey, qtype)
    if zone is None:
        s = Sections(rcode=dns.rcode.REFUSED, aa=False)
    else:
        s = lookup(zone, qkey, qtype, do)
    return render_sections(zone, qkey, qtype, s, question_target=not mixed, edns=edns, do=do,
                           udp_size=zones.udp_size), s.rcode


def respond_plain(
    zones: ZoneSet, wire: bytes, fast: PlainQuery | None, *, tcp: bool = False
) -> bytes | None:
    """`respond` for a caller that has already run `plain_query` on `wire`."""
    if fast is not None and not (fast[1] == RdataType.ANY and not tcp):
        qwire, qtype, do, edns, payload = fast
        lowered = qwire.lower()
        mixed = lowered != qwire
        rdcd = (wire[2] & 0x01) << 8 | wire[3] & 0x10  # the query bits the response echoes
        key = (lowered, qtype, do, edns, mixed, rdcd)
        cache = zones.cache
        hit = cache.get(key)
        if hit is None:
            made = _answer_plain(zones, lowered, qtype, do, edns, mixed)
            if made is not None:
                full, rcode = made
                hit = (bytes((full[2] | wire[2] & 0x01, full[3] | wire[3] & 0x10)) + full[4:],
                       rcode)
                if rcode in _MEMO_RCODES:
                    cache.put(key, hit)
        if hit is not None and len(hit[0]) + 2 <= response_limit(
                zones.udp_size, tcp, edns, payload):
            body = _with_case(hit[0], qwire) if mixed else hit[0]
            if not tcp and hit[1] in _MEMO_RCODES:
                cache.put_exact(wire[2:], body, shared=not mixed)
            return wire[:2] + body
    try:
        query = dns.message.from_wire(wire)
    except dns.message.UnknownTSIGKey:
        query = dns.message.from_wire(wire, question_only=True)
        if query.flags & dns.flags.QR:
            return None
        notauth = error_response(query, dns.rcode.NOTAUTH, zones.udp_size)
        return render(notauth, size_limit(zones, query, tcp))
    except Exception:  # any parse failure is the client's: FORMERR and keep serving
        return formerr(wire)
    if query.flags & dns.flags.QR:
        return None
    limit = size_limit(zones, query, tcp)
    return render(answer(zones, query, tcp=tcp), limit)
