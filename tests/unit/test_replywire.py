"""The upstream reply reader gives the message dnspython's `from_wire` gives, and fails where
it fails (malformed input is a DNSException, never a crash or a loop)."""

from __future__ import annotations

import io
import random
import struct

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from sigchain.core.resolve.replywire import read_reply

RRSIG = ("A 13 3 300 20270101000000 20260101000000 12345 Example.Test. "
         "dGhpcyBpcyBub3QgYSByZWFsIHNpZ25hdHVyZSBidXQgaXQgaXMgNjQgYnl0ZXMgbG9uZyBpbmRlZWQhISEhISE=")
NSEC3 = "1 1 0 - 0P9MHAVEQVM6T7VBL5LOP2U3T2RP3TOM A RRSIG"


def _reply(*, answer=(), authority=(), additional=(), ede=None, qname="www.Example.test."):
    q = dns.message.make_query(qname, "A", use_edns=0, want_dnssec=True)
    r = dns.message.make_response(q)
    r.flags |= dns.flags.AA
    for section, records in ((r.answer, answer), (r.authority, authority), (r.additional, additional)):
        for owner, ttl, rdtype, text in records:
            rd = dns.rdata.from_text(dns.rdataclass.IN, rdtype, text)
            r.find_rrset(section, dns.name.from_text(owner), rd.rdclass, rd.rdtype, rd.covers(),
                         create=True).add(rd, ttl)
    if ede is not None:
        r.use_edns(0, dns.flags.DO, 1232, options=[dns.edns.EDEOption(*ede)])
    return r.to_wire()


def _rr(rrset: dns.rrset.RRset) -> bytes:
    out = io.BytesIO()
    rrset.to_wire(out)
    return out.getvalue()


def _same(wire: bytes) -> None:
    want = dns.message.from_wire(wire, raise_on_truncation=True)
    got = read_reply(wire)
    assert got == want
    assert (got.id, got.flags, got.edns, got.ednsflags, got.payload, got.options) == \
        (want.id, want.flags, want.edns, want.ednsflags, want.payload, want.options)
    for g, w in zip(got.sections, want.sections, strict=True):
        assert [(r.name.to_text(), r.rdtype, r.covers, r.rdclass) for r in g] == \
            [(r.name.to_text(), r.rdtype, r.covers, r.rdclass) for r in w]  # case kept
        assert [r.ttl for r in g] == [r.ttl for r in w]
        assert [list(r) for r in g] == [list(r) for r in w]  # the records, in order


SIGNED = _reply(
    answer=[("www.Example.test.", 300, "A", "192.0.2.1"), ("www.example.test.", 200, "A", "192.0.2.2"),
            ("www.example.test.", 300, "RRSIG", RRSIG)],
    authority=[("example.test.", 3600, "SOA", "ns.example.test. h.example.test. 1 2 3 4 300"),
               ("0p9mhaveqvm6t7vbl5lop2u3t2rp3tom.example.test.", 300, "NSEC3", NSEC3),
               ("example.test.", 3600, "NS", "ns.example.test.")],
    additional=[("ns.example.test.", 300, "A", "192.0.2.53"), ("ns.example.test.", 300, "AAAA", "2001:db8::53"),
                ("ns.example.test.", 300, "TYPE65280", r"\# 3 010203"),
                ("ns.example.test.", 300, "MX", "10 mail.example.test.")],
    ede=(6, "DS for example.test. matches no DNSKEY"),
)


def test_same_message_as_dnspython():
    _same(SIGNED)
    _same(SIGNED)  # again: from the records kept across replies


def test_records_merged_and_deduplicated_as_dnspython():
    # an A record written twice (dnspython keeps one), a CNAME twice (a singleton: the last
    # one kept, the smaller TTL), and an owner in two letter cases (one RRset)
    a = dns.rrset.from_text("a.test.", 300, "IN", "A", "192.0.2.1")
    upper = dns.rrset.from_text("A.TEST.", 300, "IN", "A", "192.0.2.2")
    c1 = dns.rrset.from_text("c.test.", 100, "IN", "CNAME", "b.test.")
    c2 = dns.rrset.from_text("c.test.", 50, "IN", "CNAME", "c.test.")
    wire = _header(an=5) + QUESTION + b"".join(map(_rr, (a, a, upper, c1, c2)))
    _same(wire)
    got = read_reply(wire)
    assert [len(r) for r in got.answer] == [2, 1] and got.answer[1].ttl == 50
    assert [rd.target.to_text() for rd in got.answer[1]] == ["c.test."]


def test_copies_are_independent():
    one, two = read_reply(SIGNED), read_reply(SIGNED)
    one.answer[0].add(dns.rdata.from_text("IN", "A", "192.0.2.99"))
    one.answer[0].ttl = 1
    assert two.answer == dns.message.from_wire(SIGNED).answer
    assert read_reply(SIGNED).answer[0].ttl == 200


