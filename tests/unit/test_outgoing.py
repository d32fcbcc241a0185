"""The resolver's outgoing query without dnspython's Message: the same wire as
`Query.message`, and the same answer to "is this datagram the reply?"; and the reply's
flags text as the exchange log writes it."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from sigchain.core.resolve.exchange import Query, query_wire
from sigchain.core.validate.anchors import Server

SERVER = Server(dns.name.from_text("ns."), "127.0.0.1")


@pytest.mark.parametrize("rd,cd,payload", [(False, False, 1232), (True, True, 512), (True, False, 4096)])
def test_outgoing_wire_is_the_message_wire(rd: bool, cd: bool, payload: int) -> None:
    q = Query(dns.name.from_text("Www.Example.Test."), dns.rdatatype.DNSKEY, (SERVER,), rd=rd, cd=cd)
    out = q.outgoing(payload)
    m = q.message(payload)
    m.id = out.id
    assert out.to_wire() == query_wire(m) == m.to_wire()
    again = out.message()
    assert again.to_wire() == m.to_wire() and again.id == out.id


def _replies(m: dns.message.Message) -> list[dns.message.Message]:
    """Replies to `m`, good and bad, each as read from the wire."""
    out = []
    for change in ("same", "upper", "id", "qr", "opcode", "type", "class", "name", "two", "extra",
                   "empty-refused", "empty-noerror", "empty-servfail"):
        r = dns.message.make_response(m)
        if change == "upper":
            r.question = [dns.rrset.RRset(dns.name.from_text("WWW.EXAMPLE.TEST."), dns.rdataclass.IN,
                                          dns.rdatatype.A)]
        elif change == "id":
            r.id ^= 1
        elif change == "qr":
            r.flags &= ~dns.flags.QR
        elif change == "opcode":
            r.set_opcode(dns.opcode.NOTIFY)
        elif change == "type":
            r.question = [dns.rrset.RRset(m.question[0].name, dns.rdataclass.IN, dns.rdatatype.AAAA)]
        elif change == "class":
            r.question = [dns.rrset.RRset(m.question[0].name, dns.rdataclass.CH, dns.rdatatype.A)]
        elif change == "name":
            r.question = [dns.rrset.RRset(dns.name.from_text("www.example.test.org."),
                                          dns.rdataclass.IN, dns.rdatatype.A)]
        elif change == "two":
            r.question = [m.question[0], m.question[0]]
        elif change == "extra":
            r.question = [m.question[0], dns.rrset.RRset(dns.name.from_text("x."), dns.rdataclass.IN,
                                                         dns.rdatatype.A)]
        elif change.startswith("empty"):
            r.question = []
            r.set_rcode({"empty-refused": dns.rcode.REFUSED, "empty-noerror": dns.rcode.NOERROR,
                         "empty-servfail": dns.rcode.SERVFAIL}[change])
        out.append(dns.message.from_wire(r.to_wire()))
    return out


def test_outgoing_decides_replies_as_dnspython_does() -> None:
    q = Query(dns.name.from_text("www.example.test."), dns.rdatatype.A, (SERVER,))
    out = q.outgoing()
    m = out.message()
    verdicts = [(out.is_response(r), m.is_response(r)) for r in _replies(m)]
    assert all(ours == theirs for ours, theirs in verdicts), verdicts
    assert [v for v, _ in verdicts] == [True, True, False, False, False, False, False, False, True,
                                        False, True, False, True]


def test_reply_flags_text_is_dnspythons() -> None:
    """The trace log's flags text comes from a table made once per value, as dnspython writes it."""
    from sigchain.core.resolve.resolution import _flags

    for flags in (0, 0x8180, 0x8583, 0x8400, 0x8190 | 0x40, 0xFFFF, 0x0100):
        m = dns.message.Message()
        m.flags = flags
        assert _flags(m) == dns.flags.to_text(flags).lower()
        assert _flags(m) is _flags(m)


@pytest.mark.parametrize("edns", [None, 0])
def test_reply_rcode_is_dnspythons(edns: int | None) -> None:
    """`rcode_of` gives what `Message.rcode()` gives, extended RCODEs (EDNS) included, for
    each value however often it is asked."""
    from sigchain.core.resolve.exchange import rcode_of

    q = dns.message.make_query("a.test.", dns.rdatatype.A, use_edns=edns)
    values = range(16) if edns is None else (*range(24), 3841, 4095)
    for value in (*values, *values):
        r = dns.message.make_response(q)
        r.set_rcode(dns.rcode.Rcode.make(value))
        r.flags |= dns.flags.AA | dns.flags.CD
        assert rcode_of(r) == r.rcode() and type(rcode_of(r)) is type(r.rcode())


def test_a_datagram_is_from_the_server_by_address_and_port() -> None:
    """The source of a datagram is the server queried when its address (however spelled) and
    port are the server's."""
    from sigchain.edge.transport import _from_server

    v4, v6 = Server("127.0.0.1"), Server("::1")
    assert _from_server(("127.0.0.1", 53), v4)
    assert not _from_server(("127.0.0.1", 5353), v4)
    assert not _from_server(("127.0.0.2", 53), v4)
    assert _from_server(("::1", 53, 0, 0), v6) and _from_server(("0:0::1", 53, 0, 0), v6)
    assert not _from_server(("0:0::1", 54, 0, 0), v6) and not _from_server(("::2", 53, 0, 0), v6)
    assert not _from_server("127.0.0.1", v4) and not _from_server(("127.0.0.1",), v4)
