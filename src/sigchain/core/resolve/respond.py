"""A resolver's side of the client exchange (pure): the client's query read once, and the
response to it rendered from a cached `Answer` per RFC 4035 §3.2 and RFC 6840 §5: AD only on
secure data and only when the client set DO or AD, RRSIGs and proofs only with DO, CD ⇒ the
data even when bogus, SERVFAIL with RFC 8914 EDEs saying why otherwise; truncated to fit."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdtypes.ANY.TXT
import dns.rrset
from dns.rdatatype import RdataType

from sigchain.core.resolve.answerwire import AD, CD, QR, RA, opt, render_wire, shown
from sigchain.core.resolve.cache import Answer
from sigchain.core.resolve.ede import Ede
from sigchain.core.resolve.fastpath import EDNS_PAYLOAD, PLAIN_UDP, plain_question
from sigchain.core.resolve.replywire import name_of, read_name
from sigchain.core.validate.verdict import Status

_TRANSFERS = (RdataType.AXFR, RdataType.IXFR)
# Resolved: IN, and class ANY as IN (the only class there is data of; as Unbound), the
# question echoed as asked.
_CLASSES = (dns.rdataclass.IN, dns.rdataclass.ANY)


def meta_type(qtype: int) -> bool:
    """A type no question may ask for (RFC 6895 §3.1: OPT, TKEY, TSIG, MAILA, MAILB and the
    range 128-248 kept for meta-types): FORMERR, never asked upstream (as Unbound)."""
    return 128 <= qtype <= 254 and qtype not in _TRANSFERS or qtype == RdataType.OPT


@dataclass(frozen=True)
class ClientQuery:
    """A client's query as the resolver needs it: read from the wire for a plain query (see
    `read_query`), its dnspython `message` made only when asked for (error responses)."""

    wire: bytes
    qname: dns.name.Name
    qtype: int
    tcp: bool
    question: bytes  # the question section as sent (name, type, class)
    edns: bool = False
    ednsflags: int = 0
    payload: int = 0

    @cached_property
    def message(self) -> dns.message.Message:
        return dns.message.from_wire(self.wire)

    @property
    def do(self) -> bool:
        return self.edns and bool(self.ednsflags & 0x8000)  # DO (plain ints: enum "&" is slow)

    @property
    def cd(self) -> bool:
        return bool(self.wire[3] & CD)

    @property
    def ad(self) -> bool:
        return bool(self.wire[3] & AD)

    @property
    def rd(self) -> bool:
        return bool(self.wire[2] & 0x01)

    @property
    def limit(self) -> int:
        """The largest response the client takes over this transport."""
        if self.tcp:
            return 65535
        if not self.edns:
            return PLAIN_UDP
        return max(PLAIN_UDP, min(self.payload, EDNS_PAYLOAD))

    def render_key(self) -> tuple[bool, bool, bool, bool, bool]:
        """What the response depends on besides the answer, the ID, the question as asked
        (its case, its class: patched in, `with_question`) and the size limit (only an
        untruncated response is shared)."""
        return (self.do, self.cd, self.ad, self.rd, self.edns)

    def with_question(self, wire: bytes) -> bytes:
        """`wire`, rendered for a question that differs from this one in case or class
        only, with this one's question (same length, at offset 12; the names compressed
        against it point to it)."""
        end = 12 + len(self.question)
        return wire if wire[12:end] == self.question else wire[:12] + self.question + wire[end:]


class Unanswerable(Exception):
    """The query gets an error response at once (`wire`), without resolution; `rcode` is
    the response's whole RCODE (BADVERS's is above what the header holds). `chaos`: a CH
    TXT question about the server itself (the query, and "identity" or "version"), which
    the resolver answers instead when it tells (`chaos_reply`)."""

    def __init__(self, wire: bytes | None, rcode: int | None = None,
                 chaos: tuple[dns.message.Message, str] | None = None):
        super().__init__("unanswerable query")
        self.wire = wire
        self.rcode = rcode if rcode is not None or wire is None else wire[3] & 0xF
        self.chaos = chaos


# What a CH TXT question may ask of the server itself (BIND's and Unbound's names).
CHAOS_NAMES = {dns.name.from_text(n): about for n, about in (
    ("id.server.", "identity"), ("hostname.bind.", "identity"),
    ("version.server.", "version"), ("version.bind.", "version"))}


def read_query(wire: bytes, tcp: bool) -> ClientQuery:
    """The client's query; Unanswerable with FORMERR/NOTIMP/REFUSED/BADVERS (or nothing, for
    junk that is not even a query) when it is not one a resolver answers. A plain query (one question,
    at most an OPT record without options) is read from the wire, the rest by dnspython."""
    plain = plain_question(wire)
    if plain is not None and (plain[1] is None or wire[-2:] == b"\0\0"):  # no EDNS options
        question_end, opt_at = plain
        qtype, qclass = struct.unpack_from("!HH", wire, question_end - 4)
        if qclass in _CLASSES and qtype not in _TRANSFERS and not meta_type(qtype):
            labels, _ = read_name(wire, 12, question_end)
            try:
                qname = name_of(labels)
            except dns.exception.DNSException:
                qname = None
            if qname is not None:
                if opt_at is None:
                    return ClientQuery(wire, qname, qtype, tcp, wire[12:question_end])
                payload, _, _, flags = struct.unpack_from("!HBBH", wire, opt_at + 3)
                return ClientQuery(wire, qname, qtype, tcp, wire[12:question_end], True, flags, payload)
    try:
        m = dns.message.from_wire(wire)
    except (dns.exception.DNSException, ValueError, EOFError):  # and an OPT record misplaced
        # (or twice: RFC 6891 §6.1.1); an opcode not implemented is said first, as Unbound
        # does: a DSO message (RFC 8490) or an UPDATE is no malformed query
        opcode = (wire[2] >> 3) & 0xF if len(wire) > 2 else dns.opcode.QUERY
        rcode = dns.rcode.FORMERR if opcode in (dns.opcode.QUERY, dns.opcode.NOTIFY) else dns.rcode.NOTIMP
        raise Unanswerable(bare(wire, rcode)) from None
    if m.flags & dns.flags.QR:
        raise Unanswerable(None)  # never answer a response (reflection loops)
    if m.edns > 0:  # RFC 6891 §6.1.3: a version we do not implement (as BIND and Unbound)
        raise Unanswerable(error(m, dns.rcode.BADVERS), dns.rcode.BADVERS)
    if m.opcode() == dns.opcode.NOTIFY:  # for no zone of ours (as Unbound)
        raise Unanswerable(error(m, dns.rcode.REFUSED))
    if m.opcode() != dns.opcode.QUERY:
        raise Unanswerable(error(m, dns.rcode.NOTIMP))
    if len(m.question) != 1 or m.flags & dns.flags.TC:  # a query is never truncated (Unbound)
        raise Unanswerable(error(m, dns.rcode.FORMERR))
    q = m.question[0]
    if meta_type(q.rdtype):
        raise Unanswerable(error(m, dns.rcode.FORMERR))
    if q.rdclass not in _CLASSES or q.rdtype in _TRANSFERS:
        about = CHAOS_NAMES.get(q.name) if q.rdclass == dns.rdataclass.CH and q.rdtype in (
            RdataType.TXT, RdataType.ANY) else None
        raise Unanswerable(error(m, dns.rcode.REFUSED), chaos=(m, about) if about else None)
    question = q.name.to_wire() + struct.pack("!HH", q.rdtype, q.rdclass)
    return ClientQuery(wire, q.name, q.rdtype, tcp, question, m.edns >= 0, m.ednsflags, m.payload)


def bare(wire: bytes, rcode: int) -> bytes | None:
    """A header-only response with `rcode` to a message that may not parse: its ID, opcode,
    RD and CD echoed, RA set (as every answer of a resolver, and as Unbound's error replies);
    None when it has no whole header or is itself a response (never answered)."""
    if len(wire) < 12 or wire[2] & 0x80:
        return None
    return wire[:2] + bytes([0x80 | (wire[2] & 0x79), 0x80 | (wire[3] & 0x10) | rcode,
                             0, 0, 0, 0, 0, 0, 0, 0])


def refusal(wire: bytes, ede: Iterable[Ede]) -> bytes | None:
    """REFUSED with `ede` for any query a client may not ask, whatever else is wrong with it:
    with its question and, when it has EDNS, an OPT record (RFC 6891 §6.1.1) carrying the
    EDE; a bare header when it does not parse; nothing for a response."""
    try:
        m = dns.message.from_wire(wire)
        if m.flags & dns.flags.QR:
            return None
        return error(m, dns.rcode.REFUSED, ede)
    except Exception:  # noqa: BLE001 (unreadable, or one dnspython cannot answer: TSIG…)
        return bare(wire, dns.rcode.REFUSED)


def _response(query: dns.message.Message, rcode: int, ede: Iterable[Ede] = ()) -> dns.message.Message:
    r = dns.message.make_response(query, our_payload=EDNS_PAYLOAD)
    r.flags |= dns.flags.RA | (query.flags & dns.flags.CD)
    if query.edns >= 0:
        r.use_edns(0, query.ednsflags & dns.flags.DO, EDNS_PAYLOAD,
                   options=[dns.edns.EDEOption(code, text) for code, text in ede])
    r.set_rcode(rcode)  # after the OPT record is made: an extended RCODE's upper bits go there
    return r


def error(query: dns.message.Message, rcode: int, ede: Iterable[Ede] = ()) -> bytes:
    return _response(query, rcode, ede).to_wire()


def chaos_reply(query: dns.message.Message, text: str) -> bytes:
    """The answer to a CH TXT question about the server (`CHAOS_NAMES`): one TXT record of
    `text` (at most 255 octets), TTL 0, not authoritative (as Unbound's)."""
    r = _response(query, dns.rcode.NOERROR)
    rrset = dns.rrset.RRset(query.question[0].name, dns.rdataclass.CH, RdataType.TXT)
    rrset.add(dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.CH, RdataType.TXT, [text.encode()]), 0)
    r.answer.append(rrset)
    return r.to_wire()


def render(query: ClientQuery, entry: Answer, now: int, extra: Sequence[Ede] = ()) -> bytes:
    """The response to `query` from `entry` at `now` (TTLs counted down), fitted to the
    client's size limit (TC set, records dropped, when it does not fit over UDP)."""
    bogus = entry.status is Status.BOGUS
    ede = (*entry.ede, *extra)
    opt_record = opt(query.do, EDNS_PAYLOAD, ede) if query.edns else None
    flags = QR | RA | (query.wire[2] & 0x01) << 8 | (query.wire[3] & CD)
    if entry.status is None or (bogus and not query.cd):
        flags |= dns.rcode.SERVFAIL
        sections: tuple[list[dns.rrset.RRset], ...] = ([], [])
    else:
        if entry.rcode > 0xF:
            return _render_message(query, entry, now, ede)
        flags |= entry.rcode
        if entry.status is Status.SECURE and (query.do or query.ad):
            flags |= AD
        sections = ([r for r in entry.answer if shown(r, query.do, query.qtype, True)],
                    [r for r in entry.authority if shown(r, query.do, query.qtype, False)])
    wire = render_wire(query.wire[:2], flags, query.question, sections, entry.age(now), opt_record)
    if len(wire) <= query.limit:
        return wire
    # too big: truncated as dnspython's renderer decides it (it compresses names in rdata)
    return _render_message(query, entry, now, ede)


def _shown(rrsets: Sequence[dns.rrset.RRset], do: bool, qtype: int, age: int,
           keep_dnssec_answer: bool) -> list[dns.rrset.RRset]:
    out = []
    for r in rrsets:
        if not shown(r, do, qtype, keep_dnssec_answer):
            continue
        if age:
            copy = r.copy()  # the rdata as they are: no re-hashing
            copy.ttl = max(0, r.ttl - age)
            r = copy
        out.append(r)
    return out


def _render_message(query: ClientQuery, entry: Answer, now: int, ede: Sequence[Ede]) -> bytes:
    """`render` through a dnspython message (responses that do not fit, extended rcodes)."""
    bogus = entry.status is Status.BOGUS
    if entry.status is None or (bogus and not query.cd):
        return _fit(lambda e: _response(query.message, dns.rcode.SERVFAIL, e), query, ede)
    age = entry.age(now)

    def make(e: Sequence[Ede]) -> dns.message.Message:
        r = _response(query.message, entry.rcode, e)
        r.answer = _shown(entry.answer, query.do, query.qtype, age, True)
        r.authority = _shown(entry.authority, query.do, query.qtype, age, False)
        if entry.status is Status.SECURE and (query.do or query.ad):
            r.flags |= dns.flags.AD
        return r
    return _fit(make, query, ede)


def _fit(make: Callable[[Sequence[Ede]], dns.message.Message], query: ClientQuery,
         ede: Sequence[Ede]) -> bytes:
    """The response within the client's size limit: whole with its EDEs, else with their
    codes only, else without them (RFC 8914 §3: EXTRA-TEXT should not cause truncation);
    only then truncated (TC, no records), with what of the EDEs still fits."""
    tries = (tuple(ede), tuple((code, "") for code, _ in ede), ()) if ede else ((),)
    for records in (True, False):
        for e in tries:
            r = make(e)
            if not records:
                r.answer, r.authority, r.additional = [], [], []
                r.flags |= dns.flags.TC
            try:
                return r.to_wire(max_size=query.limit)
            except (dns.exception.TooBig, ValueError):  # ValueError: the OPT record alone
                continue
    raise AssertionError("a header, a question and an empty OPT record exceed 512 octets")