def test_the_same_records_under_new_owners_are_their_own_rrsets():
    """A wildcard's expansions: the same records under a new owner in each reply read as
    dnspython reads them, each RRset under its own owner and independent of the others."""
    def expanded(owner: str) -> bytes:
        return _reply(qname=owner, answer=[(owner, 300, "A", "192.0.2.1"), (owner, 300, "A", "192.0.2.2"),
                                           (owner, 300, "RRSIG", RRSIG)])

    wires = [expanded(f"n{i}.Wild.example.test.") for i in range(3)]
    for wire in wires:
        _same(wire)
    first, second = read_reply(wires[1]), read_reply(wires[2])
    assert [r.name.to_text() for r in second.answer] == ["n2.Wild.example.test."] * 2
    first.answer[0].add(dns.rdata.from_text("IN", "A", "192.0.2.99"))
    first.answer[0].ttl = 1
    first.answer[0].name = dns.name.from_text("changed.test.")
    for wire in wires:
        _same(wire)
    assert len(second.answer[0]) == 2 and second.answer[0].ttl == 300


def test_names_read_are_the_shared_names():
    """A reply's names are the SharedNames the resolver already holds for those labels (its
    question's, its zones'), not another object per reply."""
    from sigchain.core.zone.sharedname import shared

    qname = dns.name.from_text("Fresh1.Example.test.")
    mine = shared(qname.labels)
    got = read_reply(_reply(qname="Fresh1.Example.test.",
                            answer=[("Fresh1.Example.test.", 300, "A", "192.0.2.1")]))
    assert got.question[0].name is mine and got.answer[0].name is mine


def test_ttl_past_31_bits_is_zero():
    wire = _header(an=1) + QUESTION + b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 0x80000000, 4) + \
        bytes([192, 0, 2, 1])
    _same(wire)
    assert read_reply(wire).answer[0].ttl == 0


def test_truncated_reply_raises_truncated():
    wire = bytearray(SIGNED)
    wire[2] |= 0x02  # TC
    with pytest.raises(dns.message.Truncated):
        read_reply(bytes(wire))


def _header(an: int = 0, ns: int = 0, ar: int = 0, qd: int = 1) -> bytes:
    return struct.pack("!HHHHHH", 7, 0x8400, qd, an, ns, ar)


QUESTION = b"\x03www\x04test\x00\x00\x01\x00\x01"  # at offset 12
A_TAIL = struct.pack("!HHIH", 1, 1, 300, 4) + bytes([192, 0, 2, 1])


@pytest.mark.parametrize("owner", [
    b"\xc0\x1f",  # points forward (past itself)
    b"\xc0\x21",  # points at itself
    b"\x01a\xc0\x23",  # a label, then a pointer to that label: a loop
    b"\x40abc",  # label type 01 (RFC 6891 extended labels): not supported
    b"\x80abc",  # label type 10: reserved
    b"\xc0",  # half a pointer at the end
    b"\x05ab",  # a label past the end
])
def test_bad_names_are_form_errors(owner):
    wire = _header(an=1) + QUESTION + owner + A_TAIL
    with pytest.raises(dns.exception.FormError):
        read_reply(wire)
    with pytest.raises(dns.exception.FormError):
        dns.message.from_wire(wire)


def test_pointer_chain_that_loops_back_is_refused():
    # the owner at 33 points to 37, which points back to 33: each pointer must go backwards
    wire = _header(an=1) + QUESTION + b"\xc0\x25\x00\x00\xc0\x21" + A_TAIL
    with pytest.raises(dns.name.BadPointer):
        read_reply(wire)


def test_pointer_target_overlapping_the_name_that_points_is_refused():
    # record 1 (owner at 26) holds the A rdata 07 61 62 63 at 37; record 2's owner at 41 is
    # "x" and a pointer to 37, where a 7-octet label runs over that very owner up to the
    # record's TYPE (00 01), which would end the name: dnspython refuses the overlap
    a = struct.pack("!HHIH", 1, 1, 300, 4) + b"\x07abc"
    wire = _header(an=2) + QUESTION + b"\x00" + a + b"\x01x\xc0\x25" + A_TAIL
    with pytest.raises(dns.exception.FormError):
        dns.message.from_wire(wire)
    with pytest.raises(dns.exception.FormError):
        read_reply(wire)


@pytest.mark.parametrize("hops,ok", [(16, True), (17, False)])
def test_pointer_chains_longer_than_dnspython_allows_are_refused(hops, ok):
    # record 1's unknown-type rdata holds a root label and a chain of pointers, each to the
    # one before; record 2's owner points at the last: `hops` pointers followed in all
    rdata_at = 26 + 1 + 10  # after the question, record 1's root owner and its fixed fields
    pointers = [rdata_at + 1 + 2 * i for i in range(hops - 1)]  # where each pointer sits
    targets = [rdata_at, *pointers[:-1]]
    rdata1 = b"\x00" + b"".join(struct.pack("!H", 0xC000 | t) for t in targets)
    rec1 = b"\x00" + struct.pack("!HHIH", 65280, 1, 300, len(rdata1)) + rdata1
    wire = _header(an=2) + QUESTION + rec1 + struct.pack("!H", 0xC000 | pointers[-1]) + A_TAIL
    if ok:
        _same(wire)
        assert read_reply(wire).answer[1].name == dns.name.root
    else:
        with pytest.raises(dns.name.PointerChainTooLong):
            dns.message.from_wire(wire)
        with pytest.raises(dns.name.PointerChainTooLong):
            read_reply(wire)


