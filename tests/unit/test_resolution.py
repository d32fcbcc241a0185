"""The resolution state machine (core/resolve/resolution.py), driven without sockets: each "server" is
sigchain's pure authoritative answer function over zones signed in memory (tests/unit/lab.py),
queried through the wire path, so the machine sees real responses — referrals, glue, NSEC and
NSEC3 proofs, truncation. The gathered evidence then goes to the validator.

    .               192.0.2.1     root
    test.           192.0.2.2     TLD: delegates everything below
    example.test.   192.0.2.3     NSEC; www, alias → www.nsec3.test., *.wild, big TXT
    glueless.test.  192.0.2.3     signed; its NS is www.example.test. (no glue anywhere)
    bad.test.       192.0.2.3     the DS in test. is for other keys
    nsec3.test.     192.0.2.4     NSEC3; and its child sub.nsec3.test. on the same server
    insecure.test.  192.0.2.5     unsigned, no DS
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from sigchain.core.resolve.answers import ChainLoop, chain_target, on_chain
from sigchain.core.resolve.exchange import Failed, Gathered, Query, Reply, ResolutionLimits
from sigchain.core.resolve.resolution import Resolution
from sigchain.core.serve.fastpath import respond
from sigchain.core.serve.index import ZoneIndex, ZoneSet
from sigchain.core.validate.anchors import Server
from sigchain.core.validate.validator import Kind, Question, Status, validate
from sigchain.core.zone.nsec3hash import Nsec3Params
from tests.unit.lab import NOW, TTL, Zone, build, ds_entries

N = dns.name.from_text
ROOT, TLD, EX, N3, INS = (Server(f"192.0.2.{i}") for i in (1, 2, 3, 4, 5))
ALL = Server("192.0.2.53")  # authoritative for every zone (not recursive)
RESOLVER = Server("192.0.2.99")  # a recursive resolver stand-in


def _hierarchy() -> dict[str, Zone]:
    sub = build("sub.nsec3.test.", {"www": [("A", ("192.0.2.80",))]})
    n3 = build("nsec3.test.", {
        "ns": [("A", ("192.0.2.4",))],
        "www": [("A", ("192.0.2.40",))],
        "sub": [("NS", ("ns.nsec3.test.",))] + ds_entries(sub),
    }, nsec3=Nsec3Params())
    ex = build("example.test.", {
        "ns": [("A", ("192.0.2.3",))],
        "www": [("A", ("192.0.2.3",))],
        "alias": [("CNAME", ("www.nsec3.test.",))],
        "dangling": [("CNAME", ("nope.nsec3.test.",))],
        "*.wild": [("TXT", ('"wildcard"',))],
        "big": [("TXT", tuple(f'"{i:02d} {"x" * 200}"' for i in range(12)))],
    })
    glueless = build("glueless.test.", {"www": [("A", ("192.0.2.31",))]})
    bad = build("bad.test.", {"www": [("A", ("192.0.2.32",))]})
    bad_other_keys = build("bad.test.", {})
    insecure = build("insecure.test.", {"ns": [("A", ("192.0.2.5",))], "host": [("A", ("192.0.2.70",))]},
                     signed=False)
    tld = build("test.", {
        "ns": [("A", ("192.0.2.2",))],
        "example": [("NS", ("ns.example.test.",))] + ds_entries(ex),
        "ns.example": [("A", ("192.0.2.3",))],
        "glueless": [("NS", ("www.example.test.",))] + ds_entries(glueless),
        "bad": [("NS", ("ns.example.test.",))] + ds_entries(bad_other_keys),
        "nsec3": [("NS", ("ns.nsec3.test.",))] + ds_entries(n3),
        "ns.nsec3": [("A", ("192.0.2.4",))],
        "insecure": [("NS", ("ns.insecure.test.",))],
        "ns.insecure": [("A", ("192.0.2.5",))],
    })
    root = build(".", {
        "ns": [("A", ("192.0.2.1",))],
        "test": [("NS", ("ns.test.",))] + ds_entries(tld),
        "ns.test": [("A", ("192.0.2.2",))],
    })
    return {"root": root, "tld": tld, "ex": ex, "glueless": glueless, "bad": bad, "n3": n3,
            "sub": sub, "insecure": insecure}


Z = _hierarchy()


def _set(*zones: Zone) -> ZoneSet:
    return ZoneSet([ZoneIndex.build(z.origin, z.nodes) for z in zones])


NET: dict[Server, ZoneSet] = {
    ROOT: _set(Z["root"]), TLD: _set(Z["tld"]),
    EX: _set(Z["ex"], Z["glueless"], Z["bad"]), N3: _set(Z["n3"], Z["sub"]),
    INS: _set(Z["insecure"]), ALL: _set(*Z.values()),
}
ANCHORS = [dns.rrset.from_rdata_list(dns.name.root, TTL, Z["root"].ds_rdatas())]
ROOTS = [a.name for a in ANCHORS]

Responder = Callable[[Server, dns.message.Message, bool], "dns.message.Message | None"]


def authoritative(server: Server, query: dns.message.Message, tcp: bool) -> dns.message.Message | None:
    zones = NET.get(server)
    if zones is None:
        return None
    wire = respond(zones, query.to_wire(), tcp=tcp)
    return dns.message.from_wire(wire) if wire is not None else None


def drive(res: Resolution, responder: Responder = authoritative, log: list[tuple[Query, bool]] | None = None) -> Gathered | Failed:
    """The shell a real transport is: servers in order, TCP after TC, next server on silence."""
    while (q := res.next_query()) is not None:
        reply = None
        for server in q.servers:
            msg = q.message()
            r = responder(server, msg, False)
            tcp = False
            if r is not None and r.flags & dns.flags.TC:
                r, tcp = responder(server, msg, True), True
            if r is not None:
                assert r.id == msg.id
                reply = Reply(server, r, tcp, len(r.to_wire()))
                break
        if log is not None:
            log.append((q, reply.tcp if reply else False))
        res.result(reply, "" if reply else "timed out")
    assert res.outcome is not None
    return res.outcome


def iterative(name: str, rdtype: str = "A", responder: Responder = authoritative,
              log: list[tuple[Query, bool]] | None = None, **kw: object) -> Gathered | Failed:
    res = Resolution(Question(N(name), dns.rdatatype.from_text(rdtype)), ROOTS, hints=[ROOT], **kw)  # type: ignore[arg-type]
    return drive(res, responder, log)


def judged(outcome: Gathered | Failed):  # type: ignore[no-untyped-def]
    assert isinstance(outcome, Gathered), outcome
    return validate(outcome.evidence, ANCHORS, NOW)


def zones_of(outcome: Gathered | Failed) -> list[str]:
    assert isinstance(outcome, Gathered)
    return [c.name.to_text() for c in outcome.evidence.zones]


# ---------------------------------------------------------------------------------------------
# Iterative resolution from root hints
# ---------------------------------------------------------------------------------------------


def test_iterative_secure_answer_follows_referrals_and_gathers_each_link() -> None:
    log: list[tuple[Query, bool]] = []
    res = Resolution(Question(N("www.example.test."), dns.rdatatype.A), ROOTS, hints=[ROOT])
    outcome = drive(res, log=log)
    v = judged(outcome)
    assert (v.status, v.kind) == (Status.SECURE, Kind.ANSWER)
    assert zones_of(outcome) == [".", "test.", "example.test."]
    asked = [(q.qname.to_text(), dns.rdatatype.to_text(q.rdtype), q.servers[0].host) for q, _ in log]
    # the question walks down by referrals; then each zone's DNSKEY from its own servers and
    # its DS from the parent's
    assert asked[:3] == [("www.example.test.", "A", "192.0.2.1"), ("www.example.test.", "A", "192.0.2.2"),
                         ("www.example.test.", "A", "192.0.2.3")]
    assert ("example.test.", "DS", "192.0.2.2") in asked and ("test.", "DS", "192.0.2.1") in asked
    assert ("example.test.", "DNSKEY", "192.0.2.3") in asked and (".", "DNSKEY", "192.0.2.1") in asked
    assert all(not q.rd and not q.cd for q, _ in log)
    assert len(log) == len(outcome.exchanges) == 8


def test_every_query_has_edns_do_and_a_1232_byte_buffer() -> None:
    m = Query(N("x."), dns.rdatatype.A, (ROOT,), rd=True, cd=True).message()
    assert m.edns == 0 and m.payload == 1232 and m.ednsflags & dns.flags.DO
    assert m.flags & dns.flags.RD and m.flags & dns.flags.CD and not m.flags & dns.flags.AD
    m = Query(N("x."), dns.rdatatype.A, (ROOT,)).message()
    assert not m.flags & (dns.flags.RD | dns.flags.CD)


@pytest.mark.parametrize("name, rdtype, kind", [
    ("nope.example.test.", "A", Kind.NXDOMAIN), ("www.example.test.", "MX", Kind.NODATA),
    ("nope.nsec3.test.", "A", Kind.NXDOMAIN), ("www.nsec3.test.", "TXT", Kind.NODATA),
    ("x.wild.example.test.", "TXT", Kind.ANSWER),
])
def test_iterative_negative_and_wildcard_answers_validate(name: str, rdtype: str, kind: Kind) -> None:
    v = judged(iterative(name, rdtype))
    assert (v.status, v.kind) == (Status.SECURE, kind), v.findings


def test_truncated_answer_is_retried_over_tcp() -> None:
    log: list[tuple[Query, bool]] = []
    res = Resolution(Question(N("big.example.test."), dns.rdatatype.TXT), ROOTS, hints=[ROOT])
    v = judged(drive(res, log=log))
    assert v.status is Status.SECURE
    assert any(tcp and q.qname == N("big.example.test.") for q, tcp in log)


def test_cname_into_another_zone_is_resolved_there_and_both_chains_gathered() -> None:
    outcome = iterative("alias.example.test.")
    assert isinstance(outcome, Gathered)
    assert [e.query.purpose for e in outcome.exchanges].count("CNAME target") >= 1
    assert {"example.test.", "nsec3.test."} <= set(zones_of(outcome))
    v = judged(outcome)
    assert (v.status, v.kind) == (Status.SECURE, Kind.ANSWER)
    assert [r.rdtype for r in outcome.evidence.answer if r.rdtype != dns.rdatatype.RRSIG] == [
        dns.rdatatype.CNAME, dns.rdatatype.A]


def test_cname_to_a_missing_name_in_another_zone_is_a_validated_nxdomain() -> None:
    v = judged(iterative("dangling.example.test."))
    assert (v.status, v.kind) == (Status.SECURE, Kind.NXDOMAIN), v.findings


def test_unsigned_delegation_is_insecure() -> None:
    outcome = iterative("host.insecure.test.")
    v = judged(outcome)
    assert (v.status, v.kind) == (Status.INSECURE, Kind.ANSWER)
    assert "insecure.test." in zones_of(outcome)


def test_zone_cut_inside_one_server_is_found_by_its_signer() -> None:
    """sub.nsec3.test. is served by the same server as its parent: no referral shows the cut;
    the RRSIG signer does, and its DS comes from the parent side."""
    outcome = iterative("www.sub.nsec3.test.")
    assert "sub.nsec3.test." in zones_of(outcome)
    assert judged(outcome).status is Status.SECURE


def test_name_servers_without_glue_are_looked_up() -> None:
    outcome = iterative("www.glueless.test.")
    assert isinstance(outcome, Gathered)
    assert any(e.query.purpose.startswith("address of") for e in outcome.exchanges)
    assert judged(outcome).status is Status.SECURE


def test_ds_mismatch_is_gathered_and_judged_bogus() -> None:
    v = judged(iterative("www.bad.test."))
    assert v.status is Status.BOGUS and "DS_NO_MATCHING_DNSKEY" in v.codes


def test_no_anchor_above_gathers_no_links() -> None:
    res = Resolution(Question(N("www.example.test."), dns.rdatatype.A), [N("other.")], hints=[ROOT])
    outcome = drive(res)
    assert isinstance(outcome, Gathered) and outcome.evidence.zones == ()
    assert len(outcome.exchanges) == 3


def test_an_anchor_below_the_root_starts_the_chain_there() -> None:
    res = Resolution(Question(N("www.example.test."), dns.rdatatype.A), [N("example.test.")], hints=[ROOT])
    outcome = drive(res)
    assert zones_of(outcome) == ["example.test."]


# ---------------------------------------------------------------------------------------------
# Failures: silence, errors, lame and looping servers, budgets
# ---------------------------------------------------------------------------------------------


def test_no_server_answering_is_unreachable() -> None:
    res = Resolution(Question(N("www.example.test."), dns.rdatatype.A), ROOTS, hints=[Server("192.0.2.250")])
    outcome = drive(res)
    assert isinstance(outcome, Failed) and outcome.unreachable
    assert "no server of . answered" in outcome.reason


def test_a_silent_server_is_skipped_for_the_next() -> None:
    res = Resolution(Question(N("www.example.test."), dns.rdatatype.A), ROOTS,
                     hints=[Server("192.0.2.250"), ROOT])
    assert judged(drive(res)).status is Status.SECURE


def _override(fn: Callable[[Server, dns.message.Message], dns.message.Message | None]) -> Responder:
    def responder(server: Server, query: dns.message.Message, tcp: bool) -> dns.message.Message | None:
        r = fn(server, query)
        return r if r is not None else authoritative(server, query, tcp)
    return responder


def _error(query: dns.message.Message, rcode: int, ra: bool = False) -> dns.message.Message:
    r = dns.message.make_response(query)
    r.set_rcode(rcode)
    if ra:
        r.flags |= dns.flags.RA
    return r


def test_error_rcodes_move_on_to_other_servers_then_fail_not_unreachable() -> None:
    refusing = Server("192.0.2.66")
    responder = _override(lambda s, q: _error(q, dns.rcode.REFUSED) if s == refusing else None)
    res = Resolution(Question(N("www.example.test."), dns.rdatatype.A), ROOTS, hints=[refusing, ROOT])
    assert judged(drive(res, responder)).status is Status.SECURE
    res = Resolution(Question(N("www.example.test."), dns.rdatatype.A), ROOTS, hints=[refusing])
    outcome = drive(res, responder)
    assert isinstance(outcome, Failed) and not outcome.unreachable and "REFUSED" in outcome.reason


def test_upward_referral_is_lame() -> None:
    def upward(server: Server, query: dns.message.Message) -> dns.message.Message | None:
        if server != TLD:
            return None
        r = dns.message.make_response(query)
        r.authority.append(dns.rrset.from_text(".", 3600, "IN", "NS", "ns."))
        r.additional.append(dns.rrset.from_text("ns.", 3600, "IN", "A", "192.0.2.1"))
        return r
    outcome = iterative("www.example.test.", "A", _override(upward))
    assert isinstance(outcome, Failed) and "not below test." in outcome.reason


def test_query_budget_ends_the_trace() -> None:
    outcome = iterative("www.example.test.", limits=ResolutionLimits(max_queries=4))
    assert isinstance(outcome, Failed) and "max_queries" in outcome.reason
    assert len(outcome.exchanges) == 4


def test_cname_loop_across_zones_is_bounded() -> None:
    def looping(server: Server, query: dns.message.Message) -> dns.message.Message | None:
        q = query.question[0]
        if server == EX and q.rdtype == dns.rdatatype.A and q.name.is_subdomain(N("example.test.")):
            r = dns.message.make_response(query)
            r.flags |= dns.flags.AA
            n = int(q.name.labels[0][1:] or 0) if q.name.labels[0].startswith(b"l") else 0
            r.answer.append(dns.rrset.from_text(
                q.name, 60, "IN", "CNAME", f"l{n + 1}.example.test."))
            return r
        return None
    outcome = iterative("l0.example.test.", "A", _override(looping))
    assert isinstance(outcome, Failed) and "max_chain" in outcome.reason


@pytest.mark.parametrize("within", [True, False], ids=["one response", "two responses"])
def test_a_cname_loop_fails_the_resolution(within: bool) -> None:
    """RFC 1034 §5.2.2: alias loops are caught and an error passed back, whether the loop is
    within one response (an unsigned zone: no validator would catch it) or across two."""
    def looping(server: Server, query: dns.message.Message) -> dns.message.Message | None:
        q = query.question[0]
        if server == INS and q.name in (N("l1.insecure.test."), N("l2.insecure.test.")):
            r = dns.message.make_response(query)
            r.flags |= dns.flags.AA
            other = "l2" if q.name == N("l1.insecure.test.") else "l1"
            r.answer.append(dns.rrset.from_text(q.name, 60, "IN", "CNAME", f"{other}.insecure.test."))
            if within:
                r.answer.append(dns.rrset.from_text(f"{other}.insecure.test.", 60, "IN", "CNAME",
                                                    q.name.to_text()))
            return r
        return None
    outcome = iterative("l1.insecure.test.", "A", _override(looping))
    assert isinstance(outcome, Failed) and "CNAME/DNAME loop: " in outcome.reason, outcome
    assert "max_chain" not in outcome.reason
    assert [e.query.purpose for e in outcome.exchanges].count("CNAME target") == (0 if within else 1)


def test_result_without_a_pending_query_is_an_error() -> None:
    res = Resolution(Question(N("www.example.test."), dns.rdatatype.A), [], hints=[ROOT])
    drive(res)
    with pytest.raises(RuntimeError):
        res.result(None, "late")


# ---------------------------------------------------------------------------------------------
# Through one server
# ---------------------------------------------------------------------------------------------


def recursive(bogus_servfail: bool = True) -> Responder:
    """A recursive resolver stand-in: answers from all the zones with RA set; without CD it
    validates and turns bogus into SERVFAIL, as a validating resolver does."""
    def respond_(server: Server, query: dns.message.Message, tcp: bool) -> dns.message.Message | None:
        if server != RESOLVER:
            return None
        if bogus_servfail and not query.flags & dns.flags.CD and query.question[0].name.is_subdomain(N("bad.test.")):
            return _error(query, dns.rcode.SERVFAIL, ra=True)
        r = authoritative(ALL, query, tcp)
        assert r is not None
        r.flags = (r.flags & ~dns.flags.AA) | dns.flags.RA
        return r
    return respond_


@pytest.mark.parametrize("name, rdtype, status, kind", [
    ("www.example.test.", "A", Status.SECURE, Kind.ANSWER),
    ("nope.nsec3.test.", "A", Status.SECURE, Kind.NXDOMAIN),
    ("alias.example.test.", "A", Status.SECURE, Kind.ANSWER),
    ("host.insecure.test.", "A", Status.INSECURE, Kind.ANSWER),
    ("www.sub.nsec3.test.", "A", Status.SECURE, Kind.ANSWER),
    ("www.bad.test.", "A", Status.BOGUS, Kind.ANSWER),
])
def test_through_a_recursive_server_with_cd(name: str, rdtype: str, status: Status, kind: Kind) -> None:
    log: list[tuple[Query, bool]] = []
    res = Resolution(Question(N(name), dns.rdatatype.from_text(rdtype)), ROOTS, server=RESOLVER)
    outcome = drive(res, recursive(), log)
    assert isinstance(outcome, Gathered) and outcome.recursive is True
    assert all(q.rd and q.cd and q.servers == (RESOLVER,) for q, _ in log)
    v = judged(outcome)
    assert (v.status, v.kind) == (status, kind), v.findings


def test_unsigned_zone_cut_is_found_by_asking_for_soa() -> None:
    outcome = drive(Resolution(Question(N("host.insecure.test."), dns.rdatatype.A), ROOTS, server=RESOLVER),
                    recursive())
    assert isinstance(outcome, Gathered)
    assert zones_of(outcome) == [".", "test.", "insecure.test."]
    assert any(e.query.purpose == "zone cut" for e in outcome.exchanges)


def test_no_cd_lets_a_validating_server_say_servfail() -> None:
    res = Resolution(Question(N("www.bad.test."), dns.rdatatype.A), ROOTS, server=RESOLVER, cd=False)
    outcome = drive(res, recursive())
    assert isinstance(outcome, Failed) and not outcome.unreachable
    assert outcome.rcode == dns.rcode.SERVFAIL and "SERVFAIL from 192.0.2.99" in outcome.reason


def test_authoritative_server_gets_rd_and_cd_clear_after_the_first_reply() -> None:
    log: list[tuple[Query, bool]] = []
    res = Resolution(Question(N("www.example.test."), dns.rdatatype.A), ROOTS, server=ALL)
    outcome = drive(res, log=log)
    assert isinstance(outcome, Gathered) and outcome.recursive is False
    assert all(not q.rd and not q.cd for q, _ in log[1:])
    assert judged(outcome).status is Status.SECURE  # it serves every zone, parents included


def test_authoritative_server_for_one_zone_with_that_zone_as_anchor() -> None:
    ex = Z["ex"]
    anchor = [dns.rrset.from_rdata_list(ex.origin, TTL, [k.dnskey for k in ex.ksks])]
    res = Resolution(Question(N("www.example.test."), dns.rdatatype.A), [ex.origin], server=EX)
    outcome = drive(res)
    assert isinstance(outcome, Gathered)
    assert validate(outcome.evidence, anchor, NOW).status is Status.SECURE


def test_silent_server_is_unreachable() -> None:
    outcome = drive(Resolution(Question(N("www.example.test."), dns.rdatatype.A), ROOTS,
                               server=Server("192.0.2.250")))
    assert isinstance(outcome, Failed) and outcome.unreachable


def test_exactly_one_of_hints_or_server() -> None:
    with pytest.raises(ValueError):
        Resolution(Question(N("x."), 1), ROOTS)
    with pytest.raises(ValueError):
        Resolution(Question(N("x."), 1), ROOTS, hints=[ROOT], server=ALL)


# ---------------------------------------------------------------------------------------------
# chain_target
# ---------------------------------------------------------------------------------------------


def _msg(answer: Mapping[str, tuple[str, str]], rcode: int = 0, soa: str | None = None) -> dns.message.Message:
    m = dns.message.make_response(dns.message.make_query("q.a.", "A"))
    for owner, (rdtype, text) in answer.items():
        m.answer.append(dns.rrset.from_text(owner, 60, "IN", rdtype, text))
    if soa:
        m.authority.append(dns.rrset.from_text(soa, 60, "IN", "SOA", ". . 1 2 3 4 5"))
    m.set_rcode(rcode)
    return m


def test_chain_target() -> None:
    a = dns.rdatatype.A
    assert chain_target(_msg({"q.a.": ("A", "192.0.2.1")}), N("q.a."), a) is None
    assert chain_target(_msg({"q.a.": ("CNAME", "t.b.")}), N("q.a."), a) == N("t.b.")
    assert chain_target(_msg({"q.a.": ("CNAME", "t.b."), "t.b.": ("A", "192.0.2.1")}), N("q.a."), a) is None
    assert chain_target(_msg({"q.a.": ("CNAME", "t.b.")}, dns.rcode.NXDOMAIN), N("q.a."), a) is None
    assert chain_target(_msg({"q.a.": ("CNAME", "t.b.")}, soa="b."), N("q.a."), a) is None
    assert chain_target(_msg({"a.": ("DNAME", "c.")}), N("q.a."), a) == N("q.c.")
    with pytest.raises(ChainLoop):
        chain_target(_msg({"q.a.": ("CNAME", "q.a.")}), N("q.a."), a)
    with pytest.raises(ChainLoop):  # a DNAME's rewrite back to the name
        chain_target(_msg({"a.": ("DNAME", "b."), "b.": ("DNAME", "a.")}), N("q.a."), a)
    assert chain_target(_msg({"q.a.": ("CNAME", "t.b.")}), N("q.a."), dns.rdatatype.CNAME) is None


def test_give_up_ends_the_resolution_unanswered() -> None:
    """The caller's time budget is spent: the pending query is recorded as unanswered and the
    outcome is a failure for want of answers (exit 3), never a half-gathered verdict."""
    res = Resolution(Question(N("www.example.test."), dns.rdatatype.A), ROOTS, hints=[ROOT])
    q = res.next_query()
    assert q is not None
    res.give_up("time budget of 1 s spent", "192.0.2.1: timed out")
    assert res.next_query() is None and isinstance(res.outcome, Failed)
    assert res.outcome.unreachable and res.outcome.reason == "time budget of 1 s spent"
    assert [e.error for e in res.outcome.exchanges] == ["192.0.2.1: timed out"]


def test_merged_rrsets_leave_the_responses_alone() -> None:
    """RRsets of several responses merged by (owner, type, covered): one met once is passed
    on as it is, one met again is a copy holding both records, and no response changes."""
    from sigchain.core.resolve.answers import merge

    a1 = dns.rrset.from_text("a.test.", 300, "IN", "A", "192.0.2.1")
    a2 = dns.rrset.from_text("A.Test.", 300, "IN", "A", "192.0.2.2")
    mx = dns.rrset.from_text("a.test.", 300, "IN", "MX", "10 mx.test.")
    b = dns.rrset.from_text("b.test.", 300, "IN", "A", "192.0.2.3")
    before = [r.copy() for r in (a1, a2, mx, b)]
    merged = merge([a1, mx, a2, b])
    assert [len(r) for r in merged] == [2, 1, 1]
    assert merged[0] is not a1 and set(merged[0]) == set(a1) | set(a2)
    assert merged[1] is mx and merged[2] is b
    assert [a1, a2, mx, b] == before and len(a1) == 1 and len(a2) == 1


def test_only_the_chain_of_an_answer_section_is_kept() -> None:
    """What a server puts in the answer section beside the CNAME/DNAME chain from the
    question (another name's data, another type at the name, their RRSIGs) is dropped before
    validation: the validator checks only the chain, and the rest would reach the client with
    AD, unchecked. ANY keeps every RRset at the name; RRSIG keeps the RRSIGs there."""
    sig = "RRSIG {} 13 3 300 20270101000000 20261201000000 1 example.test. AAAA"

    def rr(text: str) -> dns.rrset.RRset:
        owner, rdtype, rdata = text.split(maxsplit=2)
        return dns.rrset.from_text(owner, 300, "IN", rdtype, rdata)

    www_a, www_sig = rr("www.example.test. A 192.0.2.1"), rr(f"www.example.test. {sig.format('A')}")
    www_txt, txt_sig = rr('www.example.test. TXT "forged"'), rr(f"www.example.test. {sig.format('TXT')}")
    bank = rr("www.bank.test. A 203.0.113.66")
    web = rr("web.example.test. CNAME www.example.test.")
    web_sig = rr(f"web.example.test. {sig.format('CNAME')}")
    answer = [web, web_sig, www_a, www_sig, www_txt, txt_sig, bank]
    A, ANY, RRSIG = dns.rdatatype.A, dns.rdatatype.ANY, dns.rdatatype.RRSIG
    assert on_chain(answer, N("www.example.test."), A) == [www_a, www_sig]
    assert on_chain(answer, N("web.example.test."), A) == [web, web_sig, www_a, www_sig]
    assert on_chain(answer, N("www.example.test."), ANY) == [www_a, www_sig, www_txt, txt_sig]
    assert on_chain(answer, N("web.example.test."), ANY) == [web, web_sig]  # a CNAME owner
    assert on_chain(answer, N("www.example.test."), RRSIG) == [www_sig, txt_sig]
    assert on_chain(answer, N("www.example.test."), dns.rdatatype.MX) == []  # NODATA
    dname = rr("example.test. DNAME example.net.")
    synth = rr("www.example.test. CNAME www.example.net.")
    target = rr("www.example.net. A 192.0.2.7")
    assert on_chain([dname, synth, target, bank], N("www.example.test."), A) == [dname, synth, target]



def test_what_a_server_says_outside_its_zone_is_not_believed() -> None:
    """RFC 2181 §5.4.1, RFC 5452 §6: example.test.'s server answers a CNAME into
    insecure.test. and, beside it, the target's address — or an NXDOMAIN for it, or an SOA of
    test. to claim it has no data. None of that is its to say: the target is asked of
    insecure.test.'s own server, and the forged address never reaches the evidence."""
    forged = {
        "address": lambda r: r.answer.append(dns.rrset.from_text("host.insecure.test.", 60, "IN", "A", "6.6.6.6")),
        "nxdomain": lambda r: r.set_rcode(dns.rcode.NXDOMAIN),
        "soa": lambda r: r.authority.append(dns.rrset.from_text("test.", 60, "IN", "SOA", ". . 1 2 3 4 5")),
    }
    for how, forge in forged.items():
        def evil(server: Server, query: dns.message.Message) -> dns.message.Message | None:
            q = query.question[0]
            if server != EX or q.name != N("evil.example.test.") or q.rdtype != dns.rdatatype.A:
                return None
            r = dns.message.make_response(query)
            r.flags |= dns.flags.AA
            r.answer.append(dns.rrset.from_text(q.name, 60, "IN", "CNAME", "host.insecure.test."))
            forge(r)  # noqa: B023 (called at once, in this iteration)
            return r
        log: list[tuple[Query, bool]] = []
        outcome = iterative("evil.example.test.", "A", _override(evil), log)
        assert isinstance(outcome, Gathered), (how, outcome)
        assert any(q.qname == N("host.insecure.test.") and q.servers == (INS,) for q, _ in log), how
        addresses = [rd.address for r in outcome.evidence.answer if r.rdtype == dns.rdatatype.A for rd in r]
        assert addresses == ["192.0.2.70"] and outcome.evidence.rcode == dns.rcode.NOERROR, how
        assert all(r.name != N("test.") for r in outcome.evidence.authority), how


def test_an_answer_wholly_outside_the_zone_is_lame() -> None:
    """A server of example.test. that answers only with another zone's records has answered
    nothing: the next server is asked, and with none left the resolution fails."""
    def elsewhere(server: Server, query: dns.message.Message) -> dns.message.Message | None:
        q = query.question[0]
        if server != EX or q.name != N("www.example.test."):
            return None
        r = dns.message.make_response(query)
        r.flags |= dns.flags.AA
        r.answer.append(dns.rrset.from_text("www.bank.test.", 60, "IN", "A", "6.6.6.6"))
        return r
    outcome = iterative("www.example.test.", "A", _override(elsewhere))
    assert isinstance(outcome, Failed) and "wholly outside example.test." in outcome.reason


def test_qname_minimisation_sends_at_most_ten_minimised_queries() -> None:
    """RFC 9156 §2.3: one label at a time for the first four minimised queries, then larger
    steps; a 40-label name under a wildcard costs no more than MAX_MINIMISE_COUNT of them
    (not one per label) and still gets its answer."""
    name = ".".join(f"l{i}" for i in range(40)) + ".wild.example.test."
    log: list[tuple[Query, bool]] = []
    res = Resolution(Question(N(name), dns.rdatatype.TXT), ROOTS, hints=[ROOT], minimise=True)
    outcome = drive(res, log=log)
    minimised = [q for q, _ in log if q.purpose.endswith("(minimised)")]
    assert 4 < len(minimised) <= 10, [str(q.qname) for q in minimised]
    shown = [len(q.qname) for q in minimised]
    assert shown == sorted(shown)  # ever deeper
    assert [b - a for a, b in zip(shown[:-1], shown[1:], strict=True)][:3] == [1, 1, 1]  # one label at a time first
    assert judged(outcome).status is Status.SECURE
    short = drive(Resolution(Question(N("www.example.test."), dns.rdatatype.A), ROOTS, hints=[ROOT],
                             minimise=True), log=(few := []))
    assert judged(short).status is Status.SECURE
    assert [str(q.qname) for q, _ in few if q.purpose.endswith("(minimised)")][:2] == [
        "test.", "example.test."]


@pytest.mark.parametrize("rcode", [dns.rcode.REFUSED, dns.rcode.SERVFAIL])
def test_a_forwarder_that_refuses_or_fails_gives_way_to_the_next(rcode: int) -> None:
    """As Unbound and BIND: the first forwarder's REFUSED or SERVFAIL sends the question to
    the next one, and only the last one's is final."""
    first = Server("192.0.2.98")
    good = recursive()

    def responder(server: Server, query: dns.message.Message, tcp: bool) -> dns.message.Message | None:
        return _error(query, rcode, ra=True) if server == first else good(server, query, tcp)

    log: list[tuple[Query, bool]] = []
    res = Resolution(Question(N("www.example.test."), dns.rdatatype.A), ROOTS, server=first,
                     fallbacks=[RESOLVER])
    outcome = drive(res, responder, log)
    assert judged(outcome).status is Status.SECURE
    assert log[0][0].servers == (first, RESOLVER) and log[1][0].servers == (RESOLVER,)
    alone = drive(Resolution(Question(N("www.example.test."), dns.rdatatype.A), ROOTS, server=first),
                  responder)
    assert isinstance(alone, Failed) and alone.rcode == rcode


def test_glueless_name_servers_outside_the_child_are_looked_up_for_a_and_aaaa() -> None:
    """A referral to glueless.test. naming four servers inside the zone (no glue) and one in
    example.test. that has only an IPv6 address: the in-zone names are skipped before the
    max_ns_names bound (four), and the outside one's AAAA is looked up after its A."""
    v6 = Server("2001:db8::3")

    def referral(server: Server, query: dns.message.Message) -> dns.message.Message | None:
        q = query.question[0]
        if server == v6:
            return authoritative(EX, query, False)
        if server == TLD and q.name == N("www.glueless.test.") and q.rdtype == dns.rdatatype.A:
            r = dns.message.make_response(query)
            r.authority.append(dns.rrset.from_text(
                "glueless.test.", 3600, "IN", "NS", *(f"{c}.glueless.test." for c in "abcd"),
                "ns6.example.test."))
            return r
        if server == EX and q.name == N("ns6.example.test."):
            r = dns.message.make_response(query)
            r.flags |= dns.flags.AA
            if q.rdtype == dns.rdatatype.AAAA:
                r.answer.append(dns.rrset.from_text(q.name, 300, "IN", "AAAA", "2001:db8::3"))
            return r
        return None

    log: list[tuple[Query, bool]] = []
    outcome = iterative("www.glueless.test.", "A", _override(referral), log)
    assert judged(outcome).status is Status.SECURE
    looked = [(str(q.qname), dns.rdatatype.to_text(q.rdtype)) for q, _ in log
              if q.purpose.startswith("address of")]
    assert looked[-2:] == [("ns6.example.test.", "A"), ("ns6.example.test.", "AAAA")]
    assert any(q.servers == (v6,) for q, _ in log)


def test_a_server_without_edns_is_asked_again_in_plain_dns() -> None:
    """RFC 6891 §7: a server that answers FORMERR (no OPT) to an EDNS query does not do EDNS;
    it is asked again without it. An unsigned zone then resolves; a signed one does not
    become secure (no DO, no RRSIGs: bogus, never a downgrade to insecure)."""
    def no_edns(server: Server, query: dns.message.Message) -> dns.message.Message | None:
        if server not in (INS, EX):
            return None
        if query.edns >= 0:
            r = dns.message.make_response(query)
            r.use_edns(False)
            r.set_rcode(dns.rcode.FORMERR)
            return r
        return authoritative(server, query, False)

    log: list[tuple[Query, bool]] = []
    outcome = iterative("host.insecure.test.", "A", _override(no_edns), log)
    assert judged(outcome).status is Status.INSECURE
    assert [q.edns for q, _ in log if INS in q.servers and q.qname == N("host.insecure.test.")] == [
        True, False]
    assert outcome.evidence.answer and any("asked again without" in n for n in outcome.notes)
    signed = iterative("www.example.test.", "A", _override(no_edns))
    assert judged(signed).status is Status.BOGUS


def test_a_plain_query_has_no_opt_record() -> None:
    q = Query(N("www.example.test."), dns.rdatatype.A, (EX,), edns=False)
    out = q.outgoing()
    assert dns.message.from_wire(out.to_wire()).edns == -1 and out.message().edns == -1
    assert out.to_wire()[:2] == out.message().to_wire()[:2] and out.to_wire() == out.message().to_wire()


@pytest.mark.parametrize("every", [False, True])
def test_every_server_finds_all_of_a_referrals_servers(every: bool) -> None:
    """A referral to glueless.test. naming two servers without glue: resolving, the first
    address found is enough; a parent check (`every_server`) needs them all — the DS must be
    seen at every one of them (RFC 7583 §3.3.2)."""
    other = Server("192.0.2.33")  # the second server: silent here, only its address counts

    def referral(server: Server, query: dns.message.Message) -> dns.message.Message | None:
        q = query.question[0]
        if server == TLD and q.name == N("www.glueless.test."):
            r = dns.message.make_response(query)
            r.authority.append(dns.rrset.from_text("glueless.test.", 3600, "IN", "NS",
                                                   "ns1.example.test.", "ns2.example.test."))
            return r
        if server == EX and q.name in (N("ns1.example.test."), N("ns2.example.test.")):
            r = dns.message.make_response(query)
            r.flags |= dns.flags.AA
            if q.rdtype == dns.rdatatype.A:
                address = "192.0.2.3" if q.name == N("ns1.example.test.") else other.host
                r.answer.append(dns.rrset.from_text(q.name, 300, "IN", "A", address))
            return r
        return None

    res = Resolution(Question(N("www.glueless.test."), dns.rdatatype.A), ROOTS, hints=[ROOT],
                     every_server=every)
    assert isinstance(drive(res, _override(referral)), Gathered)
    assert set(res.zones[N("glueless.test.")].servers) == ({EX, other} if every else {EX})
