"""`sigchain resolver` against the lab (as root, 127.53.x port 53): AD only on validated data,
SERVFAIL with the EDE naming the cause for bogus data and the data with +cd, no AD for
unsigned children, validated NXDOMAIN, REFUSED + EDE 18 outside --allow, SIGHUP re-reading the
config; and, in process, the cache: repeated and NSEC-covered questions asked of nobody."""

from __future__ import annotations

import dataclasses
import ipaddress
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

import sigchain
from sigchain.core.lab import hierarchy
from sigchain.core.resolve.cache import Answer
from sigchain.core.validate.anchors import Server
from sigchain.core.validate.verdict import Status
from sigchain.edge import loopback
from sigchain.services.resolver import ResolverService
from sigchain.services.resolverconfig import from_flags
from sigchain.services.resolvermetrics import HITS
from tests.conftest import sigchain_cmd, terminate
from tests.interop.diaglab import unbound_lab
from tests.interop.hostile_net import Silent

RESOLVER = "127.53.1.4"  # the lab's range, beside its Unbound (.1), named (.2) and sigchain (.3)
OUTSIDER = "127.55.0.1"  # a client address outside --allow
METRICS, METRICS_PORT = "127.55.0.7", 9153
LAB_ADDRESSES = set(hierarchy.server_addresses()) | set(hierarchy.RESOLVERS.values()) | {hierarchy.SIGCHAIN_RESOLVER[1]}


def _lab_on_lo() -> set[str]:
    return {a for a in loopback.addresses() if ipaddress.ip_address(a) in hierarchy.LAB_NET}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    before = _lab_on_lo()
    assert not before & LAB_ADDRESSES, f"lab addresses already on lo: {before}"
    try:
        yield from unbound_lab(tmp_path_factory, "rlab")
    finally:
        for a in _lab_on_lo() & LAB_ADDRESSES - before:
            loopback.remove(a)


def _wait_ready(proc: subprocess.Popen, log: Path) -> None:  # type: ignore[type-arg]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if "ready:" in log.read_text():
            return
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    pytest.fail(f"the resolver did not start: {log.read_text()}")


