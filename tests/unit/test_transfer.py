"""Zone transfers and NOTIFY, the pure part (core/serve/transfer.py), without sockets.

Oracles independent of the code under test: set arithmetic on the records dnspython reads
from zone text (what a diff must say), dnspython's own message parser for every rendered
transfer message, and dnspython's IXFR/AXFR client (`dns.xfr.Inbound`), which applies a
transfer onto a zone and raises on a deletion of a record that is not there.
"""

from __future__ import annotations

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.xfr
import dns.zone
import pytest
from dns.rdatatype import RdataType

from sigchain.core.serve.acl import Acl, AclEntry, parse_acl_entry
from sigchain.core.serve.index import ZoneIndex, ZoneSet
from sigchain.core.serve.transfer import (
    History,
    after_step,
    axfr_answer,
    condense,
    decide_transfer,
    diff,
    history_step,
    ixfr_answer,
    notify_message,
    notify_reply_status,
    notify_response,
    plan_ixfr,
    record_count,
    serial_gt,
    xfr_messages,
    zone_rrsets,
)
from sigchain.core.zone.nsec3hash import Nsec3Params
from tests.unit.test_answer import ZONE_TEXT, _signed

N = dns.name.from_text
ORIGIN = N("example.test.")
KEY = N("xfr-key.")
OTHER_KEY = N("other-key.")

BASE = """
@ 3600 IN SOA ns1 hostmaster {serial} 7200 3600 1209600 300
@ 3600 IN NS ns1
ns1 3600 IN A 192.0.2.1
www 3600 IN A 192.0.2.10
www 3600 IN A 192.0.2.11
mail 3600 IN A 192.0.2.25
"""


def index(text: str, serial: int) -> ZoneIndex:
    """A zone version from master-file text (dnspython reads it)."""
    z = dns.zone.from_text(BASE.format(serial=serial) + text, origin=ORIGIN, relativize=False)
    return ZoneIndex.build(ORIGIN, {n: list(node.rdatasets) for n, node in z.nodes.items()})


def records(zone: ZoneIndex) -> set[tuple[dns.name.Name, int, object]]:
    """Every record but the SOA, as (owner, TTL, rdata)."""
    return {(r.name, r.ttl, rd) for r in zone_rrsets(zone) for rd in r}


def text_records(delta_part: frozenset) -> set[str]:  # type: ignore[type-arg]
    return {f"{n.relativize(ORIGIN)} {ttl} {dns.rdatatype.to_text(rd.rdtype)} {rd}"
            for n, ttl, rd in delta_part}


V1 = index("old 3600 IN TXT \"going\"\nttl 3600 IN A 192.0.2.5\n", 1)
V2 = index("www 3600 IN A 192.0.2.12\nnew 3600 IN A 192.0.2.77\nttl 60 IN A 192.0.2.5\n", 2)
V3 = index("www 3600 IN A 192.0.2.12\nttl 60 IN A 192.0.2.5\nlater 3600 IN TXT \"x\"\n", 3)


# ---- serials and differences ------------------------------------------------------------------


def test_serial_arithmetic_rfc1982() -> None:
    assert serial_gt(2, 1) and not serial_gt(1, 2) and not serial_gt(5, 5)
    assert serial_gt(0, 2**32 - 1)  # wraps: 0 follows 4294967295
    assert serial_gt(10, 2**32 - 10) and not serial_gt(2**32 - 10, 10)
    assert serial_gt(2**31 - 1, 0) and not serial_gt(2**31 + 1, 0)


def test_diff_lists_deleted_and_added_records_and_ttl_changes() -> None:
    d = diff(V1, V2)
    assert (d.old_serial, d.new_serial) == (1, 2)
    assert text_records(d.deleted) == {'old 3600 TXT "going"', "ttl 3600 A 192.0.2.5"}
    assert text_records(d.added) == {"www 3600 A 192.0.2.12", "new 3600 A 192.0.2.77",
                                     "ttl 60 A 192.0.2.5"}
    # The oracle: applying the delta to the old records gives exactly the new ones.
    assert (records(V1) - d.deleted) | d.added == records(V2)
    assert diff(V1, V1).empty and diff(V2, V2).size == 2


