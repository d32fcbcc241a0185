"""Client queries read from the wire and responses rendered to wire give what the dnspython
path gives: the same fields read, the same message (flags, sections, TTLs, EDNS and EDEs)."""

from __future__ import annotations

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rrset
import pytest

from sigchain.core.resolve.cache import Answer
from sigchain.core.resolve.respond import _render_message, read_query, render
from sigchain.core.validate.verdict import Status

NOW = 1_800_000_000


def rrset(text: str) -> dns.rrset.RRset:
    name, ttl, rdtype, *data = text.split(None, 3)
    return dns.rrset.from_text(name, int(ttl), "IN", rdtype, *data)


SIG = "13 3 300 20300101000000 20200101000000 1 Example. AAAA"
ANSWER = (rrset("www.Example. 300 CNAME b.example."), rrset(f"www.example. 300 RRSIG CNAME {SIG}"),
          rrset("b.example. 300 MX 10 mail.example."), rrset(f"b.example. 300 RRSIG MX {SIG}"))
DENIAL = (rrset("example. 60 SOA ns.example. host.example. 1 7200 3600 1209600 60"),
          rrset(f"example. 60 RRSIG SOA {SIG}"),
          rrset("0p9mhaveqvm6t7vbl5lop2u3t2rp3tom.example. 60 NSEC3 1 1 0 - 0P9MHAVEQVM6T7VBL5LOP2U3T2RP3TON A"),
          rrset(f"0p9mhaveqvm6t7vbl5lop2u3t2rp3tom.example. 60 RRSIG NSEC3 {SIG}"))
ENTRIES = [
    Answer(0, ANSWER, (), Status.SECURE, (), NOW, 300),
    Answer(3, (), DENIAL, Status.SECURE, (), NOW, 60),
    Answer(0, ANSWER[:1], DENIAL, Status.INSECURE, ((1, "alg 253"),), NOW, 60),
    Answer(0, ANSWER, (), Status.BOGUS, ((6, "DS for example. matches no DNSKEY"), (10, "é")), NOW, 5),
    Answer(2, (), (), None, ((22, "no reachable authority"),), NOW, 5),
]


def make(name: str = "WWW.example.", rdtype: str = "MX", do: bool = True, cd: bool = False,
         ad: bool = False, edns: bool = True, rd: bool = True) -> bytes:
    q = dns.message.make_query(name, rdtype, use_edns=0 if edns else False, want_dnssec=do and edns)
    q.flags = (dns.flags.RD if rd else 0) | (dns.flags.CD if cd else 0) | (dns.flags.AD if ad else 0)
    q.id = 4242
    return q.to_wire()


@pytest.mark.parametrize("wire", [make(), make(do=False), make(edns=False), make(cd=True, ad=True),
                                  make(rdtype="NSEC3", rd=False)])
def test_plain_queries_read_from_the_wire_as_dnspython_reads_them(wire):
    fast = read_query(wire, False)
    m = dns.message.from_wire(wire)
    assert (fast.qname, fast.qname.to_text(), fast.qtype) == (m.question[0].name, "WWW.example.", m.question[0].rdtype)
    assert (fast.do, fast.cd, fast.ad, fast.rd, fast.edns, fast.limit) == \
        (bool(m.ednsflags & dns.flags.DO), bool(m.flags & dns.flags.CD), bool(m.flags & dns.flags.AD),
         bool(m.flags & dns.flags.RD), m.edns >= 0, 1232 if m.edns >= 0 else 512)
    assert fast.message == m


def test_a_query_with_edns_options_takes_the_full_parser():
    q = dns.message.make_query("a.example.", "A", use_edns=0, options=[dns.edns.GenericOption(10, b"12345678")])
    read = read_query(q.to_wire(), False)
    assert read.edns and read.message == q


@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("flags", [{}, {"do": False}, {"edns": False}, {"cd": True}, {"ad": True, "do": False},
                                   {"rdtype": "RRSIG", "do": False}])
@pytest.mark.parametrize("age", [0, 10, 400])
def test_responses_rendered_to_wire_as_dnspython_renders_them(entry, flags, age):
    q = read_query(make(**flags), False)
    got = dns.message.from_wire(render(q, entry, NOW + age))
    want = dns.message.from_wire(_render_message(q, entry, NOW + age, entry.ede))
    assert got == want and got.id == 4242
    assert (got.flags, got.rcode(), got.edns, got.ednsflags, got.payload, got.options) == \
        (want.flags, want.rcode(), want.edns, want.ednsflags, want.payload, want.options)
    assert [[r.ttl for r in s] for s in got.sections] == [[r.ttl for r in s] for s in want.sections]
    # letter case as dnspython's renderer leaves it (its compression ignores case)
    assert [r.name.to_text() for r in got.answer] == [r.name.to_text() for r in want.answer]
    assert got.question[0].name.to_text() == "WWW.example."  # the client's letter case


def test_too_big_for_the_client_is_truncated_as_before():
    big = Answer(0, (rrset("www.example. 300 TXT " + " ".join(f'"{i}{"x" * 200}"' for i in range(4))),),
                 (), Status.INSECURE, (), NOW, 300)
    q = read_query(make(rdtype="TXT", edns=False), False)
    got = dns.message.from_wire(render(q, big, NOW))
    assert got.flags & dns.flags.TC and not got.answer
    assert render(q, big, NOW) == _render_message(q, big, NOW, ())
    assert not dns.message.from_wire(render(read_query(make(rdtype="TXT"), False), big, NOW)).flags & dns.flags.TC


def test_an_any_answer_keeps_its_dnssec_records_without_do():
    """RFC 3225 §3: security records that match an explicit ANY query are included whether
    or not DO is set (the answer section; the proofs in the authority section are not)."""
    at_name = Answer(0, (rrset("www.example. 300 A 192.0.2.1"), rrset(f"www.example. 300 RRSIG A {SIG}"),
                         rrset("www.example. 300 NSEC z.example. A RRSIG NSEC"),
                         rrset(f"www.example. 300 RRSIG NSEC {SIG}")),
                     DENIAL[:2], Status.SECURE, (), NOW, 300)
    for rdtype, kept in (("ANY", 4), ("A", 1)):
        q = read_query(make("www.example.", rdtype, do=False), False)
        for wire in (render(q, at_name, NOW), _render_message(q, at_name, NOW, ())):
            got = dns.message.from_wire(wire)
            assert len(got.answer) == kept and [r.rdtype for r in got.authority] == [6]
