"""`sigchain exporter` as a process: real zones served by `sigchain serve` on 127.57.x,
scraped over HTTP and read with prometheus_client's own parser."""

from __future__ import annotations

import json
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port, sc, terminate
from tests.interop.exporter_zones import (
    BOGUS_RESOLVER,
    DAY,
    FRESH,
    MIXED,
    PARENT,
    RESOLVER,
    SILENT,
    STALE,
    WRONG_PARENT,
    ZONE,
    Daemon,
    Samples,
    build,
    mixed,
    scrape,
    serve,
    unbound,
)


def value(samples: Samples, metric: str, /, **labels: str) -> float | None:
    return samples.get((metric, frozenset(labels.items())))


def start_exporter(tmp: Path, *extra: str) -> tuple[Daemon, str]:
    port = free_port(PARENT)
    args = ["exporter", "--listen", f"{PARENT}#{port}", "--interval", "1s", "--timeout", "0.5",
            *extra]
    return Daemon(tmp / f"exporter-{port}.log", args), f"http://{PARENT}:{port}/metrics"


@pytest.fixture(scope="module")
def silent() -> Iterator[None]:
    """A server that never answers: its port is bound (so no ICMP refusal) and never read."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((SILENT, 53))
        yield


@pytest.fixture(scope="module")
def world(silent: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    base = tmp_path_factory.mktemp("exporter")
    zones = build(base)
    daemons = []  # each kept as it starts: one that fails to start stops those before it
    exporter = None
    resolvers = []
    try:
        for address, origin, zone in ((FRESH, ZONE, "fresh"), (STALE, ZONE, "stale"),
                                      (PARENT, "test.", "parent"), (WRONG_PARENT, "test.", "wrong")):
            daemons.append(serve(base, address, origin, zones[zone]))
        for address, parent in ((RESOLVER, PARENT), (BOGUS_RESOLVER, WRONG_PARENT)):
            resolvers.append(unbound(base, address, parent))
        exporter, url = start_exporter(
            base, "--zone", f"{ZONE}={FRESH},{SILENT}", "--find-servers",
            "--parent-server", PARENT, "--parent-server", WRONG_PARENT,
            "--resolver", RESOLVER, "--resolver", BOGUS_RESOLVER, "--anchor", str(base / "test.ds"))
        deadline = time.monotonic() + 20
        while True:
            samples = scrape(url)
            if value(samples, "dnssec_zone_ds_count", zone=ZONE, parent_server=WRONG_PARENT) \
                    is not None and value(samples, "dnssec_zone_validates", zone=ZONE,
                                          resolver=BOGUS_RESOLVER) is not None:
                break
            assert time.monotonic() < deadline, exporter.text()
            time.sleep(0.2)
        yield {"url": url, "samples": samples, "exporter": exporter, "now": time.time(),
               "zones": zones}
    finally:
        if exporter is not None:
            exporter.stop()
        for d in daemons:
            d.stop()
        for r in resolvers:
            terminate(r)


def test_each_server_shows_its_own_earliest_expiry(world: dict[str, object]) -> None:
    s, now = world["samples"], world["now"]
    assert isinstance(s, dict) and isinstance(now, float)
    earliest = "dnssec_zone_rrsig_earliest_expiry_timestamp_seconds"
    fresh = value(s, earliest, zone=ZONE, server=FRESH)
    stale = value(s, earliest, zone=ZONE, server=STALE)  # found from the NS RRset
    assert fresh is not None and stale is not None, sorted(k for k in s if k[0] == earliest)
    assert abs(fresh - (now - 3600 + 14 * DAY)) < 600
    assert abs(stale - (now + 2 * DAY)) < 600
    for server, first in ((FRESH, fresh), (STALE, stale)):
        for rdtype in ("SOA", "DNSKEY", "NS"):
            exp = value(s, "dnssec_zone_rrsig_expiry_timestamp_seconds", zone=ZONE,
                        server=server, name=ZONE, type=rdtype)
            inc = value(s, "dnssec_zone_rrsig_inception_timestamp_seconds", zone=ZONE,
                        server=server, name=ZONE, type=rdtype)
            assert exp is not None and inc is not None and inc < now < exp
            assert exp >= first
    assert value(s, "dnssec_zone_serial", zone=ZONE, server=FRESH) == 2
    assert value(s, "dnssec_zone_serial", zone=ZONE, server=STALE) == 1


def test_probe_success_per_server(world: dict[str, object]) -> None:
    s = world["samples"]
    assert isinstance(s, dict)
    for server in (FRESH, STALE, PARENT, WRONG_PARENT):
        assert value(s, "dnssec_probe_success", zone=ZONE, server=server) == 1, server
    assert value(s, "dnssec_probe_success", zone=ZONE, server=SILENT) == 0
    assert value(s, "dnssec_zone_rrsig_earliest_expiry_timestamp_seconds", zone=ZONE,
                 server=SILENT) is None
    took = value(s, "dnssec_probe_duration_seconds", zone=ZONE, server=SILENT)
    assert took is not None and took >= 0.4  # it waited for the timeout


def test_ds_compared_with_the_served_keys(world: dict[str, object]) -> None:
    s = world["samples"]
    assert isinstance(s, dict)
    assert value(s, "dnssec_zone_ds_matches_dnskey", zone=ZONE, parent_server=PARENT) == 1
    assert value(s, "dnssec_zone_ds_matches_dnskey", zone=ZONE, parent_server=WRONG_PARENT) == 0
    assert value(s, "dnssec_zone_ds_count", zone=ZONE, parent_server=PARENT) == 1
    assert value(s, "dnssec_zone_ds_count", zone=ZONE, parent_server=WRONG_PARENT) == 1


def test_resolvers_validate_or_not(world: dict[str, object]) -> None:
    """Unbound through the parent with the right DS validates (AD); through the one with a
    DS for a key the zone does not have, it answers SERVFAIL."""
    s = world["samples"]
    assert isinstance(s, dict)
    assert value(s, "dnssec_zone_validates", zone=ZONE, resolver=RESOLVER) == 1
    assert value(s, "dnssec_zone_validates", zone=ZONE, resolver=BOGUS_RESOLVER) == 0
    assert value(s, "dnssec_probe_success", zone=ZONE, server=BOGUS_RESOLVER) == 1
    # the zone's large answers (DNSKEY RRset, the denial of a made-up name) come whole with
    # AD from the first; the second fails them as it fails the SOA
    large = "dnssec_zone_resolver_large_answer_ok"
    assert value(s, large, zone=ZONE, resolver=RESOLVER) == 1
    assert value(s, large, zone=ZONE, resolver=BOGUS_RESOLVER) == 0
    # sigchain's own validation from test.'s key, through each resolver with CD=1
    assert value(s, "dnssec_zone_chain_validates", zone=ZONE, resolver=RESOLVER) == 1
    assert value(s, "dnssec_zone_chain_validates", zone=ZONE, resolver=BOGUS_RESOLVER) == 0


def test_scrape_is_fast_while_a_server_is_silent(world: dict[str, object]) -> None:
    """Probes of the silent server take 0.5 s each and run every second: scrapes land while
    one is waiting, and still answer at once. (A scrape that waited on DNS would take the
    0.5 s timeout every time; on a loaded 2-core machine one scrape in a few can be held up
    by the scheduler, so the rule is: most under 100 ms, none near the timeout.)"""
    url = world["url"]
    assert isinstance(url, str)
    times = []
    for _ in range(15):
        start = time.monotonic()
        samples = scrape(url)
        times.append(time.monotonic() - start)
        assert value(samples, "dnssec_probe_success", zone=ZONE, server=SILENT) == 0
        time.sleep(0.1)
    shown = [round(t, 3) for t in times]
    assert sum(t < 0.1 for t in times) >= 12 and max(times) < 0.4, shown


def test_axfr_probe_covers_the_whole_zone(tmp_path: Path, world: dict[str, object]) -> None:
    """With --axfr the earliest expiry is that of the zone's first signature to expire
    (www A, older than the apex's), and each RRset has its own series."""
    path = mixed(tmp_path, world["zones"])  # type: ignore[arg-type]
    config = tmp_path / "serve.toml"
    config.write_text(f'[zones."{ZONE}"]\nfile = "{path}"\nallow-transfer = ["127.0.0.0/8"]\n'
                      f'[[listen]]\naddress = "{MIXED}#53"\n')
    server = Daemon(tmp_path / "serve.log", ["serve", "--config", str(config),
                                              "--udp-workers", "1"])
    exporter, url = start_exporter(tmp_path, "--axfr", "--zone", f"{ZONE}={MIXED}")
    try:
        deadline = time.monotonic() + 20
        while value(s := scrape(url), "dnssec_probe_success", zone=ZONE,
                    server=MIXED) is None:
            assert time.monotonic() < deadline, exporter.text()
            time.sleep(0.2)
    finally:
        exporter.stop()
        server.stop()
    assert value(s, "dnssec_probe_success", zone=ZONE, server=MIXED) == 1, exporter.text()
    www = value(s, "dnssec_zone_rrsig_expiry_timestamp_seconds", zone=ZONE, server=MIXED,
                name=f"www.{ZONE}", type="A")
    soa = value(s, "dnssec_zone_rrsig_expiry_timestamp_seconds", zone=ZONE, server=MIXED,
                name=ZONE, type="SOA")
    assert www is not None and soa is not None and www < soa - 10 * DAY
    assert value(s, "dnssec_zone_rrsig_earliest_expiry_timestamp_seconds", zone=ZONE,
                 server=MIXED) == www
    assert value(s, "dnssec_zone_rrsig_expiry_timestamp_seconds", zone=ZONE, server=MIXED,
                 name=f"mail.{ZONE}", type="NSEC") is not None


def test_exits_cleanly_on_sigterm(tmp_path: Path, silent: None) -> None:
    """Even with a probe waiting on a silent server."""
    exporter, url = start_exporter(tmp_path, "--zone", f"{ZONE}={SILENT}")
    scrape(url)
    exporter.proc.send_signal(signal.SIGTERM)
    assert exporter.proc.wait(5) == 0, exporter.text()
    exporter.stop()
    assert "Traceback" not in exporter.text()


def test_key_states_of_a_managed_zone(tmp_path: Path, silent: None) -> None:
    """--keys ZONE=DIR: each key's record states and next change, as `keys status` has them,
    read from the key directory's state at scrape time."""
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    at = int(time.time())
    sc("keys", "run", ZONE, "--policy", "ksk-zsk", "--keys", keys, check=True)
    status = json.loads(sc("keys", "status", ZONE, "--keys", keys, "--json", check=True).stdout)
    exporter, url = start_exporter(tmp_path, "--zone", f"{ZONE}={SILENT}", "--keys",
                                   f"{ZONE}={keys}")
    try:
        samples = scrape(url)
    finally:
        exporter.stop()
    rows = status["keys"]
    assert len(rows) == 2
    for row in rows:
        tag, role = str(row["tag"]), row["role"]
        for record, state in row["states"].items():
            expected = {"hidden": 0, "rumoured": 1, "omnipresent": 2, "unretentive": 3}[state]
            assert value(samples, "dnssec_key_state", zone=ZONE, keytag=tag, role=role,
                         record=record.upper()) == expected
        # Just published: the DNSKEY is rumoured until the TTLs pass, and that is the next event.
        assert row["states"]["dnskey"] == "rumoured"
        nxt = value(samples, "dnssec_key_next_event_timestamp_seconds", zone=ZONE, keytag=tag)
        assert nxt is not None and nxt > at
