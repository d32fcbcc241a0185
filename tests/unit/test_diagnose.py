"""The diagnose classifier (pure): evidence from the resolver and the chain → one cause."""

from __future__ import annotations

import dns.rcode
import pytest

from sigchain.core.diagnose.classify import Cause, Observations, ResolverAnswer, classify
from sigchain.findings import Finding

SERVFAIL = ResolverAnswer(dns.rcode.SERVFAIL, False)
OK_AD = ResolverAnswer(dns.rcode.NOERROR, True, ("A",), ("A",))
OK_SIGNED = ResolverAnswer(dns.rcode.NOERROR, False, ("A",), ("A",))
OK_BARE = ResolverAnswer(dns.rcode.NOERROR, False, ("A",), ())
NXD = ResolverAnswer(dns.rcode.NXDOMAIN, True)
ROOT_KEYS = ResolverAnswer(dns.rcode.NOERROR, False, ("DNSKEY",), ("DNSKEY",))
ROOT_KEYS_BARE = ResolverAnswer(dns.rcode.NOERROR, False, ("DNSKEY",), ())


def ds_mismatch(source: str = "DS") -> Finding:
    return Finding("DS_NO_MATCHING_DNSKEY", {"zone": "dnssec-failed.test.", "source": source,
                                             "records": "DS 14027/13/2"},
                   "dnssec-failed.test.", "DNSKEY")


EXPIRED = Finding("RRSIG_EXPIRED", {"algorithm": 13, "tag": 4711, "expiration": 1_700_000_000},
                  "www.example.test.", "A")
NOT_YET = Finding("RRSIG_NOT_YET_VALID", {"algorithm": 13, "tag": 4711,
                                          "inception": 1_900_000_000}, "www.example.test.", "A")
NO_SIG = Finding("RRSIG_MISSING", {"algorithm": 13, "zone": "example.test."},
                 "www.example.test.", "A")
NO_KEYS = Finding("NO_DNSKEY", {"zone": "example.test."}, "example.test.", "DNSKEY")
ALG = Finding("ALGORITHM_UNSUPPORTED", {"source": "DS", "algorithms": "253", "zone": "x.test."},
                 "x.test.", "DS")


def case(status: str, *findings: Finding, kind: str = "answer", plain: ResolverAnswer | None = OK_AD,
         cd: ResolverAnswer | None = OK_SIGNED, **kw: object) -> Observations:
    return Observations(trace_status=status, trace_kind=kind, findings=findings, plain=plain,
                        cd=cd, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("obs", "cause", "exit_code"), [
    (case("secure"), Cause.SECURE, 0),
    (case("insecure", plain=OK_BARE, cd=OK_BARE), Cause.INSECURE, 0),
    (case("bogus", ds_mismatch(), plain=SERVFAIL), Cause.DS_MISMATCH, 1),
    (case("bogus", ds_mismatch("trust anchor"), plain=SERVFAIL), Cause.TRUST_ANCHOR_STALE, 1),
    (case("bogus", EXPIRED, plain=SERVFAIL), Cause.RRSIG_EXPIRED, 1),
    (case("bogus", NOT_YET, plain=SERVFAIL), Cause.RRSIG_NOT_YET_VALID, 1),
    (case("bogus", NO_SIG, plain=SERVFAIL), Cause.RRSIGS_STRIPPED, 1),
    (case("bogus", NO_KEYS, plain=SERVFAIL), Cause.DNSKEY_MISSING, 1),
    (case("insecure", ALG, plain=OK_BARE), Cause.UNSUPPORTED_ALGORITHM, 1),
    # the authoritative chain is fine; the resolver's own path tells the cause
    (case("secure", plain=SERVFAIL, cd=OK_BARE), Cause.RRSIGS_STRIPPED, 1),
    (case("secure", plain=SERVFAIL, cd=OK_SIGNED, root_plain=SERVFAIL), Cause.TRUST_ANCHOR_STALE, 1),
    (case("secure", plain=SERVFAIL, cd=OK_SIGNED, root_plain=SERVFAIL, root_cd=ROOT_KEYS),
     Cause.TRUST_ANCHOR_STALE, 1),
    # a denial (no data to look at) behind a stripping middlebox: the root's keys tell
    (case("secure", kind="nxdomain", plain=SERVFAIL, cd=NXD, root_plain=SERVFAIL,
          root_cd=ROOT_KEYS_BARE), Cause.RRSIGS_STRIPPED, 1),
    (case("secure", kind="nxdomain", plain=SERVFAIL, cd=NXD, root_plain=SERVFAIL,
          root_cd=ResolverAnswer(dns.rcode.NOERROR, False)), Cause.RRSIGS_STRIPPED, 1),
    (case("secure", plain=SERVFAIL, cd=OK_SIGNED, root_plain=OK_AD), Cause.RESOLVER_FAILURE, 1),
    (case("secure", plain=SERVFAIL, cd=None, udp_large_lost=True), Cause.EDNS_TRUNCATION, 1),
    (case("secure", kind="nxdomain", plain=SERVFAIL, cd=SERVFAIL, root_plain=OK_AD,
          largest_reply=700), Cause.EDNS_TRUNCATION, 1),
    # small answers failing the same way are not the 512-byte limit; failing with CD too,
    # the resolver cannot resolve at all: the +cd test says not DNSSEC
    (case("secure", kind="nxdomain", plain=SERVFAIL, cd=SERVFAIL, root_plain=OK_AD,
          largest_reply=400), Cause.RESOLVER_OUTAGE, 3),
    (case("secure", plain=SERVFAIL, cd=SERVFAIL, root_plain=OK_AD), Cause.RESOLVER_OUTAGE, 3),
    (case("secure", plain=SERVFAIL, cd=None, root_plain=OK_AD), Cause.RESOLVER_FAILURE, 1),
    (case("unreachable", plain=None, cd=None, trace_reason="no server of x. answered"),
     Cause.SERVERS_UNREACHABLE, 3),
    (case("failed", plain=SERVFAIL, cd=SERVFAIL), Cause.SERVERS_UNREACHABLE, 3),
    (case("secure", kind="nxdomain", plain=NXD, cd=NXD), Cause.NXDOMAIN, 3),
    # the resolver, not the authoritative servers, is down (their chain validates)
    (case("secure", plain=None, cd=None, resolver_error="timed out"), Cause.RESOLVER_UNREACHABLE, 3),
    # diagnose's own anchor is stale, the resolver's is not: it validates (AD)
    (case("bogus", ds_mismatch("trust anchor"), plain=OK_AD), Cause.ANCHOR_GIVEN_STALE, 2),
    (case("bogus", ds_mismatch("trust anchor"), kind="nxdomain", plain=NXD, cd=NXD),
     Cause.ANCHOR_GIVEN_STALE, 2),
])
def test_cause_and_exit_code(obs: Observations, cause: Cause, exit_code: int) -> None:
    d = classify(obs)
    assert d.cause is cause, d.reason
    assert d.exit_code == exit_code
    assert d.to_dict()["cause"] == cause.value
    assert d.fix