@pytest.fixture(scope="module")
def resolver(lab: Path) -> Iterator[tuple[subprocess.Popen, Path, Path]]:  # type: ignore[type-arg]
    config = lab / "resolver.toml"
    config.write_text(f'listen = "{RESOLVER}"\nanchor = "anchor.ds"\nroot-hints = "root.hints"\n'
                      f'allow = ["127.0.0.1/32"]\nmetrics = "{METRICS}#{METRICS_PORT}"\n'
                      'identity = "lab resolver"\n')
    log = lab / "resolver.log"
    with log.open("w") as out:
        proc = subprocess.Popen([*sigchain_cmd(), "resolver", "--config", str(config)],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_ready(proc, log)
        yield proc, config, log
    finally:
        terminate(proc)


def ask(name: str, rdtype: str = "A", *, do: bool = True, cd: bool = False, ad: bool = False,
        tcp: bool = False, source: str = "127.0.0.1") -> dns.message.Message:
    q = dns.message.make_query(name, rdtype, use_edns=0, want_dnssec=do)
    q.flags |= (dns.flags.CD if cd else 0) | (dns.flags.AD if ad else 0)
    if tcp:
        return dns.query.tcp(q, RESOLVER, timeout=10, source=source)
    return dns.query.udp(q, RESOLVER, timeout=10, source=source)


def ede(m: dns.message.Message) -> list[tuple[int, str]]:
    return [(int(o.code), o.text or "") for o in m.options if isinstance(o, dns.edns.EDEOption)]


def has(m: dns.message.Message, rdtype: str) -> bool:
    return any(r.rdtype == dns.rdatatype.from_text(rdtype) for r in m.answer)


@pytest.mark.parametrize("name,rdtype", [("www.example.test", "A"), ("www.nsec.test", "AAAA"),
                                         ("example.test", "MX"), ("www.optout.test", "A")])
def test_secure_names_get_ad_and_rrsigs_with_do(resolver, name: str, rdtype: str) -> None:
    m = ask(name, rdtype)
    assert m.rcode() == dns.rcode.NOERROR and m.flags & dns.flags.AD, m
    assert has(m, rdtype) and has(m, "RRSIG")


def test_ad_only_when_asked_for_and_rrsigs_only_with_do(resolver) -> None:
    plain = ask("www.example.test", do=False)
    assert has(plain, "A") and not has(plain, "RRSIG") and not plain.flags & dns.flags.AD
    ad = ask("www.example.test", do=False, ad=True)
    assert has(ad, "A") and not has(ad, "RRSIG") and ad.flags & dns.flags.AD


def test_bogus_is_servfail_with_ede_6_and_cd_shows_the_data(resolver) -> None:
    m = ask("www.dnssec-failed.test")
    assert m.rcode() == dns.rcode.SERVFAIL and not m.answer
    [(code, text)] = ede(m)
    assert code == 6 and "dnssec-failed.test" in text and "matches no DNSKEY" in text
    cd = ask("www.dnssec-failed.test", cd=True)
    assert cd.rcode() == dns.rcode.NOERROR and has(cd, "A") and not cd.flags & dns.flags.AD


@pytest.mark.parametrize("name", ["www.insecure.test", "www.unsigned.optout.test"])
def test_unsigned_children_resolve_without_ad(resolver, name: str) -> None:
    m = ask(name, ad=True)
    assert m.rcode() == dns.rcode.NOERROR and has(m, "A") and not m.flags & dns.flags.AD
    assert not ede(m)


@pytest.mark.parametrize("name", ["nope.example.test", "nope.nsec.test"])
def test_nxdomain_under_a_signed_zone_is_validated(resolver, name: str) -> None:
    m = ask(name, tcp=True)
    assert m.rcode() == dns.rcode.NXDOMAIN and m.flags & dns.flags.AD
    assert any(r.rdtype in (dns.rdatatype.NSEC, dns.rdatatype.NSEC3) for r in m.authority)


def test_client_outside_allow_is_refused_and_sighup_rereads_the_config(resolver) -> None:
    proc, config, log = resolver
    m = ask("www.example.test", source=OUTSIDER)
    assert m.rcode() == dns.rcode.REFUSED and [c for c, _ in ede(m)] == [18]
    # one it would refuse anyway (a zone transfer) is refused as prohibited, with EDNS kept
    xfr = dns.message.make_query("example.test", "AXFR", use_edns=0)
    m = dns.query.udp(xfr, RESOLVER, timeout=5, source=OUTSIDER)
    assert m.rcode() == dns.rcode.REFUSED and m.edns == 0 and [c for c, _ in ede(m)] == [18]
    config.write_text(config.read_text().replace('["127.0.0.1/32"]', '["127.0.0.1/32", "127.55.0.0/16"]'))
    proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "re-read" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    m = ask("www.example.test", source=OUTSIDER)
    assert m.rcode() == dns.rcode.NOERROR and m.flags & dns.flags.AD


def test_no_recursion_desired_and_junk(resolver) -> None:
    q = dns.message.make_query("www.example.test", "A")
    q.flags &= ~dns.flags.RD
    assert dns.query.udp(q, RESOLVER, timeout=5).rcode() == dns.rcode.REFUSED
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.sendto(b"\x12\x34\x01\x00\x00\x01", (RESOLVER, 53))  # a header cut short
        s.sendto(dns.message.make_query("www.example.test", "A").to_wire(), (RESOLVER, 53))
        reply = dns.message.from_wire(s.recv(65535))
    assert reply.rcode() == dns.rcode.NOERROR  # still answering after the junk


@pytest.mark.parametrize("zone", ["example.test", "nsec.test"])
def test_any_is_answered_with_every_rrset_each_validated(resolver, zone: str) -> None:
    """ANY (as Unbound): every RRset at the name, each verified, secure with AD — it was
    SERVFAIL, the validator looking for data of type ANY. And a kept NSEC/NSEC3 record that
    lists data at a name never proves NODATA for ANY there (RFC 8198 would otherwise answer
    a name that has data with a secure empty answer): after a NODATA for TXT at a name, ANY
    there still gets the data; at an empty non-terminal it is a secure NODATA."""
    first = ask(f"www.{zone}", "ANY")
    assert first.rcode() == dns.rcode.NOERROR and first.flags & dns.flags.AD
    assert {r.rdtype for r in first.answer} >= {dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.RRSIG}
    nodata = ask(f"mail.{zone}", "TXT")
    assert nodata.rcode() == dns.rcode.NOERROR and not nodata.answer and nodata.flags & dns.flags.AD
    after = ask(f"mail.{zone}", "ANY")
    assert after.rcode() == dns.rcode.NOERROR and after.flags & dns.flags.AD
    assert dns.rdatatype.A in {r.rdtype for r in after.answer}
    ent = ask(f"wild.{zone}", "ANY")  # above *.wild: a name with no data of its own
    assert ent.rcode() == dns.rcode.NOERROR and not ent.answer and ent.flags & dns.flags.AD


@pytest.mark.parametrize("zone", ["example.test", "nsec.test"])
def test_a_nodata_from_kept_records_carries_only_the_proof(resolver, zone: str) -> None:
    """RFC 8198 NODATA at a name that exists: the kept NSEC/NSEC3 record matching the name is
    the whole proof (RFC 4035 §5.4, RFC 5155 §8.5); the other kept records of the zone (the
    apex's, the wildcard's) are not sent along — with them the response was twice Unbound's
    and, for a client with a 512-byte buffer, truncated."""
    assert ask(f"nope.{zone}").rcode() == dns.rcode.NXDOMAIN  # keeps the apex's and others
    assert ask(f"www.{zone}", "TXT").rcode() == dns.rcode.NOERROR  # keeps the one at www
    m = ask(f"www.{zone}", "CAA")  # answered from the kept records
    assert m.rcode() == dns.rcode.NOERROR and not m.answer and m.flags & dns.flags.AD
    denials = [r for r in m.authority if r.rdtype in (dns.rdatatype.NSEC, dns.rdatatype.NSEC3)]
    assert len(denials) == 1, m.authority
    assert len(m.to_wire()) < 512


def test_rrsig_records_are_given_unvalidated_without_ad(resolver) -> None:
    """A question for RRSIG (no signature covers those records): the servers' records, never
    AD, as Unbound — it was SERVFAIL, no NODATA proof being found for a type with data."""
    m = ask("www.example.test", "RRSIG")
    assert m.rcode() == dns.rcode.NOERROR and not m.flags & dns.flags.AD
    assert {r.covers for r in m.answer if r.rdtype == dns.rdatatype.RRSIG} >= {
        dns.rdatatype.A, dns.rdatatype.AAAA}


def test_chaos_txt_names_the_server_to_allowed_clients_only(resolver) -> None:
    """CH TXT id.server / hostname.bind: the configured identity; version.bind /
    version.server: sigchain's version (as Unbound answers them, TTL 0, no AA); any other CH
    question, and any from outside --allow, REFUSED."""
    def chaos(name: str, rdtype: str = "TXT", source: str = "127.0.0.1") -> dns.message.Message:
        q = dns.message.make_query(name, rdtype, rdclass="CH")
        return dns.query.udp(q, RESOLVER, timeout=5, source=source)

    for name, text in (("id.server", b"lab resolver"), ("hostname.bind", b"lab resolver"),
                       ("version.bind", f"sigchain {sigchain.__version__}".encode()),
                       ("version.server", f"sigchain {sigchain.__version__}".encode())):
        for rdtype in ("TXT", "ANY"):
            m = chaos(name, rdtype)
            assert m.rcode() == dns.rcode.NOERROR and not m.flags & dns.flags.AA, m
            [rrset] = m.answer
            assert (rrset.rdclass, rrset.rdtype, rrset.ttl) == (dns.rdataclass.CH, dns.rdatatype.TXT, 0)
            assert [rd.strings for rd in rrset] == [(text,)]  # type: ignore[attr-defined]
    assert chaos("authors.bind").rcode() == dns.rcode.REFUSED
    assert chaos("id.server", "A").rcode() == dns.rcode.REFUSED
    assert chaos("id.server", source="127.56.0.1").rcode() == dns.rcode.REFUSED  # never allowed


def test_class_any_is_answered_from_in(resolver) -> None:
    """A question of class ANY gets the IN data (validated: AD with DO), its question echoed
    as asked, as Unbound; other classes but CH's server names are refused."""
    for rdclass, rcode in (("ANY", dns.rcode.NOERROR), ("HS", dns.rcode.REFUSED)):
        q = dns.message.make_query("www.example.test", "A", rdclass=rdclass, use_edns=0,
                                   want_dnssec=True)
        m = dns.query.udp(q, RESOLVER, timeout=5)
        assert m.rcode() == rcode and m.question == q.question
        if rcode == dns.rcode.NOERROR:
            assert m.flags & dns.flags.AD and m.answer[0].rdclass == dns.rdataclass.IN
            assert {r.rdtype for r in m.answer} == {dns.rdatatype.A, dns.rdatatype.RRSIG}


def test_edns_versions_and_malformed_opt_records(resolver) -> None:
    """RFC 6891: a query of an EDNS version above 0 gets BADVERS, in an OPT record of the
    version we do (§6.1.3: as BIND and Unbound), and is counted under that RCODE; one with
    two OPT records gets FORMERR (§6.1.1), as does one whose OPT is not in the additional
    section."""
    v1 = dns.message.make_query("www.example.test", "A", use_edns=1)
    reply = dns.query.udp(v1, RESOLVER, timeout=5)
    assert reply.rcode() == dns.rcode.BADVERS and reply.edns == 0 and not reply.answer
    plain = dns.message.make_query("www.example.test", "A", use_edns=0).to_wire()
    two = bytearray(plain + plain[-11:])
    two[11] = 2  # ARCOUNT: two OPT records
    authority = bytearray(plain)
    authority[9], authority[11] = 1, 0  # the OPT record counted in the authority section
    for wire in (bytes(two), bytes(authority)):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.sendto(wire, (RESOLVER, 53))
            got = s.recv(65535)
        assert got[:2] == wire[:2] and got[2] & 0x80 and got[3] & 0xF == dns.rcode.FORMERR
    with urllib.request.urlopen(f"http://{METRICS}:{METRICS_PORT}/metrics", timeout=5) as page:
        assert 'sigchain_resolver_queries_total{rcode="BADVERS"} 1.0' in page.read().decode()


def test_metrics_count_answers_servfails_cache_and_validations(resolver) -> None:
    ask("www.dnssec-failed.test", "TXT")
    ask("www.example.test", "TXT")
    ask("www.example.test", "TXT")
    norec = dns.message.make_query("www.example.test", "A")
    norec.flags &= ~dns.flags.RD
    assert dns.query.udp(norec, RESOLVER, timeout=5).rcode() == dns.rcode.REFUSED
    with urllib.request.urlopen(f"http://{METRICS}:{METRICS_PORT}/metrics", timeout=5) as page:
        text = page.read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            values[key] = float(value)
    assert values['sigchain_resolver_servfail_total{ede="6",zone="dnssec-failed.test."}'] >= 1
    assert values['sigchain_resolver_queries_total{rcode="NOERROR"}'] >= 2
    assert values['sigchain_resolver_queries_total{rcode="REFUSED"}'] >= 1
    assert values["sigchain_resolver_cache_hits_total"] >= 1
    assert values["sigchain_resolver_cache_misses_total"] >= 2
    assert values["sigchain_resolver_cache_bytes"] > 0
    assert values['sigchain_resolver_validations_total{result="secure"}'] >= 1
    assert values['sigchain_resolver_validations_total{result="bogus"}'] >= 1
    assert values["sigchain_resolver_latency_seconds_count"] >= 3


# ---- in process: the cache ---------------------------------------------------------------------

@pytest.fixture()
def service(lab: Path) -> Iterator[ResolverService]:
    config = from_flags(anchor=str(lab / "anchor.ds"), root_hints=str(lab / "root.hints"))
    s = ResolverService(config)
    yield s
    s.close()


def _n(text: str) -> dns.name.Name:
    return dns.name.from_text(text)


def test_repeated_questions_are_answered_from_the_cache(service: ResolverService) -> None:
    first = service.resolve(_n("www.example.test"), dns.rdatatype.A)
    asked = service.upstream.stats["queries"]
    assert first.status is not None and first.status.value == "secure" and asked > 0
    assert service.cache.answer(_n("www.example.test"), dns.rdatatype.A, service.clock.now())
    # another name of the same zone: the delegations and keys are known, one query suffices
    service.resolve(_n("mail.example.test"), dns.rdatatype.A)
    assert service.upstream.stats["queries"] == asked + 1


def test_a_repeated_query_is_answered_from_its_bytes_for_allowed_clients_only(
        service: ResolverService) -> None:
    """The fast path: the same query (another ID) gets the same response with its own ID,
    counted as a cache hit; a client outside --allow sending those very bytes is REFUSED;
    after a flush nothing is answered from what was rendered before."""
    q = dns.message.make_query("www.example.test", "A", use_edns=0, want_dnssec=True)
    q.id = 1
    first = service.handle(q.to_wire(), False, "127.0.0.1")
    first = first if isinstance(first, bytes) else first.result()  # type: ignore[union-attr]
    hits = service.metrics.shared.totals()[HITS]
    q.id = 2
    again = service.handle(q.to_wire(), False, "127.0.0.1")
    assert isinstance(again, bytes) and again[:2] == b"\x00\x02" and again[2:] == first[2:]
    assert service.metrics.shared.totals()[HITS] == hits + 1
    refused = service.handle(q.to_wire(), False, "192.0.2.1")
    assert isinstance(refused, bytes) and refused[3] & 0xF == dns.rcode.REFUSED
    # whatever else is wrong with a query from outside --allow, it is REFUSED (as Unbound);
    # from inside, FORMERR / BADVERS with RA and CD as the query's (RFC 6891 §6.1.1, §6.1.3)
    broken = q.to_wire()[:-3]  # the OPT record cut short
    cd = bytearray(broken)
    cd[3] |= 0x10
    v1 = dns.message.make_query("www.example.test", "A", use_edns=1).to_wire()
    for wire, rcode in ((bytes(cd), dns.rcode.FORMERR), (v1, dns.rcode.BADVERS & 0xF)):
        inside, outside = (service.handle(wire, False, c) for c in ("127.0.0.1", "192.0.2.1"))
        assert isinstance(inside, bytes) and isinstance(outside, bytes)
        assert (inside[3] & 0xF, outside[3] & 0xF) == (rcode, dns.rcode.REFUSED)
        for reply in (inside, outside):
            assert reply[:2] == wire[:2] and reply[3] & 0x80 and reply[3] & 0x10 == wire[3] & 0x10
    assert service.handle(q.to_wire()[:11], False, "192.0.2.1") is None  # no whole header
    service.flush()
    assert not isinstance(service.handle(q.to_wire(), False, "127.0.0.1"), bytes)  # resolved anew


def test_a_response_truncated_for_one_client_is_not_given_to_another(
        service: ResolverService) -> None:
    """An answer too big for a 512-byte UDP client is truncated (TC) for it; the very same
    query bytes over TCP, and a client taking 1232 bytes, get the whole answer — neither
    from the truncated one rendered before (nor from the fast path's copy)."""
    def asked(payload: int, tcp: bool) -> dns.message.Message:
        q = dns.message.make_query("nope.example.test", "A", use_edns=0, payload=payload,
                                   want_dnssec=True)
        q.id = 7
        got = service.handle(q.to_wire(), tcp, "127.0.0.1")
        if not isinstance(got, bytes):
            got = got.result(10) if hasattr(got, "result") else None  # type: ignore[union-attr]
        assert isinstance(got, bytes)
        return dns.message.from_wire(got)

    for _ in range(2):  # the first resolved, the second from the cache
        small = asked(512, False)
        assert small.flags & dns.flags.TC and not small.authority
    whole = asked(512, True)
    assert len(whole.to_wire()) > 512 and not whole.flags & dns.flags.TC
    for payload, tcp in ((1232, False), (512, False), (512, True)):
        m = asked(payload, tcp)
        assert bool(m.flags & dns.flags.TC) == (payload == 512 and not tcp), (payload, tcp)
        if not m.flags & dns.flags.TC:
            assert m.authority == whole.authority, (payload, tcp)


def test_each_client_gets_its_own_question_back(service: ResolverService) -> None:
    """Answers rendered once per second are shared by the clients asking the same question
    — but each response carries the question as that client asked it (its case: 0x20
    forwarders check it; its class: stubs drop a response to another question)."""
    asked = [("www.example.test", "IN"), ("www.example.test", "ANY"), ("WwW.ExAmPlE.tEsT", "IN"),
             ("www.example.test", "IN"), ("WWW.EXAMPLE.TEST", "ANY")]
    for qid, (name, rdclass) in enumerate(asked * 2, 1):  # the second round from the fast path
        q = dns.message.make_query(name, "A", rdclass=rdclass, use_edns=0, want_dnssec=True)
        q.id = qid
        got = service.handle(q.to_wire(), False, "127.0.0.1")
        got = got if isinstance(got, bytes) else got.result(10)  # type: ignore[union-attr]
        m = dns.message.from_wire(got)
        assert q.is_response(m) and m.question[0].name.to_text() == name + ".", (name, rdclass, m.question)
        assert m.rcode() == dns.rcode.NOERROR and m.answer


def test_clients_asking_the_same_new_question_share_one_resolution(
        service: ResolverService, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two clients ask a question nobody asked before, one just after the other: both are
    answered, from one resolution on the resolution thread (one upstream query)."""
    service.resolve(_n("www.insecure.test"), dns.rdatatype.A)  # its zone's servers known
    asked = service.upstream.stats["queries"]
    gate, resolving = threading.Event(), service.resolving

    def held(*args, **kwargs):  # type: ignore[no-untyped-def]
        gate.wait(10)  # the second client asks while the first one's resolution is under way
        return (yield from resolving(*args, **kwargs))

    monkeypatch.setattr(service, "resolving", held)
    pending = []
    for qid in (1, 2):
        q = dns.message.make_query("shared.insecure.test", "A")
        q.id = qid
        pending.append(service.handle(q.to_wire(), False, "127.0.0.1"))
    gate.set()
    assert not any(isinstance(p, bytes) for p in pending)
    answers = [dns.message.from_wire(p.result(10)) for p in pending]  # type: ignore[union-attr]
    assert [(m.id, m.rcode()) for m in answers] == [(1, dns.rcode.NXDOMAIN), (2, dns.rcode.NXDOMAIN)]
    assert service.upstream.stats["queries"] == asked + 1


def _stalled(silent: Silent, then: Callable[[], Answer]) -> Callable[..., object]:
    """A stand-in for `ResolverService.resolving`: asks `silent` (which never answers), waits
    out its 0.5-s timeout, then returns (or raises) what `then()` does."""

    def resolving(qname: dns.name.Name, qtype: int, denials_tried: bool = False):  # type: ignore[no-untyped-def]
        try:
            yield Server(silent.address), dns.message.make_query(qname, qtype), 0.5
        except Exception:  # noqa: BLE001 (the timeout)
            pass
        return then()

    return resolving


def test_a_failure_of_the_code_is_logged_once_for_all_clients_waiting(
        service: ResolverService, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """A resolution that raises (a bug, not a broken zone) while three clients wait for it:
    each gets SERVFAIL with EDE 0 "internal error"; the traceback is logged once."""
    silent = Silent("127.55.0.72")

    def broken() -> Answer:
        raise RuntimeError("a bug")

    # waits for a server that never answers, so that all three clients join in
    monkeypatch.setattr(service, "resolving", _stalled(silent, broken))
    try:
        with caplog.at_level("ERROR", logger="sigchain.resolver"):
            pending = [service.handle(dns.message.make_query("bug.insecure.test", "A", use_edns=0).to_wire(),
                                      False, "127.0.0.1") for _ in range(3)]
            answers = [dns.message.from_wire(p.result(10)) for p in pending]  # type: ignore[union-attr]
    finally:
        silent.close()
    assert silent.received == 1
    for m in answers:
        assert m.rcode() == dns.rcode.SERVFAIL
        assert [(o.code, o.text) for o in m.options if o.otype == dns.edns.EDE] == [(0, "internal error")]
    logged = [r for r in caplog.records if r.getMessage().startswith("resolving bug.insecure.test")]
    assert len(logged) == 1 and logged[0].exc_info is not None


def test_past_the_queue_bound_new_questions_are_dropped_and_counted(
        service: ResolverService, monkeypatch: pytest.MonkeyPatch) -> None:
    """As Unbound's num-queries-per-thread: with `queued` questions on the resolution thread,
    another is dropped unanswered (the client asks again), counted in the stats and in
    sigchain_resolver_dropped_total; those queued are answered."""
    silent = Silent("127.55.0.73")
    known = service.resolve(_n("www.example.test"), dns.rdatatype.A)
    monkeypatch.setattr(service, "resolving", _stalled(silent, lambda: known))
    monkeypatch.setattr(service.resolutions, "queued", 2)
    dropped = service.stats["dropped"]
    try:
        pending = [service.handle(dns.message.make_query(f"q{i}.queue.test", "A").to_wire(),
                                  False, "127.0.0.1") for i in range(5)]
        answers = [p.result(10) for p in pending]  # type: ignore[union-attr]
    finally:
        silent.close()
    assert sum(a is None for a in answers) == 3 and service.stats["dropped"] == dropped + 3
    assert all(dns.message.from_wire(a).rcode() == dns.rcode.NOERROR for a in answers if a)
    assert service.metrics.registry.get_sample_value(
        "sigchain_resolver_dropped_total", {"reason": "queue full"}) == dropped + 3


def test_an_answer_resolved_across_a_reload_is_given_but_not_kept(service: ResolverService) -> None:
    """A resolution under way when the config is re-read (SIGHUP) or the cache flushed: its
    answer goes to those who asked, but neither it nor what its validation proved (the
    zone's keys) is kept in the new cache: they were judged under the old config (another
    trust anchor, a removed negative trust anchor, another require-secure)."""
    from sigchain.edge import transport

    name = _n("mail.nsec.test")
    for reload in (lambda: service.apply(service.config), service.flush):
        service.resolve(_n("www.example.test"), dns.rdatatype.A)  # the root's and test.'s keys
        work = service.resolving(name, dns.rdatatype.A, denials_tried=True)
        request = next(work)  # its first upstream query, under the config of now
        reload()
        while True:  # the rest, answered by the lab
            try:
                request = work.send(transport.ask(*request))
            except StopIteration as done:
                entry = done.value
                break
        assert entry.status is not None and entry.status.value == "secure" and entry.answer
        now = service.clock.now()
        assert service.cache.answer(name, dns.rdatatype.A, now) is None
        assert _n("nsec.test") not in {k.name for k in service.cache.key_anchors(name, now)}
        assert service.resolve(name, dns.rdatatype.A).answer  # now kept, and its keys
        assert service.cache.answer(name, dns.rdatatype.A, now) is not None
        assert _n("nsec.test") in {k.name for k in service.cache.key_anchors(name, now)}
        service.flush()


def test_nsec_covered_names_are_denied_without_asking(service: ResolverService) -> None:
    """RFC 8198: after one validated NXDOMAIN, another name the same NSEC covers, and a NODATA
    the kept NSEC/NSEC3 records prove, are answered with no upstream query."""
    first = service.resolve(_n("nope.nsec.test"), dns.rdatatype.A)
    assert first.rcode == dns.rcode.NXDOMAIN and first.status is not None
    assert first.status.value == "secure"
    now = service.clock.now()
    assert service.cache.answer(_n("nope.nsec.test"), dns.rdatatype.A, now) is not None
    asked = service.upstream.stats["queries"]
    other = service.resolve(_n("nopf.nsec.test"), dns.rdatatype.AAAA)  # same NSEC interval
    assert other.rcode == dns.rcode.NXDOMAIN and other.status.value == "secure"  # type: ignore[union-attr]
    assert service.upstream.stats["queries"] == asked and service.stats["aggressive"] == 1
    for zone in ("nsec.test", "example.test"):  # NSEC and NSEC3: NODATA for another type
        assert service.resolve(_n(f"www.{zone}"), dns.rdatatype.TXT).rcode == dns.rcode.NOERROR
        asked = service.upstream.stats["queries"]
        nodata = service.resolve(_n(f"www.{zone}"), dns.rdatatype.MX)
        assert nodata.rcode == dns.rcode.NOERROR and not nodata.answer
        assert nodata.status.value == "secure"  # type: ignore[union-attr]
        assert service.upstream.stats["queries"] == asked, zone
    # a name that exists is never denied from the kept records
    assert service.resolve(_n("mail.nsec.test"), dns.rdatatype.A).answer
    # a validated wildcard answer is expanded for another name the kept NSEC shows absent
    first = service.resolve(_n("one.wild.nsec.test"), dns.rdatatype.A)
    assert first.status is not None and first.status.value == "secure"
    asked, synthesised = service.upstream.stats["queries"], service.stats["aggressive"]
    other = service.resolve(_n("two.wild.nsec.test"), dns.rdatatype.A)
    assert other.status is not None and other.status.value == "secure"
    assert [(r.name, rd.address) for r in other.answer if r.rdtype == dns.rdatatype.A for rd in r] == [
        (_n("two.wild.nsec.test"), hierarchy.record_addresses(hierarchy.zone("nsec.test."))["wild"])]
    assert service.upstream.stats["queries"] == asked and service.stats["aggressive"] == synthesised + 1


def test_answers_made_from_kept_records_carry_what_a_servers_would(service: ResolverService) -> None:
    """RFC 8198 answers: a negative one carries the zone's SOA — also when the zone's first
    kept records came with a wildcard answer (no SOA in it) — and the proofs only the records
    a server gives: NSEC3 NXDOMAIN the closest encloser's, the next closer name's and the
    wildcard's (RFC 5155 §7.2.2); an NSEC3 wildcard expansion the next closer name's."""
    def types(entry: Answer) -> list[str]:
        return [dns.rdatatype.to_text(r.rdtype) for r in entry.authority if r.rdtype != dns.rdatatype.RRSIG]

    for zone in ("nsec.test", "example.test"):
        first = service.resolve(_n(f"one.wild.{zone}"), dns.rdatatype.A)  # kept first: no SOA
        assert first.status is Status.SECURE and not any(
            r.rdtype == dns.rdatatype.SOA for r in first.authority)
        assert service.resolve(_n(f"nope.{zone}"), dns.rdatatype.A).rcode == dns.rcode.NXDOMAIN
        made = service.stats["aggressive"]
        for name in (f"nopf.{zone}", f"a.b.c.{zone}", f"x.y.{zone}", f"p.q.r.{zone}"):
            synthesised = service.stats["aggressive"]
            nx = service.resolve(_n(name), dns.rdatatype.A)
            if service.stats["aggressive"] == synthesised:
                continue  # not covered by what is kept: resolved as usual
            assert nx.rcode == dns.rcode.NXDOMAIN and nx.status is Status.SECURE, name
            assert types(nx)[0] == "SOA", (name, types(nx))
            if zone == "example.test":
                assert len(types(nx)) <= 4, (name, types(nx))  # SOA and three NSEC3 at most
        assert service.stats["aggressive"] >= made + 2, zone
        service.resolve(_n(f"b.wild.{zone}"), dns.rdatatype.A)  # proves b.wild absent
        asked = service.upstream.stats["queries"]
        two = service.resolve(_n(f"a.b.wild.{zone}"), dns.rdatatype.A)  # b.wild: next closer
        assert two.status is Status.SECURE and two.answer
        assert len(types(two)) == 1, types(two)  # the one record the expansion needs
        assert service.upstream.stats["queries"] == asked, zone


def test_a_client_query_the_kept_nsec_denies_is_answered_at_once(service: ResolverService) -> None:
    """RFC 8198 answers are made as the query comes in (bytes, not a future for a resolution
    thread), validated (AD with DO) and with no upstream query; a name the kept records do
    not cover, and any name under a negative trust anchor, go to a resolution thread."""
    assert service.resolve(_n("nope.nsec.test"), dns.rdatatype.A).rcode == dns.rcode.NXDOMAIN
    asked, synthesised = service.upstream.stats["queries"], service.stats["aggressive"]
    q = dns.message.make_query("nopf.nsec.test", "A", want_dnssec=True)
    out = service.handle(q.to_wire(), False, "127.0.0.1")
    assert isinstance(out, bytes)
    m = dns.message.from_wire(out)
    assert m.id == q.id and m.rcode() == dns.rcode.NXDOMAIN and m.flags & dns.flags.AD
    assert any(r.rdtype == dns.rdatatype.NSEC for r in m.authority)
    assert service.upstream.stats["queries"] == asked and service.stats["aggressive"] == synthesised + 1
    tries: list[dns.name.Name] = []
    offers, aggressive = service._offers, service._aggressive
    service._offers = lambda *a: tries.append(a[0]) or offers(*a)  # type: ignore[method-assign]
    service._aggressive = lambda *a: tries.append(a[0]) or aggressive(*a)  # type: ignore[method-assign]
    later = service.handle(dns.message.make_query("www.nsec.test", "A").to_wire(), False, "127.0.0.1")
    assert not isinstance(later, bytes) and later.result(10)[3] & 0xF == dns.rcode.NOERROR  # type: ignore[union-attr]
    assert tries == [_n("www.nsec.test")]  # tried once, as the query came in; not again in the thread
    service.keeper.negative = service.keeper.negative.add(_n("nsec.test"), service.clock.now(), 3600, 60)
    under_nta = service.handle(dns.message.make_query("nopg.nsec.test", "A").to_wire(), False, "127.0.0.1")
    assert not isinstance(under_nta, bytes)
    assert dns.message.from_wire(under_nta.result(10)).rcode() == dns.rcode.NXDOMAIN  # type: ignore[union-attr]


def test_on_the_client_loop_a_hit_does_not_wait_for_rfc8198_answers(service: ResolverService) -> None:
    """On the client loop, answers from the kept records are made in slices between the
    loop's reads, not as each query is read: a cached question asked after 200 such names is
    answered at once, before any of them; each of them then gets its validated NXDOMAIN,
    with no upstream query."""
    import asyncio

    assert service.resolve(_n("nope.nsec.test"), dns.rdatatype.A).rcode == dns.rcode.NXDOMAIN
    assert service.resolve(_n("www.nsec.test"), dns.rdatatype.A).rcode == dns.rcode.NOERROR
    asked = service.upstream.stats["queries"]

    async def main() -> tuple[object, list[object], bool]:
        pending = [service.handle(dns.message.make_query(f"nope{i}.nsec.test", "A", want_dnssec=True)
                                  .to_wire(), False, "127.0.0.1") for i in range(200)]
        hit = service.handle(dns.message.make_query("www.nsec.test", "A").to_wire(), False, "127.0.0.1")
        waiting = not any(p.done() for p in pending)  # type: ignore[union-attr]
        answers = await asyncio.wait_for(asyncio.gather(
            *(asyncio.wrap_future(p) for p in pending)), 30)  # type: ignore[arg-type]
        return hit, answers, waiting

    hit, answers, waiting = asyncio.run(main())
    assert isinstance(hit, bytes) and dns.message.from_wire(hit).rcode() == dns.rcode.NOERROR
    assert waiting
    for wire in answers:
        m = dns.message.from_wire(wire)  # type: ignore[arg-type]
        assert m.rcode() == dns.rcode.NXDOMAIN and m.flags & dns.flags.AD
    assert service.upstream.stats["queries"] == asked


def test_queued_rfc8198_questions_repeat_bound_and_fail_safely(service: ResolverService) -> None:
    """Queued on the client loop: a question asked twice before its first answer is judged
    once (the second copy is a cache hit); past the queue's bound a query is dropped (None);
    and a failure while one is answered reaches its future (a TCP client is let go), never
    leaving it waiting."""
    import asyncio

    assert service.resolve(_n("nope.nsec.test"), dns.rdatatype.A).rcode == dns.rcode.NXDOMAIN

    def ask(name: str) -> object:
        return service.handle(dns.message.make_query(name, "A").to_wire(), False, "127.0.0.1")

    async def twice() -> list[object]:
        made = service.stats["aggressive"]
        both = [ask("nopt.nsec.test"), ask("nopt.nsec.test")]
        out = await asyncio.wait_for(asyncio.gather(*(asyncio.wrap_future(f) for f in both)), 10)  # type: ignore[arg-type]
        assert service.stats["aggressive"] == made + 1
        return out

    for wire in asyncio.run(twice()):
        assert dns.message.from_wire(wire).rcode() == dns.rcode.NXDOMAIN  # type: ignore[arg-type]

    async def bounded() -> list[object]:
        service.slices.bound = 3
        out = [ask(f"nopb{i}.nsec.test") for i in range(4)]
        await asyncio.wait_for(asyncio.gather(*(asyncio.wrap_future(f) for f in out[:3])), 10)  # type: ignore[arg-type]
        return out

    assert asyncio.run(bounded())[3] is None

    def broken(*args: object) -> bool:
        raise RuntimeError("a bug while handing the query on")

    service._proven = lambda *a: None  # type: ignore[method-assign]  # not proven: handed on
    service._hand = broken  # type: ignore[method-assign]

    async def failing() -> None:
        future = ask("nopx.nsec.test")
        with pytest.raises(RuntimeError, match="a bug"):
            await asyncio.wait_for(asyncio.wrap_future(future), 10)  # type: ignore[arg-type]

    asyncio.run(failing())


def test_a_zone_proven_insecure_is_not_proven_again_for_each_name(service: ResolverService) -> None:
    """As Unbound's null key entries: once the parent proved a zone has no DS, later names
    under it are insecure without the chain being checked again — but not the zone's own DS
    (the signed parent's secure answer), and not under a trust anchor set inside the zone."""
    first = service.resolve(_n("www.insecure.test"), dns.rdatatype.A)
    assert first.status is Status.INSECURE and service.stats["insecure_known"] == 0
    now = service.clock.now()
    assert service.cache.insecure_zone(_n("x.y.insecure.test"), now) == _n("insecure.test")
    for name, rcode in (("mail.insecure.test", dns.rcode.NOERROR), ("nope.insecure.test", dns.rcode.NXDOMAIN)):
        other = service.resolve(_n(name), dns.rdatatype.A)
        assert (other.rcode, other.status, other.zone) == (rcode, Status.INSECURE, "insecure.test.")
    assert service.stats["insecure_known"] == 2
    ds = service.resolve(_n("insecure.test"), dns.rdatatype.DS)
    assert ds.status is Status.SECURE and service.stats["insecure_known"] == 2
    inside = dns.rrset.from_text("sub.insecure.test.", 60, "IN", "DS", "1 13 2 " + "00" * 32)
    assert service._insecure_zone(_n("a.sub.insecure.test"), dns.rdatatype.A, [inside], now) is None
    assert service._insecure_zone(_n("a.insecure.test"), dns.rdatatype.A, [], now) == _n("insecure.test")
    # the proof's TTL ends the entry
    ttl = service.cache._lru[("i", _n("insecure.test"))].ttl
    assert service.cache.insecure_zone(_n("www.insecure.test"), now + ttl) is None


def test_serve_stale_only_when_asked_for_and_only_with_valid_rrsigs(lab: Path) -> None:
    """RFC 8767, off by default: with a window, an expired secure answer is served (EDE 3,
    TTL 30; an NXDOMAIN EDE 19) when no server answers; never past the window, never once its
    RRSIGs expired, and with a TTL that does not outlast them."""
    from sigchain.clock import FakeClock
    from sigchain.core.resolve.cache import CacheLimits

    dead = [(dns.name.root, (Server("127.55.0.29"),))]  # nothing listens there: refused at once
    for window in (0, 3600, 90 * 86400):
        clock = FakeClock(int(time.time()))
        config = from_flags(anchor=str(lab / "anchor.ds"), root_hints=str(lab / "root.hints"))
        service = ResolverService(dataclasses.replace(config, cache=CacheLimits(stale_window=window)),
                                  clock=clock)
        try:
            fresh = service.resolve(_n("www.example.test"), dns.rdatatype.A)
            assert fresh.status is not None and fresh.status.value == "secure"
            nx = service.resolve(_n("gone.nsec.test"), dns.rdatatype.A)
            assert nx.rcode == dns.rcode.NXDOMAIN and nx.status is not None
            service.config = dataclasses.replace(service.config, forward=tuple(dead))
            clock.advance(max(fresh.ttl, nx.ttl) + 10)
            stale = service.resolve(_n("www.example.test"), dns.rdatatype.A)
            if window == 0:
                assert stale.status is None and stale.ede[0][0] == 22  # SERVFAIL, no authority
                continue
            assert stale.status.value == "secure" and stale.ede[0][0] == 3  # type: ignore[union-attr]
            assert stale.answer and all(r.ttl <= 30 for r in stale.answer)
            stale_nx = service.resolve(_n("gone.nsec.test"), dns.rdatatype.A)
            assert stale_nx.rcode == dns.rcode.NXDOMAIN and stale_nx.ede[0][0] == 19
            if window > 3600:  # five seconds before the RRSIGs expire: five seconds of TTL
                expires = min(rd.expiration for r in fresh.answer  # type: ignore[attr-defined]
                              if r.rdtype == dns.rdatatype.RRSIG for rd in r)
                clock.advance(expires - 5 - clock.now())
                assert service.resolve(_n("www.example.test"), dns.rdatatype.A).ttl == 5
            # past the window (3600 s), or inside it (90 days) but past the RRSIGs' expiration
            clock.advance(3600 if window == 3600 else 40 * 86400)
            assert service.resolve(_n("www.example.test"), dns.rdatatype.A).status is None
        finally:
            service.close()


def test_qname_minimisation_shows_each_server_one_label_more(lab: Path) -> None:
    """RFC 9156: the root hears only `test.`, `test.` only `example.test.`; the answer is the
    same and validates."""
    from sigchain.core.resolve.resolution import Resolution
    from sigchain.core.validate.anchors import parse_anchors, parse_root_hints
    from sigchain.core.validate.validator import Question, validate
    from sigchain.edge import transport

    anchors = parse_anchors((lab / "anchor.ds").read_text())
    hints = parse_root_hints((lab / "root.hints").read_text())
    for minimise in (True, False):
        r = Resolution(Question(_n("www.example.test."), dns.rdatatype.AAAA), {dns.name.root},
                       hints=hints, minimise=minimise)
        outcome = transport.Transport().run(r)
        assert validate(outcome.evidence, anchors, int(time.time())).status.value == "secure"  # type: ignore[union-attr]
        seen = {(x.query.zone, x.query.qname) for x in r.exchanges if x.query.zone is not None}
        deepest = {z: max(len(q) - len(z) for zz, q in seen if zz == z) for z, _ in seen}
        if minimise:  # one label below each zone (DS/DNSKEY links are the zone's own names)
            assert deepest[dns.name.root] == 1 and deepest[_n("test.")] == 1, seen
            assert all(x.query.rdtype == dns.rdatatype.A for x in r.exchanges
                       if x.query.qname != _n("www.example.test.") and "minimised" in x.query.purpose)
        else:
            assert deepest[dns.name.root] == 3, seen


def test_work_limit_per_question_ends_in_servfail_naming_it(lab: Path) -> None:
    config = from_flags(anchor=str(lab / "anchor.ds"), root_hints=str(lab / "root.hints"))
    limited = dataclasses.replace(config, limits=dataclasses.replace(config.limits, max_queries=2))
    service = ResolverService(limited)
    try:
        entry = service.resolve(_n("www.example.test"), dns.rdatatype.A)
        assert entry.status is None and "max_queries" in entry.ede[0][1]
        assert service.upstream.stats["queries"] == 2
    finally:
        service.close()


NTA_RESOLVER = "127.53.1.6"  # a second resolver, with negative trust anchors


def test_negative_trust_anchors_answer_unvalidated_until_the_zone_validates(lab: Path, resolver) -> None:
    """RFC 7646: under an NTA the bogus dnssec-failed.test. resolves (NOERROR, never AD); an NTA
    on the secure example.test. withholds AD until the re-check finds the zone validating and
    drops it (log line); the bogus zone's NTA stays. A SIGHUP re-reading the same NTAs renews
    neither: the dropped one stays dropped (RFC 7646 §2: it must end), the other keeps its
    expiry."""
    assert ask("www.dnssec-failed.test").rcode() == dns.rcode.SERVFAIL  # without an NTA
    config = lab / "nta.toml"
    config.write_text(f'listen = "{NTA_RESOLVER}"\nanchor = "anchor.ds"\nroot-hints = "root.hints"\n'
                      'nta-recheck = 2\n')
    log = lab / "nta-resolver.log"
    with log.open("w") as out:
        proc = subprocess.Popen([*sigchain_cmd(), "resolver", "--config", str(config),
                                 "--negative-anchor", "dnssec-failed.test=1h",
                                 "--negative-anchor", "example.test"],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_ready(proc, log)

        def nta_ask(name: str) -> dns.message.Message:
            q = dns.message.make_query(name, "A", want_dnssec=True)
            q.flags |= dns.flags.AD
            return dns.query.udp(q, NTA_RESOLVER, timeout=10)

        failed, secure = nta_ask("www.dnssec-failed.test"), nta_ask("www.example.test")
        assert failed.rcode() == dns.rcode.NOERROR and not failed.flags & dns.flags.AD
        assert has(failed, "A") and not ede(failed)
        assert secure.rcode() == dns.rcode.NOERROR and not secure.flags & dns.flags.AD
        deadline = time.monotonic() + 15
        dropped = "negative trust anchor example.test. removed: the zone validates again"
        while dropped not in log.read_text():
            assert time.monotonic() < deadline and proc.poll() is None, log.read_text()
            time.sleep(0.1)
        assert nta_ask("www.example.test").flags & dns.flags.AD
        failed = nta_ask("www.dnssec-failed.test")
        assert failed.rcode() == dns.rcode.NOERROR and not failed.flags & dns.flags.AD
        assert "dnssec-failed.test. removed" not in log.read_text()
        proc.send_signal(signal.SIGHUP)  # the same NTAs (from the flags), in the new keeper
        deadline = time.monotonic() + 15
        while "re-read" not in log.read_text():
            assert time.monotonic() < deadline and proc.poll() is None, log.read_text()
            time.sleep(0.05)
        assert nta_ask("www.example.test").flags & dns.flags.AD  # not renewed
        failed = nta_ask("www.dnssec-failed.test")  # still under its NTA
        assert failed.rcode() == dns.rcode.NOERROR and not failed.flags & dns.flags.AD
    finally:
        terminate(proc)


def test_a_second_resolution_for_one_question_shares_its_budget(lab: Path) -> None:
    """When an answer leaves a zone known insecure, the question is resolved again with the
    chain checked; that second pass gets what the first left of the per-question limits
    (queries, time), not a fresh set."""
    from sigchain.core.resolve.exchange import Exchange, Failed, Query
    from sigchain.core.validate.verdict import Question
    from sigchain.edge import transport
    from sigchain.services.resolverupstream import Fetched

    service = ResolverService(from_flags(anchor=str(lab / "anchor.ds"), root_hints=str(lab / "root.hints")))
    try:
        up = service.upstream
        question = Question(_n("www.example.test"), dns.rdatatype.A)
        one = Exchange(Query(question.name, question.rdtype, ()), None, None)
        used_up = Fetched(Failed("", False, (one,) * up.limits.max_queries), (), 0.0)
        out = transport.drive(up.resolving(question, set(), service.clock.now(), spent=used_up)).outcome
        assert isinstance(out, Failed) and "max_queries" in out.reason and len(out.exchanges) == 1
        timed_out = Fetched(Failed("", False, ()), (), up.budget)
        out = transport.drive(up.resolving(question, set(), service.clock.now(), spent=timed_out)).outcome
        assert isinstance(out, Failed) and out.unreachable
        fresh = up.resolve(question, set(), service.clock.now())
        assert not isinstance(fresh.outcome, Failed) and fresh.seconds > 0
    finally:
        service.close()
