"""The shipped alert rules: promtool checks and unit-tests them, and Prometheus itself
(Debian's) scrapes a running exporter and evaluates them against a server whose signatures
expire in two days."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port, need, terminate
from tests.interop.exporter_zones import FRESH, STALE, ZONE, Daemon, build, serve

RULES = ROOT / "alerts" / "dnssec.rules.yml"
PROMETHEUS = "127.57.0.9"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([need("promtool"), *args], capture_output=True, text=True, timeout=60,
                          cwd=RULES.parent)


def test_promtool_checks_the_rules() -> None:
    proc = promtool("check", "rules", RULES.name)
    assert proc.returncode == 0 and "SUCCESS: 7 rules found" in proc.stdout, proc.stdout + proc.stderr


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
    servers = [serve(base, FRESH, ZONE, zones["fresh"]), serve(base, STALE, ZONE, zones["stale"])]
    port = free_port(PROMETHEUS)
    exporter = Daemon(base / "exporter.log", [
        "exporter", "--listen", f"{PROMETHEUS}#{port}", "--interval", "1s",
        "--zone", f"{ZONE}={FRESH},{STALE}"])
    short = base / "short.rules.yml"
    short.write_text(RULES.read_text().replace("name: dnssec\n", "name: dnssec-short\n")
                     .replace("for: 15m", "for: 2s"))
    config = base / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: ['{RULES}', '{short}']\n"
        f"scrape_configs:\n  - job_name: dnssec\n    static_configs:\n"
        f"      - targets: ['{PROMETHEUS}:{port}']\n")
    web = free_port(PROMETHEUS)
    log = open(base / "prometheus.log", "w")
    proc = subprocess.Popen([need("prometheus"), f"--config.file={config}",
                             f"--storage.tsdb.path={base / 'tsdb'}",
                             f"--web.listen-address={PROMETHEUS}:{web}"],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        yield f"http://{PROMETHEUS}:{web}"
    finally:
        terminate(proc)
        log.close()
        exporter.stop()
        for s in servers:
            s.stop()


def _get(url: str) -> dict:  # type: ignore[type-arg]
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


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