def test_name_longer_than_255_through_pointers():
    label = b"\x3f" + b"x" * 63
    wire = bytearray(_header(an=1) + QUESTION)
    first = len(wire)
    wire += label * 3 + b"\x00" + A_TAIL  # a 193-octet owner: fine
    wire[7] = 2  # two answers
    wire += label + struct.pack("!H", 0xC000 | first) + A_TAIL  # 64 more octets: too long
    with pytest.raises(dns.name.NameTooLong):
        read_reply(bytes(wire))


def test_opt_out_of_place_is_bad_edns():
    opt = b"\x00" + struct.pack("!HHIH", 41, 1232, 0, 0)
    with pytest.raises(dns.message.BadEDNS):
        read_reply(_header(an=1) + QUESTION + opt)
    with pytest.raises(dns.message.BadEDNS):
        read_reply(_header(ar=2) + QUESTION + opt + opt)


def test_trailing_junk_and_short_header():
    with pytest.raises(dns.message.TrailingJunk):
        read_reply(SIGNED + b"\x00")
    with pytest.raises(dns.message.ShortHeader):
        read_reply(SIGNED[:11])


def test_every_truncation_fails_as_dnspython_does():
    for n in range(12, len(SIGNED)):
        with pytest.raises(dns.exception.DNSException):
            dns.message.from_wire(SIGNED[:n])
        with pytest.raises(dns.exception.DNSException):
            read_reply(SIGNED[:n])


def test_corrupted_replies_read_as_dnspython_or_fail_as_it_does():
    rng = random.Random(12)
    for _ in range(3000):
        wire = bytearray(SIGNED)
        for _ in range(rng.randint(1, 3)):
            wire[rng.randrange(12, len(wire))] = rng.randrange(256)
        wire = bytes(wire)
        try:
            want = dns.message.from_wire(wire, raise_on_truncation=True)
        except dns.exception.DNSException:
            with pytest.raises(dns.exception.DNSException):
                read_reply(wire)
            continue
        got = read_reply(wire)
        assert got == want and [[r.ttl for r in s] for s in got.sections] == \
            [[r.ttl for r in s] for s in want.sections]


def test_random_bytes_never_crash_the_reader():
    rng = random.Random(1212)
    for _ in range(3000):
        header = _header(an=rng.randrange(4), ns=rng.randrange(4), ar=rng.randrange(3),
                         qd=rng.randrange(3))
        wire = header + bytes(rng.randrange(256) for _ in range(rng.randrange(80)))
        try:
            read_reply(wire)
        except dns.exception.DNSException:
            pass


@pytest.mark.parametrize("rd,cd,payload", [(False, False, 1232), (True, True, 512), (True, False, 1232)])
def test_upstream_query_written_as_dnspython_writes_it(rd, cd, payload):
    from sigchain.core.resolve.exchange import Query, query_wire
    from sigchain.core.validate.anchors import Server

    m = Query(dns.name.from_text("Nx1.OptOut.test."), 48, (Server("127.0.0.1"),), rd, cd).message(payload)
    assert query_wire(m) == m.to_wire()
    plain = dns.message.make_query("a.test.", "A")  # no EDNS
    assert query_wire(plain) == plain.to_wire()
    cookie = dns.message.make_query("a.test.", "A", use_edns=0, options=[dns.edns.GenericOption(10, b"12345678")])
    assert query_wire(cookie) == cookie.to_wire()  # options: dnspython writes it


def test_names_in_rdata_decompressed_only_where_dnspython_does():
    # the same DNAME target written plainly, then compressed (a pointer to the question's
    # "test."): dnspython refuses the second even though it has read the first
    def reply(target: bytes) -> bytes:
        rdata = struct.pack("!HHIH", 39, 1, 300, len(target)) + target
        return _header(an=1) + QUESTION + b"\xc0\x0c" + rdata
    plain, compressed = reply(b"\x01d\x04test\x00"), reply(b"\x01d\xc0\x10")
    _same(plain)
    with pytest.raises(dns.name.DecompressionForbidden):
        dns.message.from_wire(compressed)
    with pytest.raises(dns.name.DecompressionForbidden):
        read_reply(compressed)
    # an SOA, written plainly or compressed, is the same record either way
    soa = dns.rrset.from_text("test.", 300, "IN", "SOA", "ns.test. host.test. 1 2 3 4 5")
    for wire in (_header(ns=1) + QUESTION + _rr(soa), _reply(authority=[
            ("test.", 300, "SOA", "ns.test. host.test. 1 2 3 4 5")], qname="www.test.")):
        _same(wire)
