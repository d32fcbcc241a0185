"""`sigchain trace` against a real hierarchy served by named (tests/interop/trace_hierarchy.py),
with BIND's `delv` as the oracle: for every scenario sigchain's verdict line equals delv's, in
both trace modes — iterative from the test root hints, and through a validating named resolver
(@SERVER, asked with CD=1). delv asks the same resolver, with the same anchor (`-a`, `+root=.`).

For NXDOMAIN delv prints `;; resolution failed: ncache nxdomain` before its verdict; we compare
the single-`;` verdict line. When delv finds the answer bogus it prints only
`;; resolution failed: …`; then sigchain must say `;; resolution failed: bogus: …` and name the
finding (with its RFC 8914 EDE code) the scenario was built to cause.

The hierarchy is built and served once for the module; every command runs concurrently up
front (two cores: the cost is process start-up) and the tests then read the outcomes.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import dns.dnssec
import pytest

from sigchain.cli.trace import TRACE_KEYS
from tests.conftest import need, run, sc, sigchain_cmd
from tests.interop.hostile_net import SPOOF_IP, silent_servers, spoofing_relay
from tests.interop.trace_hierarchy import PREFIX, RESOLVER_IP, SC_IP, Hierarchy, _dnskeys

FULLY = "; fully validated"
NEGATIVE = "; negative response, fully validated"
UNSIGNED = "; unsigned answer"
NEGATIVE_UNSIGNED = "; negative response, unsigned answer"
BOGUS = ";; resolution failed"  # delv: no verdict line, only the failure
VERDICTS = (FULLY, NEGATIVE, UNSIGNED, NEGATIVE_UNSIGNED)
DEAD_IP = PREFIX + "77"  # in the test range, never configured: nothing answers there


@dataclass(frozen=True)
class Case:
    id: str
    qname: str
    qtype: str
    line: str  # what the scenario is built to give (delv must agree, or the hierarchy is wrong)
    codes: tuple[str, ...] = ()  # finding codes sigchain must report
    ede: int | None = None  # and the RFC 8914 code among its verdict's EDEs

    @property
    def exit(self) -> int:
        return 1 if self.line == BOGUS else 0


CASES = [
    Case("positive-sigchain-nsec", "www.sc.test.", "A", FULLY),
    Case("positive-sigchain-nsec3", "www.sc3.test.", "A", FULLY),
    Case("positive-dnssec-signzone", "www.bind.test.", "A", FULLY),
    Case("positive-ldns-signzone", "www.ldns.test.", "A", FULLY),
    Case("nxdomain-nsec-sigchain", "nope.sc.test.", "A", NEGATIVE),
    Case("nxdomain-nsec-dnssec-signzone", "nope.bind.test.", "A", NEGATIVE),
    Case("nodata-nsec", "www.sc.test.", "MX", NEGATIVE),
    Case("nxdomain-nsec3-sigchain", "nope.sc3.test.", "A", NEGATIVE),
    Case("nodata-nsec3-sigchain", "www.sc3.test.", "MX", NEGATIVE),
    Case("nodata-nsec3-empty-non-terminal", "b.c.sc3.test.", "A", NEGATIVE),
    Case("nxdomain-nsec3-dnssec-signzone", "nope.bind3.test.", "A", NEGATIVE),
    Case("nodata-nsec3-dnssec-signzone", "www.bind3.test.", "TXT", NEGATIVE),
    Case("nxdomain-nsec3-ldns-signzone", "nope.ldns.test.", "A", NEGATIVE),
    Case("wildcard-nsec", "x.wild.sc.test.", "TXT", FULLY),
    Case("wildcard-nsec3", "x.wild.sc3.test.", "TXT", FULLY),
    Case("wildcard-dnssec-signzone", "x.y.wild.bind.test.", "TXT", FULLY),
    Case("wildcard-ldns-signzone", "x.wild.ldns.test.", "TXT", FULLY),
    Case("optout-insecure-delegation", "host.unsigned.optout.test.", "A", UNSIGNED),
    Case("unsigned-delegation", "www.unsigned.test.", "A", UNSIGNED),
    Case("unsigned-delegation-nxdomain", "nope.unsigned.test.", "A", NEGATIVE_UNSIGNED),
    Case("cname-into-another-zone", "alias.sc.test.", "A", FULLY),
    Case("cname-to-nxdomain-in-another-zone", "dangling.sc.test.", "A", FULLY),
    Case("dname-into-another-zone", "www.old.sc.test.", "A", FULLY),
    Case("dname-to-nxdomain-in-another-zone", "nope.old.sc.test.", "A", FULLY),
    Case("dname-cname-asked", "www.old.sc.test.", "CNAME", FULLY),
    Case("tcp-fallback", "big.sc.test.", "TXT", FULLY),
    Case("break-ds-mismatch", "www.dsmismatch.test.", "A", BOGUS, ("DS_NO_MATCHING_DNSKEY",), 9),
    Case("break-expired-rrsig", "www.expired.test.", "A", BOGUS, ("RRSIG_EXPIRED",), 7),
    Case("break-not-yet-valid", "www.future.test.", "A", BOGUS, ("RRSIG_NOT_YET_VALID",), 8),
    Case("break-tampered-rdata", "www.tampered.test.", "A", BOGUS, ("RRSIG_BAD_SIGNATURE",), 6),
    Case("break-rrsigs-stripped", "www.stripped.test.", "A", BOGUS, ("RRSIG_MISSING",), 10),
    Case("break-unsupported-algorithm", "www.dsa.test.", "A", UNSIGNED, ("ALGORITHM_UNSUPPORTED",), 1),
    Case("break-nsec3-200-iterations", "nope.iter200.test.", "A", NEGATIVE_UNSIGNED,
         ("NSEC3_ITERATIONS_TOO_HIGH",), 27),
    Case("keytrap-decoy-keys-and-signatures", "www.keytrap.test.", "TXT", BOGUS, ("WORK_LIMIT_EXCEEDED",), 6),
]
IDS = [c.id for c in CASES]


@dataclass(frozen=True)
class Outcome:
    delv: subprocess.CompletedProcess[str]
    iterative: subprocess.CompletedProcess[str]  # text output, -v
    server: subprocess.CompletedProcess[str]  # --json

    @property
    def server_json(self) -> dict:  # type: ignore[type-arg]
        try:
            return json.loads(self.server.stdout)  # type: ignore[no-any-return]
        except json.JSONDecodeError:
            raise AssertionError(f"no JSON from trace:\n{self.server.stdout}\n{self.server.stderr}") from None


def delv_verdict(output: str) -> str:
    """delv's single-`;` verdict line, or BOGUS when it only reports a failure."""
    lines = output.splitlines()
    for line in lines:
        if line in VERDICTS:
            return line
    if any(line.startswith(";; resolution failed:") for line in lines):
        return BOGUS
    raise AssertionError(f"no verdict in delv output:\n{output}")


