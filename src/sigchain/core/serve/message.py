"""The dnspython message path (the slow path): responses to queries the fast path does not
take — meta types, ANY over UDP (TC), unparsable queries (FORMERR), error responses — built
as dnspython messages and rendered with BIND's exact-case name compression."""

from __future__ import annotations

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.renderer
import dns.rrset
from dns.rdatatype import RdataType

from sigchain.core.serve.index import ZoneSet, key_name
from sigchain.core.serve.limits import TCP_MAX, response_limit
from sigchain.core.serve.lookup import lookup
from sigchain.core.serve.outcome import Item

META_FORMERR = frozenset({RdataType.OPT, RdataType.TSIG, RdataType.TKEY})
META_NOTIMP = frozenset({RdataType.MAILA, RdataType.MAILB})
XFR = frozenset({RdataType.AXFR, RdataType.IXFR})


def _renamed(rrset: dns.rrset.RRset, owner: dns.name.Name) -> dns.rrset.RRset:
    """A copy of `rrset` with another owner (wildcard synthesis, RFC 4592 §4.3.3)."""
    out = dns.rrset.RRset(owner, rrset.rdclass, rrset.rdtype, rrset.covers)
    out.update(rrset)
    return out


def rrsets(items: list[Item]) -> list[dns.rrset.RRset]:
    """A section's items as dnspython RRsets (synthesised owners applied)."""
    return [rrset if owner is None else _renamed(rrset, key_name(owner)) for owner, rrset in items]


def error_response(query: dns.message.Message, rcode: int, udp_size: int) -> dns.message.Message:
    """A response with no data: FORMERR, NOTIMP, REFUSED, BADVERS (question echoed)."""
    response = dns.message.Message(id=query.id)
    response.flags = dns.flags.QR | (query.flags & (dns.flags.RD | dns.flags.CD))
    response.set_opcode(query.opcode())
    response.question = list(query.question)
    if query.edns >= 0:
        response.use_edns(0, query.ednsflags & dns.flags.DO, udp_size)
    response.set_rcode(rcode)  # type: ignore[arg-type]
    return response


def answer(zones: ZoneSet, query: dns.message.Message, *, tcp: bool = False) -> dns.message.Message:
    """The full response to a parsed query (no size limit applied: see `render`)."""
    if query.opcode() != dns.opcode.QUERY:
        return error_response(query, dns.rcode.NOTIMP, zones.udp_size)
    if len(query.question) != 1:
        return error_response(query, dns.rcode.FORMERR, zones.udp_size)
    if query.edns > 0:
        return error_response(query, dns.rcode.BADVERS, zones.udp_size)  # RFC 6891 §6.1.3
    q = query.question[0]
    if q.rdtype in META_FORMERR or (q.rdtype in XFR and not tcp):
        return error_response(query, dns.rcode.FORMERR, zones.udp_size)
    if q.rdtype in META_NOTIMP:
        return error_response(query, dns.rcode.NOTIMP, zones.udp_size)
    zone = zones.find(q.name, q.rdtype) if q.rdclass == dns.rdataclass.IN else None
    if zone is None or q.rdtype in XFR:  # transfers: services/xfrout.py, with ACLs and TSIG
        return error_response(query, dns.rcode.REFUSED, zones.udp_size)
    do = query.edns >= 0 and bool(query.ednsflags & dns.flags.DO)
    # Look up (and synthesise wildcards) in the zone's case; only the question echoes the client's.
    s = lookup(zone, q.name, q.rdtype, do)
    response = dns.message.Message(id=query.id)
    response.flags = dns.flags.QR | (query.flags & (dns.flags.RD | dns.flags.CD))
    if s.aa:
        response.flags |= dns.flags.AA
    response.question = [q]
    response.answer = rrsets(s.answer)
    response.authority = rrsets(s.authority)
    response.additional = rrsets(s.additional)
    if query.edns >= 0:
        response.use_edns(0, dns.flags.DO if do else 0, zones.udp_size)
    response.set_rcode(s.rcode)  # type: ignore[arg-type]
    if q.rdtype == RdataType.ANY and not tcp:
        # Amplification defence, as BIND for clients without a server cookie (and in the
        # spirit of RFC 8482): ANY is answered over TCP only.
        return truncated(response)
    return response