def test_a_broken_chain_names_its_failing_link_and_wins_over_the_resolver_view() -> None:
    d = classify(case("bogus", EXPIRED, ds_mismatch(), plain=SERVFAIL, cd=OK_BARE))
    assert d.cause is Cause.DS_MISMATCH  # the DS link is above the signatures it would check
    assert d.failing is not None and d.failing.code == "DS_NO_MATCHING_DNSKEY"
    assert "14027" in d.reason


def test_stripping_needs_the_authoritative_servers_to_sign() -> None:
    """A resolver SERVFAILing an unsigned answer is not a stripping middlebox."""
    d = classify(case("insecure", plain=SERVFAIL, cd=OK_BARE))
    assert d.cause is Cause.RESOLVER_FAILURE
    assert any("insecure" in n for n in d.notes)


def test_a_secure_chain_behind_a_non_validating_resolver_is_noted() -> None:
    d = classify(case("secure", plain=OK_SIGNED))
    assert d.cause is Cause.SECURE
    assert any("does not validate" in n for n in d.notes)


def test_the_size_that_points_at_truncation_is_the_questions_own_zones() -> None:
    """A resolver that cannot reach a zone SERVFAILs with CD too; that is no EDNS truncation
    because the root's DNSKEY reply (over 512 bytes anywhere) was large: only the replies of
    the servers that answered the question count. Through one server, every reply counts."""
    import dns.name

    from sigchain.core.diagnose.classify import largest_own_reply
    from sigchain.core.resolve.exchange import Exchange, Query
    from sigchain.core.validate.anchors import Server

    n = dns.name.from_text
    s = Server("192.0.2.1")

    def ex(qname: str, zone: str | None, purpose: str, size: int) -> Exchange:
        return Exchange(Query(n(qname), 1, (s,), zone=n(zone) if zone else None, purpose=purpose),
                        s, "NOERROR", size=size)

    trace = [ex("www.example.", ".", "question", 400), ex("www.example.", "example.", "question", 300),
             ex(".", ".", "DNSKEY link", 1139), ex("example.", "example.", "DNSKEY link", 450)]
    assert largest_own_reply(trace) == 450
    assert largest_own_reply([*trace, ex("www.example.", "example.", "question", 900)]) == 900
    through = [ex("www.example.", None, "question", 300), ex(".", None, "DNSKEY link", 1139)]
    assert largest_own_reply(through) == 1139
    assert largest_own_reply([]) == 0


def test_a_large_answer_lost_over_udp_but_delivered_over_tcp_is_noted() -> None:
    """The resolver validates (over TCP, after its UDP answer got lost on the way to the
    stub): the chain is SECURE, but clients asking over UDP only time out — said in a note."""
    d = classify(case("secure", udp_large_lost=True))
    assert d.cause is Cause.SECURE and any("UDP" in n and "TCP" in n for n in d.notes)
    assert not classify(case("secure")).notes