def trace_verdict(output: str) -> str:
    first = output.splitlines()[0] if output else ""
    if first in VERDICTS:
        return first
    if first.startswith(";; resolution failed: bogus:"):
        return BOGUS
    raise AssertionError(f"unexpected first line from sigchain trace:\n{output}")


def _sc(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(sigchain_cmd() + [str(a) for a in args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hierarchy]:
    if os.geteuid() != 0:
        pytest.fail("the trace hierarchy adds addresses to lo and runs named: run the tests as root")
    need("named")
    need("delv")
    h = Hierarchy(tmp_path_factory.mktemp("trace"))
    try:
        h.build()
        h.start()
        yield h
    finally:
        h.stop()


@pytest.fixture(scope="module")
def outcomes(net: Hierarchy) -> dict[str, Outcome]:
    delv = need("delv")

    def one(case: Case) -> Outcome:
        d = subprocess.run([delv, f"@{RESOLVER_IP}", "-4", "-a", str(net.bind_anchor), "+root=.",
                            case.qname, case.qtype], capture_output=True, text=True, timeout=60)
        it = _sc("trace", case.qname, case.qtype, "--root-hints", net.hints, "--anchor", net.bind_anchor, "-v")
        sv = _sc("trace", case.qname, case.qtype, f"@{RESOLVER_IP}", "--anchor", net.zone_anchor, "--json")
        return Outcome(d, it, sv)

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(IDS, pool.map(one, CASES), strict=True))


# ---------------------------------------------------------------------------------------------
# The verdict matrix: delv and both trace modes
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_delv_gives_the_scenario_verdict(outcomes: dict[str, Outcome], case: Case) -> None:
    """The oracle sees what each scenario was built for (else the hierarchy is wrong)."""
    o = outcomes[case.id]
    assert delv_verdict(o.delv.stdout + o.delv.stderr) == case.line, o.delv.stdout + o.delv.stderr


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_iterative_trace_matches_delv(outcomes: dict[str, Outcome], case: Case) -> None:
    o = outcomes[case.id]
    out = o.iterative.stdout
    assert trace_verdict(out) == delv_verdict(o.delv.stdout + o.delv.stderr), out + o.iterative.stderr
    assert o.iterative.returncode == case.exit, out + o.iterative.stderr
    assert "iterative from the root hints" in out
    for code in case.codes:
        assert code in out, out


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_server_trace_matches_delv(outcomes: dict[str, Outcome], case: Case) -> None:
    o = outcomes[case.id]
    data = o.server_json
    assert trace_verdict(data["verdict_line"]) == delv_verdict(o.delv.stdout + o.delv.stderr), data
    assert o.server.returncode == data["exit_code"] == case.exit
    assert data["mode"] == "server" and data["recursive"] is True
    assert all(q["flags"].split().count("cd") for q in data["queries"])  # CD=1 to a resolver
    codes = {f["code"] for f in data["verdict"]["findings"]}
    assert set(case.codes) <= codes, data["verdict"]["findings"]
    if case.ede is not None:
        assert case.ede in data["verdict"]["ede"]
    for f in data["verdict"]["findings"]:  # every finding carries its RFC and EDE code
        assert f["rfc"] and "ede" in f


# ---------------------------------------------------------------------------------------------
# What particular scenarios must show
# ---------------------------------------------------------------------------------------------


def test_chain_is_reported_zone_by_zone_from_the_anchor(outcomes: dict[str, Outcome]) -> None:
    data = outcomes["positive-dnssec-signzone"].server_json
    assert [(z["zone"], z["status"]) for z in data["zones"]] == [
        (".", "secure"), ("test.", "secure"), ("bind.test.", "secure")]
    root = data["zones"][0]["links"]
    assert root[0]["kind"] == "anchor" and root[0]["type"] == "DNSKEY"
    kinds = {(z["zone"], link["kind"], link["type"]) for z in data["zones"] for link in z["links"]}
    assert {("test.", "ds", "DNSKEY"), ("bind.test.", "ds", "DNSKEY"), ("bind.test.", "rrsig", "A")} <= kinds
    text = outcomes["positive-dnssec-signzone"].iterative.stdout
    assert text.index(";;   .  [secure]") < text.index(";;   test.  [secure]") < text.index(
        ";;   bind.test.  [secure]")


def test_tcp_fallback_for_an_answer_too_large_for_udp(outcomes: dict[str, Outcome]) -> None:
    o = outcomes["tcp-fallback"]
    assert "big.sc.test. TXT (sc.test.) question: NOERROR [qr aa] from 127.54.0.3 over TCP" in o.iterative.stdout
    question = [q for q in o.server_json["queries"] if q["purpose"] == "question"]
    assert question and question[0]["tcp"] is True and question[0]["size"] > 1232
    assert len([line for line in o.server_json["answer"] if " IN TXT " in line]) == 8


def test_cname_into_another_zone_resolves_the_target_there(outcomes: dict[str, Outcome]) -> None:
    o = outcomes["cname-into-another-zone"]
    assert "www.bind.test. A (bind.test.) CNAME target: NOERROR" in o.iterative.stdout
    zones = {z["zone"]: z["status"] for z in o.server_json["zones"]}
    assert zones["sc.test."] == zones["bind.test."] == "secure"
    dangling = outcomes["cname-to-nxdomain-in-another-zone"]
    assert dangling.iterative.stdout.splitlines()[:2] == [FULLY, NEGATIVE]
    assert dangling.server_json["rcode"] == "NXDOMAIN"


def test_insecure_delegations_show_the_proof_of_no_ds(outcomes: dict[str, Outcome]) -> None:
    for case, parent, child in [("unsigned-delegation", "test.", "unsigned.test."),
                                ("optout-insecure-delegation", "optout.test.", "unsigned.optout.test.")]:
        data = outcomes[case].server_json
        zones = {z["zone"]: z for z in data["zones"]}
        assert zones[child]["status"] == "insecure"
        no_ds = [link for link in zones[parent]["links"] if link["kind"] == "no-ds"]
        assert no_ds and no_ds[0]["name"] == child, zones[parent]
        if case.startswith("optout"):
            assert "opt-out" in no_ds[0]["detail"]


def test_exhausting_zone_ends_within_the_caps_naming_them(outcomes: dict[str, Outcome]) -> None:
    """keytrap.test.: nine DNSKEYs share a key tag and www TXT has twelve RRSIGs naming it,
    none valid. The trace stops at the caps (4 keys per tag, 8 verifications per RRset)."""
    for o in (outcomes["keytrap-decoy-keys-and-signatures"],):
        data = o.server_json
        assert data["status"] == "bogus"
        limits = [f["message"] for f in data["verdict"]["findings"] if f["code"] == "WORK_LIMIT_EXCEEDED"]
        assert any("max_keys_per_tag (4)" in m for m in limits), limits
        assert any("max_verifications_per_rrset (8)" in m for m in limits), limits
        assert "WORK_LIMIT_EXCEEDED" in o.iterative.stdout and "max_keys_per_tag" in o.iterative.stdout


def test_unsupported_algorithm_and_high_iterations_are_insecure_with_their_ede(outcomes: dict[str, Outcome]) -> None:
    dsa = outcomes["break-unsupported-algorithm"].server_json
    assert {z["zone"]: z["status"] for z in dsa["zones"]}["dsa.test."] == "insecure"
    assert dsa["verdict"]["ede"] == [1]
    it = outcomes["break-nsec3-200-iterations"].server_json
    assert it["rcode"] == "NXDOMAIN" and it["verdict"]["ede"] == [27]


# ---------------------------------------------------------------------------------------------
# @SERVER variants, anchors, options and failures
# ---------------------------------------------------------------------------------------------


def test_authoritative_server_with_the_zones_own_ksk_as_anchor(net: Hierarchy) -> None:
    """@SERVER is sc.test.'s authoritative server (no RA: RD=0, CD=0 after the first query),
    anchored at the zone's own KSK in zone-file DNSKEY syntax; ADDR#PORT and -p both work."""
    anchor = net.leaf_ksk_anchor("sc.test.")
    for server in ([f"@{SC_IP}#53"], [f"@{SC_IP}", "-p", "53"]):
        p = sc("trace", "www.sc.test.", *server, "--anchor", anchor, "--json")
        data = json.loads(p.stdout)
        assert (p.returncode, data["verdict_line"], data["recursive"]) == (0, FULLY, False), p.stdout
        assert [z["zone"] for z in data["zones"]] == ["sc.test."]
        assert data["zones"][0]["links"][0]["kind"] == "anchor"
        assert all("rd" not in q["flags"].split() for q in data["queries"][1:])
    # the same server, anchored at the root it cannot speak for: the chain cannot be built
    p = sc("trace", "www.sc.test.", f"@{SC_IP}", "--anchor", net.zone_anchor)
    assert p.returncode == 1 and "DNSKEY_MISSING" in p.stdout and "note: . DNSKEY: REFUSED" in p.stdout


def test_no_cd_lets_the_validating_resolver_answer_servfail(net: Hierarchy) -> None:
    p = sc("trace", "www.expired.test.", f"@{RESOLVER_IP}", "--no-cd", "--anchor", net.zone_anchor)
    assert p.returncode == 1
    assert p.stdout.startswith(f";; resolution failed: SERVFAIL from {RESOLVER_IP} for www.expired.test. A")
    ok = sc("trace", "www.sc.test.", f"@{RESOLVER_IP}", "--no-cd", "--anchor", net.zone_anchor)
    assert ok.returncode == 0 and ok.stdout.startswith(FULLY)


def test_require_secure_fails_an_insecure_answer(net: Hierarchy) -> None:
    args = ["trace", "www.unsigned.test.", "--root-hints", net.hints, "--anchor", net.bind_anchor]
    assert sc(*args).returncode == 0
    p = sc(*args, "--require-secure")
    assert p.returncode == 1 and p.stdout.startswith(UNSIGNED)
    assert sc("trace", "www.sc.test.", "--root-hints", net.hints, "--anchor", net.bind_anchor,
              "--require-secure").returncode == 0


def test_at_time_validates_as_of_then(net: Hierarchy) -> None:
    """Signatures made now by `sigchain sign` last 14 days: in 20 days the chain is expired."""
    p = sc("trace", "www.sc.test.", "--root-hints", net.hints, "--anchor", net.zone_anchor, "--at", "now+20d")
    assert p.returncode == 1 and "RRSIG_EXPIRED" in p.stdout
    p = sc("trace", "www.future.test.", "--root-hints", net.hints, "--anchor", net.zone_anchor, "--at", "now+11d")
    assert p.returncode == 0 and p.stdout.startswith(FULLY)


def test_builtin_iana_anchors_do_not_match_a_test_root(net: Hierarchy) -> None:
    """Without --anchor the IANA root KSKs (20326, 38696) are the anchors: the test root is
    signed by other keys, so the chain is bogus at the root — and says which anchors it tried."""
    p = sc("trace", "www.sc.test.", "--root-hints", net.hints, "--json")
    data = json.loads(p.stdout)
    assert p.returncode == 1 and data["status"] == "bogus"
    [f] = [f for f in data["verdict"]["findings"] if f["code"] == "DS_NO_MATCHING_DNSKEY"]
    assert "DS 20326/8/2" in f["message"] and "DS 38696/8/2" in f["message"]


def test_refusing_server_fails_at_once_with_one_message_on_stderr(net: Hierarchy) -> None:
    """Nothing listens on DEAD_IP: ICMP port unreachable ends the exchange at once (as delv
    says `connection refused`), not after the per-server timeout; exit 3, said once."""
    p = sc("trace", "www.sc.test.", f"@{DEAD_IP}", "--anchor", net.zone_anchor)
    assert p.returncode == 3 and p.stdout == ""
    assert p.stderr == f";; resolution failed: no answer from {DEAD_IP}: connection refused\n"
    hints = net.base / "dead.hints"
    hints.write_text(f". NS ns.dead.\nns.dead. A {DEAD_IP}\n")
    p = sc("trace", "www.sc.test.", "--root-hints", hints, "--anchor", net.zone_anchor, "--json")
    data = json.loads(p.stdout)
    assert p.returncode == data["exit_code"] == 3 and p.stderr == ""
    assert data["status"] == "unreachable" and data["failure"]["unreachable"] is True
    assert data["unanswered"] == [{"server": DEAD_IP, "error": "connection refused"}]
    # The same top-level keys for a bogus trace, a failed one and an input error (issue 13).
    bogus = json.loads(sc("trace", "www.sc.test.", "--root-hints", net.hints, "--json").stdout)
    error = json.loads(sc("trace", "bad..name", "--json").stdout)
    assert error["error"]["exit"] == 2 and data["error"] is None and bogus["error"] is None
    assert set(data) == set(bogus) == set(error) == {*TRACE_KEYS, "error"}


def test_spoofed_replies_racing_every_answer_are_ignored(net: Hierarchy) -> None:
    """RFC 5452: a relay in front of the resolver sends, before every real answer, a reply
    with the wrong ID, one with the right ID for another question and a non-DNS datagram to
    the client's port (and a forged reply from another port, which the connected socket never
    sees). Each is ignored and counted; the trace still validates."""
    with spoofing_relay(RESOLVER_IP) as relay:
        p = _sc("trace", "www.sc.test.", f"@{SPOOF_IP}", "--anchor", net.zone_anchor, "-v")
        j = _sc("trace", "www.sc.test.", "A", f"@{SPOOF_IP}", "--anchor", net.zone_anchor, "--json")
        forged = relay.forged
    assert p.returncode == 0 and p.stdout.startswith(FULLY + "\n"), p.stdout + p.stderr
    data = json.loads(j.stdout)
    assert j.returncode == 0 and data["verdict_line"] == FULLY
    queries = data["queries"]
    assert queries and all(q["ignored"] == 3 for q in queries)
    assert data["ignored_replies"] == 3 * len(queries) and forged == 6 * len(queries)
    print(f"{forged} forged replies over {2 * len(queries)} queries, all ignored")
    assert f"({3 * len(queries)} non-matching replies ignored, RFC 5452)" in p.stdout


def test_silent_servers_are_remembered_and_skipped(net: Hierarchy) -> None:
    """Root hints list a silent server and a refusing one before the real root: each is tried
    once, then skipped for the rest of the trace (the root zone is asked three times), and
    the report names them."""
    hints = net.base / "silent.hints"
    with silent_servers(1) as [silent]:
        hints.write_text(f". NS a.silent.\n. NS b.dead.\n. NS ns.root.\na.silent. A {silent.address}\n"
                         f"b.dead. A {DEAD_IP}\nns.root. A {PREFIX}1\n")
        p = sc("trace", "www.sc.test.", "--root-hints", hints, "--anchor", net.zone_anchor, "--json")
        received = silent.received
    data = json.loads(p.stdout)
    assert p.returncode == 0 and data["verdict_line"] == FULLY
    assert data["unanswered"] == [{"server": silent.address, "error": "timed out"},
                                  {"server": DEAD_IP, "error": "connection refused"}]
    assert sum(q["zone"] == "." for q in data["queries"]) >= 3 and received == 1


def test_time_budget_ends_the_trace_and_names_what_timed_out(net: Hierarchy) -> None:
    hints = net.base / "silent2.hints"
    with silent_servers(2) as [first, second]:
        hints.write_text(f". NS a.silent.\n. NS b.silent.\na.silent. A {first.address}\n"
                         f"b.silent. A {second.address}\n")
        start = time.monotonic()
        p = sc("trace", "www.sc.test.", "--root-hints", hints, "--anchor", net.zone_anchor,
               "--timeout", "1.5")
        elapsed = time.monotonic() - start
    print(f"trace with a 1.5 s budget ended after {elapsed:.2f} s")
    assert p.returncode == 3 and p.stdout == "" and elapsed < 1.5 + 2.0
    assert p.stderr == (";; resolution failed: time budget of 1.5 s spent after 1 query; "
                        f"no answer from {first.address} (timed out)\n")


def test_bogus_ds_link_lists_both_sides_key_tags(net: Hierarchy, outcomes: dict[str, Outcome]) -> None:
    """dsmismatch.test.: the DS in test. names another KSK; the report puts the DS's key tags
    beside the zone's DNSKEYs."""
    [wrong] = _dnskeys(net.base / "dsmismatch-wrong", "dsmismatch.test.")
    [key] = _dnskeys(net.base / "dsmismatch.test" / "keys", "dsmismatch.test.")
    o = outcomes["break-ds-mismatch"]
    wrong_tag, tag = (dns.dnssec.key_id(k) for k in (wrong, key))  # type: ignore[arg-type]
    assert o.server_json["key_tags"] == [{
        "zone": "dsmismatch.test.", "ds": [{"tag": wrong_tag, "algorithm": 13, "digest_type": 2}],
        "dnskey": [{"tag": tag, "algorithm": 13, "flags": 257}]}]
    assert f"{wrong_tag:>7}   13  digest 2     -" in o.iterative.stdout
    assert f"{tag:>7}   13  -            KSK" in o.iterative.stdout


@pytest.mark.parametrize("args, message", [
    (["www.sc.test.", "@127.54.0.1", "--root-hints", "{hints}"], "cannot go with @SERVER"),
    (["www.sc.test.", "-p", "53", "--root-hints", "{hints}"], "-p PORT applies to @SERVER"),
    (["www.sc.test.", "@not-an-address"], "bad server"),
    (["www.sc.test.", "NOTATYPE"], "unknown record type"),
    (["www.sc.test.", "--anchor", "{bad_anchor}"], "bad.anchor:1: example. A: not a DS or DNSKEY"),
])
def test_bad_input_exits_2(net: Hierarchy, args: list[str], message: str) -> None:
    bad = net.base / "bad.anchor"
    bad.write_text("example. IN A 192.0.2.1\n")
    p = sc("trace", *[a.format(hints=net.hints, bad_anchor=bad) for a in args])
    assert p.returncode == 2 and message in p.stderr, p.stderr


def test_servers_run_on_their_own_loopback_addresses(net: Hierarchy) -> None:
    """Every server's /32 is on lo while the module runs (the fixture removes those it added)."""
    out = run(["ip", "-o", "-4", "addr", "show", "dev", "lo"]).stdout
    for n in net.named:
        assert f"{n.address}/32" in out and n.proc is not None and n.proc.poll() is None
