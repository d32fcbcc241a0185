"""Differential: `sigchain resolver` and Unbound on the same servers, anchors and hints give the
same RCODE and AD flag for every name and type in a list covering the lab (127.53.x: its
Unbound on 127.53.1.1, sigchain on 127.53.1.3) and the trace hierarchy with its breaks (127.54.x:
Unbound on 127.55.0.2, sigchain on 127.55.0.3)."""

from __future__ import annotations

import concurrent.futures
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from sigchain.core.lab import hierarchy as lab_hierarchy
from sigchain.core.validate.verdict import Status
from sigchain.services.resolver import ResolverService
from sigchain.services.resolverconfig import from_flags
from tests.conftest import need, sigchain_cmd, terminate
from tests.interop.test_resolver import RESOLVER as LAB_SIGCHAIN
from tests.interop.test_resolver import _wait_ready, lab  # noqa: F401 (the lab fixture)
from tests.interop.test_trace import CASES as TRACE_CASES
from tests.interop.trace_hierarchy import Hierarchy

LAB_UNBOUND = lab_hierarchy.RESOLVERS["unbound"]
NET_UNBOUND, NET_SIGCHAIN = "127.55.0.2", "127.55.0.3"

LAB_QUESTIONS = [(f"{label}{zone}", rdtype)
                 for zone in ("example.test.", "nsec.test.", "insecure.test.", "optout.test.",
                              "unsigned.optout.test.", "dnssec-failed.test.")
                 for label, rdtype in (("www.", "A"), ("www.", "AAAA"), ("mail.", "A"),
                                       ("nope.", "A"), ("www.", "MX"), ("", "DNSKEY"),
                                       ("", "SOA"), ("x.wild.", "A"), ("web.", "A"),
                                       ("www.", "ANY"), ("wild.", "ANY"), ("www.", "RRSIG"),
                                       ("nope.", "RRSIG"), ("wild.", "RRSIG"), ("x.wild.", "RRSIG"),
                                       ("x.wild.", "DS"), ("www.", "MAILB"), ("www.", "TKEY"),
                                       ("www.", "TYPE200"), ("www.", "TYPE65534"))] + [
    ("test.", "DS"), ("example.test.", "DS"), ("insecure.test.", "DS"), (".", "NS"), (".", "DS"),
    ("nope.", "A"), ("nope.test.", "A")]
NET_QUESTIONS = [(c.qname, c.qtype) for c in TRACE_CASES] + [
    ("www.old.sc.test.", "ANY"), ("old.sc.test.", "DNAME"), ("x.old.sc.test.", "MX")]


def unbound_conf(d: Path, address: str, hints: Path, anchor: Path) -> Path:
    conf = d / "unbound.conf"
    conf.write_text(f"""server:
	username: ""
	chroot: ""
	directory: "{d}"
	pidfile: "{d}/unbound.pid"
	use-syslog: no
	logfile: "{d}/unbound.log"
	interface: {address}
	port: 53
	interface-automatic: no
	do-ip6: no
	access-control: 127.0.0.0/8 allow
	do-not-query-localhost: no
	local-zone: "test." nodefault
	root-hints: "{hints}"
	trust-anchor-file: "{anchor}"
	module-config: "validator iterator"
	aggressive-nsec: yes
	num-threads: 1
remote-control:
	control-enable: no
""")
    return conf


