"""`sigchain lab drill|repair` on one lab (as root, 127.53.x port 53, Unbound as the validator):
each drill makes Unbound SERVFAIL while `+cd` still has the data and `diagnose` names the
drill's exact cause; its repair brings validation back. The drills run in sequence on the
module's lab, in file order."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from sigchain.core.lab import hierarchy
from tests.conftest import sc
from tests.interop.diaglab import unbound_lab

UNBOUND = hierarchy.RESOLVERS["unbound"]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield from unbound_lab(tmp_path_factory, "drilllab")


def dig(*args: str) -> tuple[str, bool, list[str]]:
    """Unbound's RCODE, AD flag and A records for a question."""
    out = subprocess.run(["dig", f"@{UNBOUND}", "+dnssec", "+tries=1", "+time=5", *args],
                         capture_output=True, text=True, timeout=30).stdout
    status = out.split("status: ", 1)[1].split(",", 1)[0]
    flags = out.split(";; flags:", 1)[1].split(";", 1)[0].split()
    records = [line.split()[-1] for line in out.splitlines()
               if line and not line.startswith(";") and line.split()[3:4] == ["A"]]
    return status, "ad" in flags, records


def diagnose(lab: Path, qname: str) -> dict:
    proc = sc("diagnose", qname, "--resolver", UNBOUND, "--anchor", lab / "anchor.ds",
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
    # the lab's servers refuse AXFR: row 1 says so and asks for the zone file
    rc, rows = check(lab, "example.test")
    assert rc == 1 and not rows[1]["ok"] and "REFUSED" in rows[1]["detail"]
    assert all(rows[n]["ok"] for n in (2, 3, 4, 5))
    # a zone whose DS matches no key fails row 3 (and its chain, row 2)
    rc, rows = check(lab, "dnssec-failed.test", "--zone-file",
                     lab / "zones" / "dnssec-failed.test.signed")
    assert rc == 1 and not rows[3]["ok"] and not rows[2]["ok"] and rows[1]["ok"]


def healthy(zone: str, probe: str) -> tuple[str, bool, list[str]]:
    if probe.startswith("www."):
        return "NOERROR", True, [hierarchy.record_addresses(hierarchy.zone(zone + "."))["www"]]
    return "NXDOMAIN", True, []


@pytest.mark.parametrize(("name", "zone", "cause", "probe", "check_fails"), [
    ("broken-ds", "example.test", "DS_MISMATCH", "www.example.test", {2, 3, 4}),
    ("expired-rrsig", "nsec.test", "RRSIG_EXPIRED", "www.nsec.test", {1, 2, 4}),
    ("stale-anchor", "example.test", "TRUST_ANCHOR_STALE", "www.example.test", {4}),
    ("stripping-middlebox", "example.test", "RRSIGS_STRIPPED", "www.example.test", {4}),
    # the zone's SOA answer fits in 512 bytes: the checklist does not see this one
    ("small-edns", "example.test", "EDNS_TRUNCATION", "no-such-name.example.test", set()),
])
def test_drill_then_repair(lab: Path, name: str, zone: str, cause: str, probe: str,
                           check_fails: set[int]) -> None:
    good = healthy(zone, probe)
    assert dig(probe, "A") == good
    proc = sc("lab", "drill", name, "--zone", zone, "--dir", lab, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert (report["expected_cause"], report["probe"]) == (cause, probe)
    assert dig(probe, "A")[0] == "SERVFAIL"
    with_cd = dig("+cd", probe, "A")
    if report["cd_data"]:
        assert with_cd[0] == "NOERROR" and with_cd[2] == good[2]
    else:  # the 512-byte middlebox: even unvalidated, the (large) answer never arrives
        assert with_cd[0] == "SERVFAIL"
    found = diagnose(lab, probe)
    assert (found["cause"], found["rc"]) == (cause, 1), found["reason"]
    assert failing_rows(lab, zone) == check_fails
    if name == "stripping-middlebox":  # a denial has no data to compare: the root's keys tell
        assert diagnose(lab, f"no-such-name.{zone}")["cause"] == cause

    proc = sc("lab", "repair", name, "--dir", lab)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert dig(probe, "A") == good
    assert diagnose(lab, probe)["cause"] in ("SECURE", "NXDOMAIN")
    assert not (lab / "drills" / "active.json").exists()
    assert failing_rows(lab, zone) == set()


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
        assert dig("www.example.test", "A")[0] == "SERVFAIL", again.stdout
    finally:
        assert sc("lab", "repair", "broken-ds", "--dir", lab).returncode == 0
    bad = sc("lab", "drill", "no-such-drill", "--dir", lab)
    assert bad.returncode == 2 and "broken-ds" in bad.stderr
    unsigned = sc("lab", "drill", "broken-ds", "--zone", "insecure.test", "--dir", lab)
    assert unsigned.returncode == 2 and "needs a signed" in unsigned.stderr


def test_lab_down_stops_the_drill_proxies(lab: Path) -> None:
    """Runs last: a middlebox drill left running is stopped (proxy and forwarder) by down."""
    assert sc("lab", "drill", "stripping-middlebox", "--dir", lab).returncode == 0
    state = json.loads((lab / "lab.json").read_text())
    pids = [state["processes"][n]["pid"] for n in ("drill-proxy", "drill-forwarder")]
    assert sc("lab", "down", "--dir", lab).returncode == 0
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