def test_diff_covers_signatures_and_the_nsec3_chain() -> None:
    old = ZoneIndex.build(ORIGIN, _signed(ORIGIN, ZONE_TEXT, Nsec3Params()))
    changed = {**ZONE_TEXT, "@": [("SOA", "ns1 hostmaster 8 7200 3600 1209600 300"),
                                  *ZONE_TEXT["@"][1:]], "added": [("A", "192.0.2.200")]}
    new = ZoneIndex.build(ORIGIN, _signed(ORIGIN, changed, Nsec3Params()))
    d = diff(old, new)
    assert (records(old) - d.deleted) | d.added == records(new)
    added_types = {rd.rdtype for _, _, rd in d.added}
    assert {RdataType.A, RdataType.RRSIG, RdataType.NSEC3} <= added_types
    assert RdataType.SOA not in added_types | {rd.rdtype for _, _, rd in d.deleted}
    # The AXFR body holds every record: NSEC3 chain, RRSIGs, DNSKEY, CDS/CDNSKEY.
    body_types = {r.rdtype for r in zone_rrsets(new)}
    assert {RdataType.NSEC3, RdataType.RRSIG, RdataType.DNSKEY, RdataType.NSEC3PARAM,
            RdataType.CDS, RdataType.CDNSKEY, RdataType.DS} <= body_types


def test_condensed_deltas_equal_the_direct_difference() -> None:
    d12, d23 = diff(V1, V2), diff(V2, V3)
    c = condense([d12, d23])
    direct = diff(V1, V3)
    assert (c.deleted, c.added, c.old_serial, c.new_serial) == (direct.deleted, direct.added, 1, 3)
    # "new" was added in 2 and deleted in 3: it appears in neither list.
    assert not any(n == N("new.example.test.") for n, _, _ in c.deleted | c.added)
    # A record deleted then re-added cancels too.
    back = index("old 3600 IN TXT \"going\"\nttl 3600 IN A 192.0.2.5\n", 4)
    round_trip = condense([d12, d23, diff(V3, back)])
    assert round_trip.empty and round_trip.new_serial == 4
    with pytest.raises(ValueError):
        condense([])


# ---- history and the IXFR plan ----------------------------------------------------------------


def test_history_is_consecutive_and_bounded() -> None:
    versions = [index(f"v 3600 IN TXT \"{i}\"\n", i) for i in range(1, 26)]
    h = History()
    for a, b in zip(versions, versions[1:], strict=False):
        h = h.record(diff(a, b), max_deltas=20)
    assert len(h.deltas) == 20 and h.serials == tuple(range(5, 26))
    # A delta that does not follow on (a version skipped) restarts the history.
    h2 = h.record(diff(versions[0], versions[3]))
    assert h2.serials == (1, 4)
    # The record bound drops the oldest deltas first, and everything if one is too big.
    h3 = h.record(diff(versions[-1], index("v 3600 IN TXT \"x\"\n", 26)), max_records=8)
    assert h3.serials[-1] == 26 and h3.records <= 8 and len(h3.deltas) == 2
    assert h.record(diff(V1, V2), max_records=3).deltas == ()
    assert h.record(diff(versions[-1], V1), max_deltas=0).deltas == ()


def test_history_steps_are_small_and_rebuild_the_history() -> None:
    """What forked workers are sent (`history_step`) makes the main process's history from
    theirs (`after_step`): one delta after a change, the whole history only otherwise."""
    versions = [index(f"v 3600 IN TXT \"{i}\"\n", i) for i in range(1, 8)]
    h = History()
    for a, b in zip(versions, versions[1:], strict=False):
        new = h.record(diff(a, b), max_deltas=3)
        step = history_step(h, new)
        assert step is not None and step[0] == "append"
        assert after_step(h, step).deltas == new.deltas
        h = new
    assert history_step(h, h) is None and after_step(h, None) is h
    restarted = h.record(diff(versions[0], versions[2]))  # does not follow on: one delta
    assert after_step(h, history_step(h, restarted)).deltas == restarted.deltas
    for other in (History(), None):
        step = history_step(h, other)
        assert after_step(h, step).deltas == ()
    assert history_step(None, h)[0] == "whole"  # type: ignore[index]


