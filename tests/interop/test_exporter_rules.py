"""The shipped alert rules: promtool checks and unit-tests them, and Prometheus itself
(Debian's) scrapes a running exporter and evaluates them against a server whose signatures
expire in two days."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port, need
from tests.interop.exporter_zones import FRESH, RULES, STALE, ZONE, Daemon, build, serve
from tests.interop.exporter_zones import get_json as _get
from tests.interop.exporter_zones import prometheus as run_prometheus

PROMETHEUS = "127.57.0.9"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([need("promtool"), *args], capture_output=True, text=True, timeout=60,
                          cwd=RULES.parent)


def test_promtool_checks_the_rules() -> None:
    proc = promtool("check", "rules", RULES.name)
    assert proc.returncode == 0 and "SUCCESS: 11 rules found" in proc.stdout, proc.stdout + proc.stderr


def test_promtool_rule_tests_pass() -> None:
    """DnssecRrsigExpiringSoon fires for the stale server only, after 15 minutes; every other
    alert fires on its failure and stays quiet on a healthy zone."""
    proc = promtool("test", "rules", "dnssec.rules.test.yml")
    assert proc.returncode == 0 and "SUCCESS" in proc.stdout, proc.stdout + proc.stderr


def test_promtool_rule_test_fails_when_a_rule_is_wrong(tmp_path: Path) -> None:
    """The rule tests can fail: with the threshold cut to one day the stale server is missed."""
    (tmp_path / RULES.name).write_text(RULES.read_text().replace("< 3 * 86400", "< 86400"))
    test = RULES.parent / "dnssec.rules.test.yml"
    (tmp_path / test.name).write_text(test.read_text())
    proc = subprocess.run([need("promtool"), "test", "rules", test.name], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "alertname: DnssecRrsigExpiringSoon" in out, out


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """sigchain serve (fresh and stale), the exporter, and Prometheus scraping it every
    second with the shipped rules and a copy whose `for:` is 2 s (group dnssec-short)."""
    base = tmp_path_factory.mktemp("prometheus")
    zones = build(base, parents=False)
    servers = []  # each kept as it starts: one that fails to start stops those before it
    exporter = None
    try:
        for address, zone in ((FRESH, "fresh"), (STALE, "stale")):
            servers.append(serve(base, address, ZONE, zones[zone]))
        port = free_port(PROMETHEUS)
        exporter = Daemon(base / "exporter.log", [
            "exporter", "--listen", f"{PROMETHEUS}#{port}", "--interval", "1s",
            "--zone", f"{ZONE}={FRESH},{STALE}"])
        with run_prometheus(base, PROMETHEUS, f"{PROMETHEUS}:{port}", "2s") as url:
            yield url
    finally:
        if exporter is not None:
            exporter.stop()
        for s in servers:
            s.stop()


def test_prometheus_evaluates_the_shipped_rules_on_the_exporter(prometheus: str) -> None:
    """The stale server's alert is pending under the shipped rule (for: 15m) and firing
    under the short copy; the fresh server raises nothing."""
    deadline = time.monotonic() + 45
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        try:
            rules = _get(f"{prometheus}/api/v1/rules")["data"]["groups"]
        except OSError:
            time.sleep(0.5)  # Prometheus is still starting
            continue
        states = {g["name"]: r["state"] for g in rules for r in g["rules"]
                  if r["name"] == "DnssecRrsigExpiringSoon"}
        if states == {"dnssec": "pending", "dnssec-short": "firing"}:
            break
        time.sleep(0.5)
    assert states == {"dnssec": "pending", "dnssec-short": "firing"}, states
    alerts = _get(f"{prometheus}/api/v1/alerts")["data"]["alerts"]
    soon = [a for a in alerts if a["labels"]["alertname"] == "DnssecRrsigExpiringSoon"]
    assert {(a["labels"]["server"], a["state"]) for a in soon} == {
        (STALE, "pending"), (STALE, "firing")}, soon
    assert all(a["labels"]["zone"] == ZONE for a in soon)