def size_limit(zones: ZoneSet, query: dns.message.Message, tcp: bool) -> int:
    """Largest response allowed to `query` (`limits.response_limit`)."""
    return response_limit(zones.udp_size, tcp, query.edns >= 0, query.payload)


def truncated(response: dns.message.Message) -> dns.message.Message:
    """The TC=1 form of a response that does not fit: header, question, OPT (RFC 2181 §9)."""
    out = dns.message.Message(id=response.id)
    out.flags = response.flags | dns.flags.TC
    out.question = list(response.question)
    if response.edns >= 0:
        out.use_edns(0, response.ednsflags & 0xFFFF, response.payload)
    out.set_rcode(response.rcode())
    return out


class _ExactCaseCompression(dict):  # type: ignore[type-arg]
    """A compression table that matches names byte for byte, as BIND's does: names from the
    zone keep the zone's letter case instead of borrowing the client's (RFC 1035 §4.1.4)."""

    def get(self, key: dns.name.Name, default: object = None) -> object:  # type: ignore[override]
        return super().get(key.labels, default)

    def __setitem__(self, key: dns.name.Name, value: int) -> None:
        super().__setitem__(key.labels, value)


def _lowercase(name: dns.name.Name) -> bool:
    return all(label == label.lower() for label in name.labels)


def to_wire(
    message: dns.message.Message, max_size: int = TCP_MAX, question_target: bool | None = None
) -> bytes:
    """Render a response; raises dns.exception.TooBig past `max_size`.

    Names compress only against byte-identical names, as in BIND, so answers keep the zone's
    letter case. The question is a compression target only when it is all lower case
    (`question_target` None) — then the question and zone names agree byte for byte — and
    never for a mixed-case question, so that question can carry the client's letter case
    (patched in by `fastpath.respond`) without changing any other name."""
    r = dns.renderer.Renderer(message.id, message.flags, max_size)
    r.compress = _ExactCaseCompression()
    for q in message.question:
        r.add_question(q.name, q.rdtype, q.rdclass)
        if question_target is None:
            question_target = _lowercase(q.name)
    if not question_target:
        r.compress.clear()
    for section, rrsets in (
        (dns.renderer.ANSWER, message.answer),
        (dns.renderer.AUTHORITY, message.authority),
        (dns.renderer.ADDITIONAL, message.additional),
    ):
        for rrset in rrsets:
            r.add_rrset(section, rrset, want_shuffle=False)  # deterministic: memo == fresh
    if message.edns >= 0:
        r.add_edns(message.edns, message.ednsflags, message.payload, message.options)
    r.write_header()
    return r.get_wire()


def render(response: dns.message.Message, limit: int, question_target: bool | None = None) -> bytes:
    """Wire form within `limit` bytes: whole; else without the RRSIGs of the additional
    section (RFC 4035 §3.1.1: they may be dropped, and TC is not set for them alone); else
    truncated with TC set."""
    for candidate in fitting(response):
        try:
            return to_wire(candidate, limit, question_target)
        except dns.exception.TooBig:
            continue
    return to_wire(truncated(response), limit, question_target)


def fitting(response: dns.message.Message) -> list[dns.message.Message]:
    """`response`, then (if it has any) the same without the additional section's RRSIGs:
    the forms to try, in order, before `truncated` (RFC 4035 §3.1.1)."""
    if not any(r.rdtype == RdataType.RRSIG for r in response.additional):
        return [response]
    lean = dns.message.Message(id=response.id)
    lean.flags = response.flags
    lean.question, lean.answer, lean.authority = (
        list(response.question), list(response.answer), list(response.authority))
    lean.additional = [r for r in response.additional if r.rdtype != RdataType.RRSIG]
    if response.edns >= 0:
        lean.use_edns(0, response.ednsflags & 0xFFFF, response.payload)
    lean.set_rcode(response.rcode())
    return [response, lean]


def formerr(wire: bytes) -> bytes | None:
    """FORMERR for a query dnspython cannot parse: the header's ID and opcode echoed
    (RFC 1035 §4.1.1); nothing at all for a short header or a response (QR set)."""
    if len(wire) < 12 or wire[2] & 0x80:
        return None
    flags2 = 0x80 | (wire[2] & 0x79)  # QR, opcode, RD
    return wire[:2] + bytes([flags2, dns.rcode.FORMERR]) + b"\x00" * 8