def test_plan_ixfr_current_incremental_and_fallbacks() -> None:
    h = History().record(diff(V1, V2)).record(diff(V2, V3))
    plan = plan_ixfr(V3, h, 3)
    assert plan.kind == "current"
    assert plan_ixfr(V3, h, 4).kind == "current"  # a client newer than us: one SOA (RFC 1995 §2)
    one = plan_ixfr(V3, h, 2)
    assert one.kind == "incremental" and one.delta == diff(V2, V3)
    two = plan_ixfr(V3, h, 1)
    assert two.kind == "incremental" and two.delta is not None
    assert (two.delta.deleted, two.delta.added) == (diff(V1, V3).deleted, diff(V1, V3).added)
    unknown = plan_ixfr(V3, h, 0)
    assert unknown.kind == "full" and "not among the versions kept (1..3)" in unknown.reason
    assert plan_ixfr(V3, History(), 2).kind == "full"  # nothing kept (e.g. after a restart)
    stale = History().record(diff(V1, V2))  # history ends at 2, the zone is at 3
    assert plan_ixfr(V3, stale, 1).kind == "full"
    # Too old: dropped from a bounded history.
    bounded = History().record(diff(V1, V2), max_deltas=1).record(diff(V2, V3), max_deltas=1)
    assert plan_ixfr(V3, bounded, 1).kind == "full" and plan_ixfr(V3, bounded, 2).kind == "incremental"


# ---- messages ---------------------------------------------------------------------------------


def _query(rdtype: str, serial: int | None = None, edns: bool = False) -> dns.message.Message:
    q = dns.message.make_query(ORIGIN, rdtype, use_edns=0 if edns else None)
    if serial is not None:
        soa = dns.rrset.from_text(ORIGIN, 0, "IN", "SOA", f"ns1. hostmaster. {serial} 1 1 1 1")
        q.authority = [soa]
    return q


def _big_zone(names: int) -> ZoneIndex:
    text = "".join(f"h{i} 3600 IN TXT \"{'x' * 200}\"\n" for i in range(names))
    text += "".join(f"huge 3600 IN TXT \"{i:04d} {'y' * 240}\"\n" for i in range(400))  # ~100 KB RRset
    return index(text, 9)


def _apply(zone: dns.zone.Zone, query: dns.message.Message, wires: list[bytes]) -> None:
    """dnspython's transfer client applies the messages to `zone` (it raises on a bad IXFR)."""
    rdtype = query.question[0].rdtype
    serial = None
    for rrset in query.authority:
        serial = rrset[0].serial
    with dns.xfr.Inbound(zone, rdtype, serial) as inbound:
        done = False
        for i, w in enumerate(wires):
            assert not done, "messages after the end of the transfer"
            r = dns.message.from_wire(w, xfr=True, origin=zone.from_wire_origin(), multi=True,
                                      one_rr_per_rrset=rdtype == RdataType.IXFR)
            assert r.id == query.id and (i == 0) == bool(r.question)
            done = inbound.process_message(r)
        assert done, "the transfer did not end with the SOA"


def _zone_records(zone: dns.zone.Zone) -> set[tuple[dns.name.Name, int, object]]:
    return {(n, rds.ttl, rd) for n, node in zone.nodes.items() for rds in node.rdatasets for rd in rds}


def test_axfr_split_into_messages_within_the_size_limit() -> None:
    zone = _big_zone(600)
    q = _query("AXFR", edns=True)
    msgs = list(xfr_messages(q, axfr_answer(zone), udp_size=1232))
    assert len(msgs) >= 3
    assert all(len(m.wire) <= 65535 - 640 + 11 for m in msgs)  # room kept for a TSIG record
    assert sum(m.records for m in msgs) == record_count(zone) + 1  # SOA twice
    for m in msgs:
        parsed = dns.message.from_wire(m.wire)
        assert parsed.flags & dns.flags.AA and parsed.flags & dns.flags.QR and parsed.edns == 0
        assert m.message.to_wire(max_size=65535, want_shuffle=False) == m.wire  # what gets signed renders the same
    target = dns.zone.Zone(ORIGIN, relativize=False)
    _apply(target, q, [m.wire for m in msgs])
    expected = records(zone) | {(ORIGIN, zone.soa.ttl, zone.soa[0])}
    assert _zone_records(target) == expected


