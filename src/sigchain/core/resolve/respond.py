"""A resolver's side of the client exchange (pure): the client's query read once, and the
response to it rendered from a cached `Answer` per RFC 4035 §3.2 and RFC 6840 §5: AD only on
secure data and only when the client set DO or AD, RRSIGs and proofs only with DO, CD ⇒ the
data even when bogus, SERVFAIL with RFC 8914 EDEs saying why otherwise; truncated to fit."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rrset
from dns.rdatatype import RdataType

from sigchain.core.resolve.cache import Answer
from sigchain.core.resolve.ede import Ede
from sigchain.core.validate.verdict import Status

EDNS_PAYLOAD = 1232  # advertised, and the largest UDP response sent (DNS flag day 2020)
PLAIN_UDP = 512  # a client without EDNS (RFC 1035 §4.2.1)
_DNSSEC_TYPES = (RdataType.RRSIG, RdataType.NSEC, RdataType.NSEC3)
_TRANSFERS = (RdataType.AXFR, RdataType.IXFR)


@dataclass(frozen=True)
class ClientQuery:
    message: dns.message.Message
    qname: dns.name.Name
    qtype: int
    tcp: bool

    @property
    def do(self) -> bool:
        return bool(self.message.ednsflags & dns.flags.DO) if self.message.edns >= 0 else False

    @property
    def cd(self) -> bool:
        return bool(self.message.flags & dns.flags.CD)

    @property
    def ad(self) -> bool:
        return bool(self.message.flags & dns.flags.AD)

    @property
    def rd(self) -> bool:
        return bool(self.message.flags & dns.flags.RD)

    @property
    def limit(self) -> int:
        """The largest response the client takes over this transport."""
        if self.tcp:
            return 65535
        if self.message.edns < 0:
            return PLAIN_UDP
        return max(PLAIN_UDP, min(self.message.payload, EDNS_PAYLOAD))

    def render_key(self) -> tuple[bool, bool, bool, bool, bool]:
        """What the response depends on besides the answer and the ID."""
        return (self.do, self.cd, self.ad, self.rd, self.message.edns >= 0)


class Unanswerable(Exception):
    """The query gets an error response at once (`wire`), without resolution."""

    def __init__(self, wire: bytes | None):
        super().__init__("unanswerable query")
        self.wire = wire


def read_query(wire: bytes, tcp: bool) -> ClientQuery:
    """The client's query; Unanswerable with FORMERR/NOTIMP/REFUSED (or nothing, for junk that
    is not even a query) when it is not one a resolver answers."""
    try:
        m = dns.message.from_wire(wire)
    except dns.message.BadEDNS as exc:  # unknown EDNS version: BADVERS (RFC 6891 §6.1.3)
        raise Unanswerable(None) from exc
    except (dns.exception.DNSException, ValueError, EOFError):
        raise Unanswerable(_formerr(wire)) from None
    if m.flags & dns.flags.QR:
        raise Unanswerable(None)  # never answer a response (reflection loops)
    if m.opcode() != dns.opcode.QUERY:
        raise Unanswerable(error(m, dns.rcode.NOTIMP))
    if len(m.question) != 1:
        raise Unanswerable(error(m, dns.rcode.FORMERR))
    q = m.question[0]
    if q.rdclass != dns.rdataclass.IN or q.rdtype in _TRANSFERS:
        raise Unanswerable(error(m, dns.rcode.REFUSED))
    return ClientQuery(m, q.name, q.rdtype, tcp)


def _formerr(wire: bytes) -> bytes | None:
    """FORMERR echoing the ID of a message too broken to parse (if it has a header)."""
    if len(wire) < 12 or wire[2] & 0x80:
        return None
    return wire[:2] + bytes([0x80 | (wire[2] & 0x79), dns.rcode.FORMERR, 0, 0, 0, 0, 0, 0, 0, 0])


def _response(query: dns.message.Message, rcode: int, ede: Iterable[Ede] = ()) -> dns.message.Message:
    r = dns.message.make_response(query, our_payload=EDNS_PAYLOAD)
    r.flags |= dns.flags.RA | (query.flags & dns.flags.CD)
    r.set_rcode(rcode)
    if query.edns >= 0:
        r.use_edns(0, query.ednsflags & dns.flags.DO, EDNS_PAYLOAD,
                   options=[dns.edns.EDEOption(code, text) for code, text in ede])
    return r


def error(query: dns.message.Message, rcode: int, ede: Iterable[Ede] = ()) -> bytes:
    return _response(query, rcode, ede).to_wire()


def _shown(rrsets: Sequence[dns.rrset.RRset], do: bool, qtype: int, age: int,
           keep_dnssec_answer: bool) -> list[dns.rrset.RRset]:
    out = []
    for r in rrsets:
        rdtype = r.covers if r.rdtype == RdataType.RRSIG else r.rdtype
        if not do and (r.rdtype == RdataType.RRSIG or rdtype in _DNSSEC_TYPES) \
                and not (keep_dnssec_answer and r.rdtype == qtype):
            continue
        if age:
            copy = r.copy()  # the rdata as they are: no re-hashing
            copy.ttl = max(0, r.ttl - age)
            r = copy
        out.append(r)
    return out


def render(query: ClientQuery, entry: Answer, now: int, extra: Sequence[Ede] = ()) -> bytes:
    """The response to `query` from `entry` at `now` (TTLs counted down), fitted to the
    client's size limit (TC set, records dropped, when it does not fit over UDP)."""
    bogus = entry.status is Status.BOGUS
    ede = (*entry.ede, *extra)
    if entry.status is None or (bogus and not query.cd):
        return _fit(_response(query.message, dns.rcode.SERVFAIL, ede), query)
    r = _response(query.message, entry.rcode, ede)
    age = entry.age(now)
    r.answer = _shown(entry.answer, query.do, query.qtype, age, True)
    r.authority = _shown(entry.authority, query.do, query.qtype, age, False)
    if entry.status is Status.SECURE and (query.do or query.ad):
        r.flags |= dns.flags.AD
    return _fit(r, query)


def _fit(r: dns.message.Message, query: ClientQuery) -> bytes:
    try:
        return r.to_wire(max_size=query.limit)
    except dns.exception.TooBig:
        r.answer, r.authority, r.additional = [], [], []
        r.flags |= dns.flags.TC
        return r.to_wire()
