"""`sigchain trace` argument handling and delv's verdict wording, without the network (the
real hierarchy is tests/interop/test_trace.py)."""

from __future__ import annotations

import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from sigchain.cli.trace import parse_words
from sigchain.core.resolve.exchange import Failed, Gathered
from sigchain.core.validate.validator import Evidence, Kind, Question, Status, Verdict
from sigchain.errors import InputError
from sigchain.findings import Finding
from sigchain.services.trace import TraceResult
from tests.conftest import sc

Q = Question(dns.name.from_text("www.example."), dns.rdatatype.A)
CNAME = dns.rrset.from_text("www.example.", 60, "IN", "CNAME", "gone.example.")


@pytest.mark.parametrize("words, expected", [
    (("www.example.",), ("www.example.", dns.rdatatype.A, None)),
    (("www.example.", "MX"), ("www.example.", dns.rdatatype.MX, None)),
    (("www.example.", "aaaa", "@127.0.0.1#5353"), ("www.example.", dns.rdatatype.AAAA, "127.0.0.1#5353")),
    (("@::1", "example.", "DNSKEY"), ("example.", dns.rdatatype.DNSKEY, "::1")),
    (("A", "www.example."), ("www.example.", dns.rdatatype.A, None)),  # dig's order too
    (("dnskey", "@::1", "example."), ("example.", dns.rdatatype.DNSKEY, "::1")),
    (("TYPE65534", "example."), ("example.", 65534, None)),
    (("MX", "a"), ("a", dns.rdatatype.MX, None)),  # once the type is known, a type name is a name
])
def test_words_in_any_order(words: tuple[str, ...], expected: tuple[str, int, str | None]) -> None:
    assert parse_words(words) == expected


@pytest.mark.parametrize("words, message", [
    ((), "NAME"), (("a.", "NOPE"), "unknown record type"), (("a.", "A", "b."), "unexpected argument"),
    (("a.", "@1.2.3.4", "@5.6.7.8"), "two servers"),
    (("MX",), "NAME"), (("MX", "a.", "b."), "unexpected argument"),
])
def test_bad_words(words: tuple[str, ...], message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_words(words)


def _result(status: Status, kind: Kind, answer: tuple[dns.rrset.RRset, ...] = (),
            findings: tuple[Finding, ...] = ()) -> TraceResult:
    ev = Evidence(Q, dns.rcode.NXDOMAIN if kind is Kind.NXDOMAIN else 0, answer)
    return TraceResult(Q, "iterative", None, 0, Gathered(ev, ()), Verdict(status, kind, 60, (), findings))


@pytest.mark.parametrize("status, kind, answer, lines, code", [
    (Status.SECURE, Kind.ANSWER, (), ["; fully validated"], 0),
    (Status.SECURE, Kind.NXDOMAIN, (), ["; negative response, fully validated"], 0),
    (Status.SECURE, Kind.NODATA, (), ["; negative response, fully validated"], 0),
    (Status.INSECURE, Kind.ANSWER, (), ["; unsigned answer"], 0),
    (Status.INSECURE, Kind.NXDOMAIN, (), ["; negative response, unsigned answer"], 0),
    (Status.SECURE, Kind.NXDOMAIN, (CNAME,), ["; fully validated", "; negative response, fully validated"], 0),
])
def test_delv_verdict_lines(status: Status, kind: Kind, answer: tuple[dns.rrset.RRset, ...],
                            lines: list[str], code: int) -> None:
    r = _result(status, kind, answer)
    assert r.verdict_lines == lines and r.exit_code() == code


def test_bogus_names_the_first_error_and_exit_codes() -> None:
    f = Finding("RRSIG_EXPIRED", {"algorithm": 13, "tag": 1, "expiration": 1_800_000_000},
                "www.example.", "A")
    r = _result(Status.BOGUS, Kind.ANSWER, findings=(f,))
    assert r.verdict_line == (";; resolution failed: bogus: RRSIG_EXPIRED "
                              "(RRSIG 13/1 expired at 2027-01-15 08:00:00 UTC)")
    assert r.exit_code() == 1
    assert _result(Status.INDETERMINATE, Kind.ANSWER).exit_code() == 1
    assert _result(Status.INSECURE, Kind.ANSWER).exit_code(require_secure=True) == 1
    failed = TraceResult(Q, "server", None, 0, Failed("SERVFAIL from 192.0.2.1", False, ()))
    assert failed.verdict_line == ";; resolution failed: SERVFAIL from 192.0.2.1" and failed.exit_code() == 1
    silent = TraceResult(Q, "server", None, 0, Failed("no answer", True, ()))
    assert silent.status == "unreachable" and silent.exit_code() == 3


def test_help_lists_the_options() -> None:
    p = sc("trace", "--help")
    assert p.returncode == 0
    for option in ("--anchor", "--root-hints", "--cd / --no-cd", "--at", "--json", "--require-secure", "-p"):
        assert option in p.stdout