def test_small_message_limit_splits_rrsets_and_rejects_oversized_records() -> None:
    zone = _big_zone(5)
    q = _query("AXFR")
    msgs = list(xfr_messages(q, axfr_answer(zone), udp_size=1232, max_size=1400, reserve=0))
    assert all(len(m.wire) <= 1400 for m in msgs) and len(msgs) > 80
    target = dns.zone.Zone(ORIGIN, relativize=False)
    _apply(target, q, [m.wire for m in msgs])
    assert len(target.find_rdataset("huge", "TXT")) == 400
    with pytest.raises(dns.exception.TooBig):
        list(xfr_messages(q, axfr_answer(zone), udp_size=1232, max_size=200, reserve=0))


def test_ixfr_messages_applied_by_dnspython_give_the_new_version() -> None:
    h = History().record(diff(V1, V2)).record(diff(V2, V3))
    for start, version in ((1, V1), (2, V2)):
        plan = plan_ixfr(V3, h, start)
        assert plan.delta is not None
        q = _query("IXFR", serial=start)
        answer = list(ixfr_answer(plan.delta))
        assert answer[0] == V3.soa and answer[1] == version.soa and answer[-1] == V3.soa
        msgs = list(xfr_messages(q, answer, udp_size=1232, max_size=600, reserve=0))
        target = dns.zone.Zone(ORIGIN, relativize=False)
        with target.writer() as txn:  # the client's copy at `start`
            for rrset in [version.soa, *zone_rrsets(version)]:
                txn.add(rrset)
        _apply(target, q, [m.wire for m in msgs])
        assert _zone_records(target) == records(V3) | {(ORIGIN, 3600, V3.soa[0])}


# ---- ACLs -------------------------------------------------------------------------------------


def test_acl_entries_parse_and_reject_nonsense() -> None:
    assert parse_acl_entry("any") == AclEntry()
    assert str(parse_acl_entry("10.0.0.0/8")) == "10.0.0.0/8"
    assert parse_acl_entry("key:xfr-key").key == KEY
    both = parse_acl_entry("127.0.0.1 key:xfr-key")
    assert str(both.network) == "127.0.0.1/32" and both.key == KEY
    for bad in ("", "10.0.0.300", "key:", "1.2.3.4 5.6.7.8", "key:a key:b", "somehost"):
        with pytest.raises(ValueError):
            parse_acl_entry(bad)


def test_acl_decisions_with_and_without_tsig() -> None:
    keyed = Acl.parse(["key:xfr-key"])  # TSIG required, from anywhere
    assert not keyed.allows("127.0.0.1", None)  # unsigned: refused
    assert not keyed.allows("127.0.0.1", OTHER_KEY)  # another (valid) key: refused
    assert keyed.allows("127.0.0.1", KEY) and keyed.allows("2001:db8::1", KEY)
    mixed = Acl.parse(["127.0.0.3", "key:xfr-key"])  # either
    assert mixed.allows("127.0.0.3", None) and mixed.allows("127.0.0.9", KEY)
    assert not mixed.allows("127.0.0.1", None) and not mixed.allows("127.0.0.1", OTHER_KEY)
    both = Acl.parse(["127.0.0.0/24 key:xfr-key"])  # address AND key
    assert both.allows("127.0.0.5", KEY)
    assert not both.allows("127.0.0.5", None) and not both.allows("127.0.1.5", KEY)
    v6 = Acl.parse(["::1", "192.0.2.0/24"])
    assert v6.allows("::1", None) and v6.allows("::ffff:192.0.2.7", None)  # v4-mapped
    assert not v6.allows("192.0.3.1", None) and not v6.allows("not-an-address", None)
    assert not Acl().allows("127.0.0.1", KEY)  # the default: no transfers at all
    assert Acl.parse(["any"]).allows("192.0.2.1", None)
    assert mixed.keys == {KEY} and str(Acl()) == "none"


# ---- the transfer decision, BIND's order of checks -------------------------------------------


