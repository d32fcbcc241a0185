"""What a resolution sends and gets back: the query to send, the reply, the log of each
exchange, the outcome (gathered evidence or a failure), and the bounds on the work."""

from __future__ import annotations

import struct
from dataclasses import dataclass

import dns.entropy
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from sigchain.core.validate.anchors import Server
from sigchain.core.validate.validator import Evidence

EDNS_PAYLOAD = 1232  # DNS flag day 2020: no fragmentation on common paths
SMALL_PAYLOAD = 512  # the fallback for a path that loses larger answers: TC, then TCP


@dataclass(frozen=True)
class ResolutionLimits:
    """Bounds on the work one trace may make the network do (the validator's caps are in
    core/dnssec/policy.ValidationLimits)."""

    max_queries: int = 200
    max_referrals: int = 30  # per lookup
    max_chain: int = 8  # CNAME/DNAME hops across zones
    max_depth: int = 3  # nested lookups of name server addresses
    max_ns_names: int = 4  # name servers without glue whose addresses are looked up


@dataclass(frozen=True)
class Query:
    """One query to send: try `servers` in order until one answers."""

    qname: dns.name.Name
    rdtype: int
    servers: tuple[Server, ...]
    rd: bool = False
    cd: bool = False
    zone: dns.name.Name | None = None  # whose servers these are (iterative mode)
    purpose: str = ""
    edns: bool = True  # False: plain DNS, for a server that said FORMERR to EDNS (RFC 6891 §7)

    def message(self, payload: int = EDNS_PAYLOAD) -> dns.message.Message:
        """The query on the wire: EDNS0 with DO=1 and a 1232-byte buffer (`payload`), or
        no OPT record at all when not `edns`."""
        return self.outgoing(payload).message()

    def outgoing(self, payload: int = EDNS_PAYLOAD) -> Outgoing:
        """The same query as `message`, without dnspython's Message (for the transport)."""
        return Outgoing(dns.entropy.random_16(), self.qname, self.rdtype,
                        (dns.flags.RD if self.rd else 0) | (dns.flags.CD if self.cd else 0),
                        payload if self.edns else 0)

    def __str__(self) -> str:
        return f"{self.qname} {dns.rdatatype.to_text(self.rdtype)}"


_HEADER = struct.Struct("!HHHHHH")
_OPT = struct.Struct("!BHHIH")  # root owner, TYPE 41, payload, TTL (ext. rcode, version, flags), rdlen


def query_wire(m: dns.message.Message) -> bytes:
    """`m.to_wire()` for a query as `Query.message` makes it (one question, nothing else but an
    OPT record without options), written directly; anything else is left to dnspython."""
    opt = m.opt
    if (len(m.question) != 1 or m.answer or m.authority or m.additional or m.tsig is not None
            or (opt is not None and opt[0].options)):  # type: ignore[attr-defined]
        return m.to_wire()
    q = m.question[0]
    qname = q.name.to_wire()
    assert qname is not None  # absolute
    head = _HEADER.pack(m.id, int(m.flags), 1, 0, 0, 0 if opt is None else 1)
    tail = b"" if opt is None else _OPT.pack(0, 41, opt.rdclass, opt.ttl, 0)
    return head + qname + struct.pack("!HH", q.rdtype, q.rdclass) + tail


_DO = 0x8000  # the OPT TTL of EDNS version 0 with DO set
_RCODES: dict[int, dns.rcode.Rcode] = {}  # at most 4096: the 12-bit values


def rcode_of(message: dns.message.Message) -> dns.rcode.Rcode:
    """`message.rcode()` (the header's 4 bits and the EDNS 8 above them), each value's Rcode
    made once: dnspython makes the enum member again on every call, and one resolution asks
    a dozen times."""
    value = (int(message.flags) & 0x000F) | ((message.ednsflags >> 20) & 0xFF0)
    rcode = _RCODES.get(value)
    if rcode is None:
        rcode = _RCODES[value] = dns.rcode.Rcode.make(value)
    return rcode