def start_resolver(d: Path, address: str, hints: Path, anchor: Path) -> subprocess.Popen:  # type: ignore[type-arg]
    log = d / "sigchain-resolver.log"
    with log.open("w") as out:
        proc = subprocess.Popen([*sigchain_cmd(), "resolver", "--listen", address, "--anchor",
                                 str(anchor), "--root-hints", str(hints)],
                                stdout=out, stderr=subprocess.STDOUT)
    _wait_ready(proc, log)
    return proc


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Hierarchy, Path]]:
    h = Hierarchy(tmp_path_factory.mktemp("rnet"))
    d = tmp_path_factory.mktemp("rnet-unbound")
    procs: list[subprocess.Popen] = []  # type: ignore[type-arg]
    try:
        h.build()
        h.start()
        conf = unbound_conf(d, NET_UNBOUND, h.hints, h.zone_anchor)
        procs.append(subprocess.Popen([need("unbound"), "-d", "-c", str(conf)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        procs.append(start_resolver(d, NET_SIGCHAIN, h.hints, h.zone_anchor))
        yield h, d
    finally:
        for p in procs:
            terminate(p)
        h.stop()


def outcome(server: str, qname: str, qtype: str) -> tuple[str, bool]:
    q = dns.message.make_query(qname, qtype, use_edns=0, want_dnssec=True, payload=1232)
    for _ in range(3):
        try:
            r, _tcp = dns.query.udp_with_fallback(q, server, timeout=6)
            return dns.rcode.to_text(r.rcode()), bool(r.flags & dns.flags.AD)
        except dns.exception.Timeout:
            time.sleep(0.2)
    return "timeout", False


def compare(questions: list[tuple[str, str]], ours: str, theirs: str) -> dict[str, tuple]:  # type: ignore[type-arg]
    def one(q: tuple[str, str]) -> tuple:  # type: ignore[type-arg]
        return outcome(ours, *q), outcome(theirs, *q)

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        return {f"{n} {t}": r for (n, t), r in zip(questions, pool.map(one, questions), strict=True)}


@pytest.fixture(scope="module")
def lab_results(lab: Path) -> Iterator[dict[str, tuple]]:  # type: ignore[type-arg]  # noqa: F811
    proc = start_resolver(lab, LAB_SIGCHAIN, lab / "root.hints", lab / "anchor.ds")
    try:
        yield compare(LAB_QUESTIONS, LAB_SIGCHAIN, LAB_UNBOUND)
    finally:
        terminate(proc)


@pytest.fixture(scope="module")
def net_results(net: tuple[Hierarchy, Path]) -> dict[str, tuple]:  # type: ignore[type-arg]
    return compare(NET_QUESTIONS, NET_SIGCHAIN, NET_UNBOUND)


@pytest.mark.parametrize("question", [f"{n} {t}" for n, t in LAB_QUESTIONS])
def test_lab_rcode_and_ad_equal_unbounds(lab_results: dict[str, tuple], question: str) -> None:  # type: ignore[type-arg]
    ours, theirs = lab_results[question]
    assert theirs[0] != "timeout", f"Unbound did not answer {question}"
    assert ours == theirs, f"{question}: sigchain {ours}, Unbound {theirs}"


# Where Unbound is wrong by the RFCs, and BIND (delv, in test_trace) agrees with sigchain: the
# question, what Unbound gives and what sigchain gives.
UNBOUND_WRONG = {
    # A CNAME asked below a DNAME: the answer is the CNAME synthesised from the signed DNAME,
    # proven by it (RFC 6672 §5.3.1); Unbound looks for the unsigned CNAME's signer instead,
    # asks DS for www.old.sc.test., gets the DNAME and fails ("DS got DNAME answer").
    "www.old.sc.test. CNAME": (("SERVFAIL", False), ("NOERROR", True)),
}


@pytest.mark.parametrize("question", [f"{n} {t}" for n, t in NET_QUESTIONS])
def test_trace_hierarchy_rcode_and_ad_equal_unbounds(net_results: dict[str, tuple], question: str) -> None:  # type: ignore[type-arg]
    ours, theirs = net_results[question]
    assert theirs[0] != "timeout", f"Unbound did not answer {question}"
    if question in UNBOUND_WRONG:  # still so (else the entry goes): and sigchain is right
        assert (theirs, ours) == UNBOUND_WRONG[question], f"{question}: sigchain {ours}, Unbound {theirs}"
        return
    assert ours == theirs, f"{question}: sigchain {ours}, Unbound {theirs}"


@pytest.mark.parametrize("qname,rcode,code", [
    ("www.expired.test.", "SERVFAIL", 7), ("www.future.test.", "SERVFAIL", 8),
    ("www.stripped.test.", "SERVFAIL", 10), ("www.dsmismatch.test.", "SERVFAIL", 6),
    ("www.tampered.test.", "SERVFAIL", 6), ("www.dsa.test.", "NOERROR", 1),
    ("nope.iter200.test.", "NXDOMAIN", 27)])
def test_each_break_names_its_cause(net: tuple[Hierarchy, Path], qname: str, rcode: str,
                                    code: int) -> None:
    """Bogus: SERVFAIL with the EDE of the cause; unsupported algorithm and too many NSEC3
    iterations: insecure (no AD) with the EDE as information."""
    r = dns.query.udp(dns.message.make_query(qname, "A", use_edns=0, want_dnssec=True),
                      NET_SIGCHAIN, timeout=10)
    assert dns.rcode.to_text(r.rcode()) == rcode and not r.flags & dns.flags.AD
    codes = [int(o.code) for o in r.options if o.otype == dns.edns.EDE]
    assert codes[:1] == [code], r


def test_an_alias_out_of_a_zone_known_insecure_is_validated(net: tuple[Hierarchy, Path]) -> None:
    """Below a zone kept as proven insecure nothing is checked again, unless the answer leaves
    it: a CNAME from unsigned.test. to a tampered signed name is bogus, as Unbound says."""
    h, _ = net
    service = ResolverService(from_flags(anchor=str(h.zone_anchor), root_hints=str(h.hints)))
    try:
        assert service.resolve(dns.name.from_text("www.unsigned.test."), dns.rdatatype.A).status is Status.INSECURE
        alias = service.resolve(dns.name.from_text("alias.unsigned.test."), dns.rdatatype.A)
        assert alias.status is Status.BOGUS  # rendered as SERVFAIL
        assert service.stats["insecure_left"] == 1
        assert outcome(NET_UNBOUND, "alias.unsigned.test.", "A") == ("SERVFAIL", False)
        assert outcome(NET_UNBOUND, "www.unsigned.test.", "A") == ("NOERROR", False)
    finally:
        service.close()