def _decide(q: dns.message.Message, *, tcp: bool = True, client: str = "127.0.0.1",
            key: dns.name.Name | None = None, acl: Acl | None = None):  # type: ignore[no-untyped-def]
    zones = ZoneSet([V3])
    histories = {ORIGIN: History().record(diff(V1, V2)).record(diff(V2, V3))}
    acls = {ORIGIN: acl if acl is not None else Acl.parse(["127.0.0.1"])}
    return decide_transfer(zones, histories, acls, q, tcp=tcp, client=client, key=key)


def test_transfer_decisions() -> None:
    assert _decide(_query("AXFR")).kind == "AXFR"
    assert _decide(_query("AXFR"), tcp=False).rcode == dns.rcode.FORMERR  # allowed, but UDP
    refused = _decide(_query("AXFR"), tcp=False, client="127.0.0.2")  # the ACL comes first
    assert refused.rcode == dns.rcode.REFUSED and "127.0.0.1/32" in refused.why
    keyed = Acl.parse(["key:xfr-key"])
    assert _decide(_query("AXFR"), acl=keyed).rcode == dns.rcode.REFUSED
    assert _decide(_query("AXFR"), acl=keyed, key=KEY).kind == "AXFR"
    assert _decide(_query("AXFR"), acl=keyed, key=OTHER_KEY).rcode == dns.rcode.REFUSED
    other = dns.message.make_query("www.example.test.", "AXFR")  # not a zone apex served here
    assert _decide(other).rcode == dns.rcode.NOTAUTH
    assert _decide(dns.message.make_query("example.org.", "AXFR")).rcode == dns.rcode.NOTAUTH
    assert _decide(_query("IXFR")).rcode == dns.rcode.FORMERR  # no SOA in the authority section
    d = _decide(_query("IXFR", serial=1))
    assert d.kind == "IXFR" and d.serials == (1, 3)
    assert _decide(_query("IXFR", serial=1), tcp=False).kind == "IXFR SOA-only"  # UDP: "use TCP"
    assert list(_decide(_query("IXFR", serial=3)).answer) == [V3.soa]
    assert _decide(_query("IXFR", serial=7)).kind == "IXFR SOA-only"  # newer than ours
    full = _decide(_query("IXFR", serial=0))
    assert full.kind == "AXFR-style IXFR" and len(list(full.answer)) == len(list(axfr_answer(V3)))
    assert _decide(_query("IXFR", serial=1), client="127.0.0.2").rcode == dns.rcode.REFUSED


# ---- NOTIFY -----------------------------------------------------------------------------------


def test_notify_message_and_reply_matching() -> None:
    m = notify_message(V3, 4242)
    wire = dns.message.from_wire(m.to_wire())
    assert wire.opcode() == dns.opcode.NOTIFY and wire.flags & dns.flags.AA
    assert not wire.flags & dns.flags.RD and wire.id == 4242
    assert (wire.question[0].name, wire.question[0].rdtype) == (ORIGIN, RdataType.SOA)
    assert wire.answer[0][0].serial == 3
    reply = dns.message.make_response(wire)
    assert notify_reply_status(m, reply) == "NOERROR"
    reply.set_rcode(dns.rcode.REFUSED)
    assert notify_reply_status(m, reply) == "REFUSED"
    reply.id = 4243
    assert notify_reply_status(m, reply) is None  # not the reply to this NOTIFY
    assert notify_reply_status(m, m) is None  # no QR


def test_incoming_notify_answered_as_bind_answers_a_primary() -> None:
    zones = ZoneSet([V3])

    def ask(name: str, rdtype: str) -> dns.message.Message:
        q = dns.message.make_query(name, rdtype)
        q.set_opcode(dns.opcode.NOTIFY)
        r, _ = notify_response(zones, q)
        assert r.id == q.id and r.opcode() == dns.opcode.NOTIFY and r.question == q.question
        return r

    r = ask("example.test.", "SOA")
    assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA and r.flags & dns.flags.QR
    for name, rdtype, rcode in [("www.example.test.", "SOA", dns.rcode.NOTAUTH),
                                ("example.org.", "SOA", dns.rcode.NOTAUTH),
                                ("example.test.", "A", dns.rcode.FORMERR),
                                ("example.test.", "CDS", dns.rcode.NOTIMP)]:
        r = ask(name, rdtype)
        assert r.rcode() == rcode and not r.flags & dns.flags.AA