_QUESTION = struct.Struct("!HH")
_EMPTY_QUESTION_OK = frozenset((dns.rcode.FORMERR, dns.rcode.SERVFAIL, dns.rcode.NOTIMP, dns.rcode.REFUSED))


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A query as `Query.message` makes it (one question, IN, EDNS0 with DO=1 and `payload`,
    or plain DNS for payload 0) without dnspython's Message, whose making was most of the
    cost of sending one: its wire,
    and whether a reply answers it, as `Message.is_response` decides (RFC 5452 §9.1: QR,
    ID, opcode and question). `message()` makes the dnspython Message (for TCP)."""

    id: int
    qname: dns.name.Name
    rdtype: int
    flags: int  # RD and CD only: opcode QUERY
    payload: int  # 0: no OPT record (plain DNS)

    def to_wire(self) -> bytes:
        if not self.payload:
            return (_HEADER.pack(self.id, self.flags, 1, 0, 0, 0) + self.qname.to_wire()  # type: ignore[operator]
                    + _QUESTION.pack(self.rdtype, dns.rdataclass.IN))
        return (_HEADER.pack(self.id, self.flags, 1, 0, 0, 1) + self.qname.to_wire()  # type: ignore[operator]
                + _QUESTION.pack(self.rdtype, dns.rdataclass.IN) + _OPT.pack(0, 41, self.payload, _DO, 0))

    def is_response(self, reply: dns.message.Message) -> bool:
        if not reply.flags & dns.flags.QR or reply.id != self.id or reply.flags & 0x7800:
            return False  # not a response, another ID, or an opcode other than QUERY
        if not reply.question:
            return rcode_of(reply) in _EMPTY_QUESTION_OK
        origin = reply.origin
        for r in reply.question:
            name = r.name.derelativize(origin) if origin else r.name
            if (name != self.qname or r.rdclass != dns.rdataclass.IN or r.rdtype != self.rdtype
                    or r.covers != 0):
                return False
        return True

    def message(self) -> dns.message.Message:
        if not self.payload:
            m = dns.message.make_query(self.qname, self.rdtype, dns.rdataclass.IN, use_edns=False)
            m.id, m.flags = self.id, self.flags
            return m
        m = dns.message.make_query(self.qname, self.rdtype, dns.rdataclass.IN, use_edns=0,
                                   want_dnssec=True, payload=self.payload)
        m.id = self.id
        m.flags = self.flags
        return m


@dataclass(frozen=True)
class Reply:
    """What came back for a query, and from where."""

    server: Server
    message: dns.message.Message
    tcp: bool = False
    size: int = 0
    ignored: int = 0  # datagrams that came while waiting and were not this reply (RFC 5452)
    rtt: float | None = None  # seconds from sending to reading it (UDP)


@dataclass(frozen=True)
class Exchange:
    """A record of one query sent and its outcome, for the trace log."""

    query: Query
    server: Server | None
    rcode: str | None  # None: no server answered
    tcp: bool = False
    size: int = 0
    error: str = ""
    flags: str = ""
    ignored: int = 0

    def to_dict(self) -> dict[str, object]:
        return {
            "qname": self.query.qname.to_text(), "type": dns.rdatatype.to_text(self.query.rdtype),
            "purpose": self.query.purpose,
            "zone": self.query.zone.to_text() if self.query.zone is not None else None,
            "server": str(self.server) if self.server else None, "rcode": self.rcode,
            "flags": self.flags, "tcp": self.tcp, "size": self.size, "error": self.error,
            "ignored": self.ignored,
        }

    def __str__(self) -> str:
        where = f" ({self.query.zone})" if self.query.zone is not None else ""
        if self.rcode is None:
            return f"{self.query}{where} {self.query.purpose}: no answer: {self.error}"
        via = "TCP" if self.tcp else "UDP"
        n = self.ignored
        ignored = f", {n} non-matching {'reply' if n == 1 else 'replies'} ignored" if n else ""
        return (f"{self.query}{where} {self.query.purpose}: {self.rcode} [{self.flags}] from "
                f"{self.server} over {via}, {self.size} bytes{ignored}")


@dataclass(frozen=True)
class Gathered:
    """The resolution finished: the evidence for the validator, and how it was obtained."""

    evidence: Evidence
    exchanges: tuple[Exchange, ...]
    notes: tuple[str, ...] = ()  # link queries that failed (the validator judges the gap)
    recursive: bool | None = None  # server mode: whether the server offered recursion


@dataclass(frozen=True)
class Failed:
    """The question could not be answered. `unreachable`: no server answered at all."""

    reason: str
    unreachable: bool
    exchanges: tuple[Exchange, ...]
    rcode: int | None = None  # the error RCODE a server gave, when that is the reason
    ede: tuple[tuple[int, str], ...] = ()  # RFC 8914 codes and texts it attached


Outcome = Gathered | Failed
