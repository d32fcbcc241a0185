"""The shape of a plain query (pure): a standard query with one question and at most an EDNS
OPT record, told straight from the wire — no dnspython objects. The resolver reads such a query
without dnspython, and keeps its rendered response for the same bytes asked again."""

from __future__ import annotations

import struct

EDNS_PAYLOAD = 1232  # advertised, and the largest UDP response sent (DNS flag day 2020)
PLAIN_UDP = 512  # a client without EDNS (RFC 1035 §4.2.1)

_COUNTS = struct.Struct("!HHHH")
_OPT = struct.Struct("!BHHBBHH")  # root owner, TYPE 41, payload, ext-rcode, version, flags, rdlen


def plain_question(wire: bytes) -> tuple[int, int | None] | None:
    """For a standard query with one uncompressed question and at most an EDNS version 0 OPT
    record: (where the question ends, where the OPT record starts or None);
    None for anything else (the full parser handles it)."""
    if len(wire) < 17 or wire[2] & 0xFA:  # QR or TC set, or an opcode other than QUERY
        return None
    qd, an, ns, ar = _COUNTS.unpack_from(wire, 4)
    if qd != 1 or an or ns or ar > 1:
        return None
    pos = 12
    end = len(wire)
    while True:
        if pos >= end:
            return None
        n = wire[pos]
        if n == 0:
            break
        if n & 0xC0 or pos - 12 > 255:
            return None
        pos += n + 1
    question_end = pos + 5
    if question_end > end:
        return None
    if not ar:
        return (question_end, None) if question_end == end else None
    if question_end + 11 > end:
        return None
    owner, rdtype, _, _, version, _, rdlen = _OPT.unpack_from(wire, question_end)
    if owner != 0 or rdtype != 41 or version != 0 or question_end + 11 + rdlen != end:
        return None
    return question_end, question_end
