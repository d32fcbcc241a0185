"""`sigchain lab drill|repair` on one lab (as root, 127.53.x port 53) with both validators,
Unbound and sigchain's resolver: each drill makes both SERVFAIL (sigchain's with the EDE code
naming the cause) while `+cd` still has the data, `diagnose` names the drill's exact cause and
`sigchain exporter` (127.57.200.1) shows the matching metric change, with Prometheus evaluating
the shipped rules on it; the repair brings validation and the metrics back. The drills run in
sequence on the module's lab, in file order; `walk` audits the lab's NSEC and NSEC3 zones."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import dns.rdataclass
import dns.rdatatype
import dns.zone
import pytest

from sigchain.core.lab import hierarchy
from tests.conftest import free_port, need, sc
from tests.interop.diaglab import Dig, Samples, dig, unbound_lab, wait_metrics
from tests.interop.exporter_zones import Daemon
from tests.interop.exporter_zones import get_json as _get
from tests.interop.exporter_zones import prometheus as run_prometheus

UNBOUND = hierarchy.RESOLVERS["unbound"]
VALIDATORS = {"unbound": UNBOUND, "sigchain": hierarchy.SIGCHAIN_RESOLVER[1]}
EXPORTER, PROMETHEUS = "127.57.200.1", "127.57.200.2"
PARENT = hierarchy.zone("test.").address
WATCHED = ("example.test", "nsec.test")  # the zones the drills break
DAY = 86400


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield from unbound_lab(tmp_path_factory, "drilllab")


@pytest.fixture(scope="module")
def exporter(lab: Path) -> Iterator[str]:
    """`sigchain exporter` on the lab: the drilled zones on their servers, their parent's
    server, both validators, the lab anchor; a probe round every second."""
    port = free_port(EXPORTER)
    zones = [a for z in WATCHED for a in ("--zone", f"{z}={hierarchy.zone(z + '.').address}")]
    resolvers = [a for r in VALIDATORS.values() for a in ("--resolver", r)]
    daemon = Daemon(lab / "exporter.log", [
        "exporter", "--listen", f"{EXPORTER}#{port}", "--interval", "1s", "--timeout", "0.5",
        *zones, "--parent-server", PARENT, *resolvers, "--anchor", str(lab / "anchor.ds")])
    try:
        yield f"http://{EXPORTER}:{port}/metrics"
    finally:
        daemon.stop()


@pytest.fixture(scope="module")
def prometheus(exporter: str, lab: Path) -> Iterator[str]:
    """Debian's Prometheus scraping the exporter every second with the shipped rules and a
    copy whose `for:` is 1 s (group dnssec-short)."""
    (lab / "prometheus").mkdir()
    target = exporter.split("//", 1)[1].split("/", 1)[0]
    with run_prometheus(lab / "prometheus", PROMETHEUS, target, "1s") as url:
        yield url


def expiring_soon(prometheus: str, zone: str) -> set[str]:
    """The states of DnssecRrsigExpiringSoon for `zone` in Prometheus's /api/v1/alerts."""
    alerts = _get(f"{prometheus}/api/v1/alerts")["data"]["alerts"]
    return {a["state"] for a in alerts if a["labels"]["alertname"] == "DnssecRrsigExpiringSoon"
            and a["labels"]["zone"] == zone}


def wait_alerts(prometheus: str, zone: str, want: set[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    states: set[str] = set()
    while time.monotonic() < deadline:
        try:
            states = expiring_soon(prometheus, zone)
        except OSError:
            pass  # Prometheus is still starting
        if states == want:
            return
        time.sleep(0.3)
    raise AssertionError(f"DnssecRrsigExpiringSoon for {zone}: {states or 'none'}, not {want}")


def scraped(prometheus: str, zone: str) -> bool:
    """Whether Prometheus holds the zone's earliest expiry (it scrapes and evaluates)."""
    try:
        q = f"dnssec_zone_rrsig_earliest_expiry_timestamp_seconds{{zone=%22{zone}%22}}"
        return bool(_get(f"{prometheus}/api/v1/query?query={q}")["data"]["result"])
    except OSError:
        return False


def diagnose(lab: Path, qname: str, resolver: str = UNBOUND) -> dict:
    proc = sc("diagnose", qname, "--resolver", resolver, "--anchor", lab / "anchor.ds",
              "--root-hints", lab / "root.hints", "--timeout", "8", "--json")
    return json.loads(proc.stdout) | {"rc": proc.returncode}


def check(lab: Path, zone: str, *extra: str) -> tuple[int, dict[int, dict]]:
    proc = sc("check", zone, "--resolver", UNBOUND, "--anchor", lab / "anchor.ds",
              "--root-hints", lab / "root.hints", "--json", *extra)
    return proc.returncode, {r["row"]: r for r in json.loads(proc.stdout)["rows"]}


def failing_rows(lab: Path, zone: str) -> set[int]:
    rc, rows = check(lab, zone, "--zone-file", lab / "zones" / f"{zone}.signed")
    failing = {n for n, r in rows.items() if not r["ok"]}
    assert rc == (1 if failing else 0)
    return failing


def test_check_passes_all_five_rows_on_the_healthy_lab(lab: Path) -> None:
    assert failing_rows(lab, "example.test") == set()
    rc, rows = check(lab, "nsec.test", "--zone-file", lab / "zones" / "nsec.test.signed")
    assert rc == 0 and [r["ok"] for r in rows.values()] == [True] * 5
    assert "SERVFAIL" in rows[5]["detail"] and "ad" in rows[4]["detail"].split("flags", 1)[1]
    # sigchain's resolver passes rows 4 and 5 as Unbound does
    rc, rows = check(lab, "nsec.test", "--zone-file", lab / "zones" / "nsec.test.signed",
                     "--resolver", VALIDATORS["sigchain"])
    assert rc == 0 and f"{VALIDATORS['sigchain']}: NOERROR" in rows[4]["detail"], rows[4]
    assert f"{VALIDATORS['sigchain']}: SERVFAIL" in rows[5]["detail"], rows[5]
    # the lab's servers refuse AXFR: row 1 says so and asks for the zone file
    rc, rows = check(lab, "example.test")
    assert rc == 1 and not rows[1]["ok"] and "REFUSED" in rows[1]["detail"]
    assert all(rows[n]["ok"] for n in (2, 3, 4, 5))
    # a zone whose DS matches no key fails row 3 (and its chain, row 2)
    rc, rows = check(lab, "dnssec-failed.test", "--zone-file",
                     lab / "zones" / "dnssec-failed.test.signed")
    assert rc == 1 and not rows[3]["ok"] and not rows[2]["ok"] and rows[1]["ok"]


def healthy(zone: str, probe: str) -> Dig:
    if probe.startswith("www."):
        return Dig("NOERROR", True, [hierarchy.record_addresses(hierarchy.zone(zone + "."))["www"]],
                   set())
    return Dig("NXDOMAIN", True, [], set())


def observe(samples: Samples, zone: str) -> tuple[float | None, str, float | None, float | None]:
    """What the exporter says of a zone: DS matches a key at the parent; whether its earliest
    RRSIG expiry is past, under the alert's 3 days or later; AD at Unbound, at sigchain's;
    the large answers (DNSKEY RRset, a signed denial) whole with AD at each."""
    def v(metric: str, **labels: str) -> float | None:
        return samples.get((metric, frozenset({"zone": zone + ".", **labels}.items())))

    expiry = v("dnssec_zone_rrsig_earliest_expiry_timestamp_seconds",
               server=hierarchy.zone(zone + ".").address)
    left = None if expiry is None else expiry - time.time()
    when = "none" if left is None else "past" if left < 0 else "soon" if left < 3 * DAY else "later"
    return (v("dnssec_zone_ds_matches_dnskey", parent_server=PARENT), when,
            *(v("dnssec_zone_validates", resolver=r) for r in VALIDATORS.values()),
            *(v("dnssec_zone_resolver_large_answer_ok", resolver=r) for r in VALIDATORS.values()))


HEALTHY = (1.0, "later", 1.0, 1.0, 1.0, 1.0)


def wait_observed(exporter: str, zone: str, want: tuple[object, ...]) -> None:
    wait_metrics(exporter, lambda s: observe(s, zone) == want, f"{zone} as {want}")


@pytest.fixture
def repaired(lab: Path) -> Iterator[None]:
    """A drill whose test failed half-way is repaired, so the next test starts healthy."""
    yield
    active = lab / "drills" / "active.json"
    if active.exists():
        sc("lab", "repair", json.loads(active.read_text())["name"], "--dir", lab)


@pytest.mark.usefixtures("repaired")
@pytest.mark.parametrize(("name", "zone", "cause", "probe", "check_fails", "ede", "metrics"), [
    ("broken-ds", "example.test", "DS_MISMATCH", "www.example.test", {2, 3, 4}, {6},
     (0.0, "later", 0.0, 0.0, 0.0, 0.0)),
    # the exporter's DS metric asks whether a DS names a key that signs the DNSKEY RRset:
    # it still does (expired signatures are the expiry alerts' matter, not a DS drift whose
    # fix, changing the DS, would break the zone further)
    ("expired-rrsig", "nsec.test", "RRSIG_EXPIRED", "www.nsec.test", {1, 2, 4}, {7},
     (1.0, "past", 0.0, 0.0, 0.0, 0.0)),
    ("stale-anchor", "example.test", "TRUST_ANCHOR_STALE", "www.example.test", {4}, {6},
     (1.0, "later", 0.0, 0.0, 0.0, 0.0)),
    # sigchain's resolver asks its forwarder whether it passes DNSSEC on: 10 names it, 9 follows
    ("stripping-middlebox", "example.test", "RRSIGS_STRIPPED", "www.example.test", {4}, {9, 10},
     (1.0, "later", 0.0, 0.0, 0.0, 0.0)),
    # the zone's SOA answer fits in 512 bytes: the checklist and dnssec_zone_validates miss
    # this one, the large-answer probe (its NSEC3 denial is over 512) sees it at Unbound;
    # sigchain's resolver retries a silent server with a 512-byte buffer, gets TC and asks
    # over TCP: it keeps validating behind this middlebox (ede None: it must not fail)
    ("small-edns", "example.test", "EDNS_TRUNCATION", "no-such-name.example.test", set(), None,
     (1.0, "later", 1.0, 1.0, 0.0, 1.0)),
])
def test_drill_then_repair(lab: Path, exporter: str, prometheus: str, name: str, zone: str,
                           cause: str, probe: str, check_fails: set[int], ede: set[int] | None,
                           metrics: tuple[object, ...]) -> None:
    good = healthy(zone, probe)
    for address in VALIDATORS.values():
        assert dig(address, probe, "A") == good, address
    wait_observed(exporter, zone, HEALTHY)
    if name == "expired-rrsig":  # Prometheus has the zone's series and no alert yet
        deadline = time.monotonic() + 30
        while not scraped(prometheus, zone + ".") and time.monotonic() < deadline:
            time.sleep(0.3)
        wait_alerts(prometheus, zone + ".", set())

    proc = sc("lab", "drill", name, "--zone", zone, "--dir", lab, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert (report["expected_cause"], report["probe"]) == (cause, probe)
    assert report["resolvers"] == {"unbound": UNBOUND, "sigchain-resolver": VALIDATORS["sigchain"]}
    assert {"unbound", "sigchain-resolver"} <= set(report["flushed"])
    for kind, address in VALIDATORS.items():
        bad = dig(address, probe, "A")
        if kind == "sigchain" and ede is None:  # it works around this failure
            assert bad == good, bad
            continue
        assert bad.status == "SERVFAIL" and not bad.ad, (kind, bad)
        if kind == "sigchain":
            assert bad.ede == ede, bad
        with_cd = dig(address, "+cd", probe, "A")
        if report["cd_data"]:
            assert with_cd.status == "NOERROR" and with_cd.records == good.records, (kind, with_cd)
        else:  # the 512-byte middlebox: even unvalidated, the (large) answer never arrives
            assert with_cd.status == "SERVFAIL", (kind, with_cd)
    wait_observed(exporter, zone, metrics)
    if name == "expired-rrsig":  # pending under the shipped rule (for: 15m), firing under 1 s
        wait_alerts(prometheus, zone + ".", {"pending", "firing"})
    found = diagnose(lab, probe)
    assert (found["cause"], found["rc"]) == (cause, 1), found["reason"]
    if ede is not None:  # through sigchain's resolver, as through Unbound
        found = diagnose(lab, probe, VALIDATORS["sigchain"])
        assert (found["cause"], found["rc"]) == (cause, 1), found["reason"]
    assert failing_rows(lab, zone) == check_fails
    if name == "stripping-middlebox":  # a denial has no data to compare: the root's keys tell
        assert diagnose(lab, f"no-such-name.{zone}")["cause"] == cause

    proc = sc("lab", "repair", name, "--dir", lab)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for address in VALIDATORS.values():
        assert dig(address, probe, "A") == good, address
    assert diagnose(lab, probe)["cause"] in ("SECURE", "NXDOMAIN")
    assert not (lab / "drills" / "active.json").exists()
    assert failing_rows(lab, zone) == set()
    wait_observed(exporter, zone, HEALTHY)
    if name == "expired-rrsig":
        wait_alerts(prometheus, zone + ".", set())


def test_one_drill_at_a_time_and_repair_names_the_running_one(lab: Path) -> None:
    assert sc("lab", "drill", "broken-ds", "--dir", lab).returncode == 0
    try:
        second = sc("lab", "drill", "stale-anchor", "--dir", lab)
        assert second.returncode == 4 and "repair broken-ds first" in second.stderr
        wrong = sc("lab", "repair", "expired-rrsig", "--dir", lab)
        assert wrong.returncode == 2 and "drill broken-ds is running" in wrong.stderr
        # lab up meanwhile keeps the lab up (the zone keeps its serial) and the drill on
        again = sc("lab", "up", "--dir", lab)
        assert again.returncode == 0, again.stdout + again.stderr
        assert dig(UNBOUND, "www.example.test", "A").status == "SERVFAIL", again.stdout
    finally:
        assert sc("lab", "repair", "broken-ds", "--dir", lab).returncode == 0
    bad = sc("lab", "drill", "no-such-drill", "--dir", lab)
    assert bad.returncode == 2 and "broken-ds" in bad.stderr
    unsigned = sc("lab", "drill", "broken-ds", "--zone", "insecure.test", "--dir", lab)
    assert unsigned.returncode == 2 and "needs a signed" in unsigned.stderr


def zone_names(path: Path, origin: str, rdtype: str) -> set[str]:
    z = dns.zone.from_file(str(path), origin, relativize=False, check_origin=False)
    return {n.to_text() for n, node in z.nodes.items()
            if node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.from_text(rdtype))}


def test_walk_lists_the_nsec_zone_and_recovers_the_nsec3_zone(lab: Path, tmp_path: Path) -> None:
    """NSEC: every name the lab's nsec.test has (what ldns-walk lists too). NSEC3: every name
    of example.test recovered from a wordlist holding its labels among decoys."""
    nsec = hierarchy.zone("nsec.test.")
    proc = sc("walk", "nsec.test", "--server", nsec.address, "--json")
    walked = json.loads(proc.stdout)
    assert proc.returncode == 0 and walked["complete"], proc.stdout + proc.stderr
    names = {n["name"] for n in walked["names"]}
    assert names == zone_names(lab / "zones" / "nsec.test.signed", "nsec.test.", "NSEC")
    ldns = subprocess.run([need("ldns-walk"), f"@{nsec.address}", "nsec.test"],
                          capture_output=True, text=True, timeout=30)
    assert names == {line.split()[0] for line in ldns.stdout.splitlines() if line.strip()}

    z = hierarchy.zone("example.test.")
    unsigned = dns.zone.from_file(str(lab / "zones" / "example.test.zone"), "example.test.",
                                  relativize=False, check_origin=False)
    owners = {n for n in unsigned.nodes if n != z.name}
    parents = {n.parent() for n in owners if n.parent() != z.name}  # empty non-terminals
    labels = {n.relativize(z.name).to_text() for n in owners | parents}
    decoys = ["vpn", "intranet", "admin", "ftp", "*.www", "mail2"]
    (tmp_path / "words").write_text("\n".join(sorted(labels) + decoys) + "\n")
    proc = sc("walk", "example.test", "--server", z.address, "--wordlist", tmp_path / "words",
              "--json")
    walked = json.loads(proc.stdout)
    assert proc.returncode == 0 and walked["complete"], proc.stdout + proc.stderr
    chain = zone_names(lab / "zones" / "example.test.signed", "example.test.", "NSEC3")
    assert walked["nsec3"]["closed"]
    assert (walked["nsec3"]["hashes"], walked["nsec3"]["recovered"]) == (len(chain), len(chain))
    assert {n["name"] for n in walked["names"]} == {n.to_text() for n in {z.name} | owners | parents}


def test_lab_down_stops_the_drill_proxies(lab: Path) -> None:
    """Runs last: a middlebox drill left running is stopped (proxy and forwarder) by down."""
    assert sc("lab", "drill", "stripping-middlebox", "--dir", lab).returncode == 0
    state = json.loads((lab / "lab.json").read_text())
    pids = [state["processes"][n]["pid"] for n in ("drill-proxy", "drill-forwarder")]
    assert sc("lab", "down", "--dir", lab).returncode == 0
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
