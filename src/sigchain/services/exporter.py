"""`sigchain exporter` as a service: one probe thread per zone on its own schedule, the last
snapshot of each zone kept whole, and a Prometheus endpoint that only reads the snapshots
(a scrape never does DNS, so it answers at once even while a server is silent).

Key-state metrics (`dnssec_key_state{zone,keytag,role,record}`, value 0 hidden, 1 rumoured,
2 omnipresent, 3 unretentive, and `dnssec_key_next_event_timestamp_seconds{zone,keytag}`)
come from a `KeySource` per zone with a key directory (services/exporterkeys).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from typing import Protocol

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric

from sigchain.clock import SYSTEM, Clock
from sigchain.core.probe.metrics import Family, families
from sigchain.core.probe.zone import ZoneSnapshot
from sigchain.errors import OperationalError
from sigchain.services.exporterconfig import ExporterConfig, ZoneTarget
from sigchain.services.exporterkeys import KeyStateSource
from sigchain.services.exporterprobe import probe_zone

log = logging.getLogger("sigchain.exporter")


class KeySource(Protocol):
    """Where key-state families come from (the seam for the key lifecycle's SQLite state)."""

    def families(self, now: int) -> list[Family]: ...


class Snapshots:
    """The last snapshot of every zone; a probe thread replaces its zone's whole, so a scrape
    sees one complete round per zone."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._zones: dict[str, ZoneSnapshot] = {}

    def put(self, snap: ZoneSnapshot) -> None:
        with self._lock:
            self._zones[snap.zone] = snap

    def all(self) -> list[ZoneSnapshot]:
        with self._lock:
            return list(self._zones.values())


class _Collector:
    def __init__(self, snapshots: Snapshots, keys: Sequence[KeySource], clock: Clock):
        self.snapshots, self.keys, self.clock = snapshots, keys, clock

    def collect(self) -> Iterator[Metric]:
        fams = families(self.snapshots.all())
        for source in self.keys:
            fams += source.families(self.clock.now())
        for fam in fams:
            gauge = GaugeMetricFamily(fam.name, fam.help, labels=list(fam.labels))
            for labels, value in fam.samples:
                gauge.add_metric(list(labels), value)
            yield gauge


class Exporter:
    """The probe threads and the HTTP endpoint; `run` returns after `stop()`."""

    def __init__(self, config: ExporterConfig, keys: Sequence[KeySource] = (),
                 clock: Clock = SYSTEM):
        self.config, self.clock = config, clock
        keys = list(keys) + [KeyStateSource(t.zone, t.keys) for t in config.zones if t.keys]
        self.snapshots = Snapshots()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self.snapshots, keys, clock))  # type: ignore[arg-type]
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def _probe_loop(self, target: ZoneTarget) -> None:
        failing: dict[str, str] = {}  # server → its error: logged when it starts or ends
        while not self._stop.is_set():
            started = self.clock.monotonic()
            try:
                snap = probe_zone(target, self.config.timeout, self.clock, self.config.anchors)
            except Exception:  # a bug in one probe must not stop the zone's monitoring
                log.exception("probe of %s failed", target.zone)
            else:
                self.snapshots.put(snap)
                _log_changes(target, snap, failing)
            self._stop.wait(max(0.0, target.interval - (self.clock.monotonic() - started)))

    def run(self) -> None:
        listen = self.config.listen
        try:
            server, thread = start_http_server(listen.port, listen.host, self.registry)
        except OSError as exc:
            raise OperationalError(f"cannot listen on {listen}: {exc.strerror or exc}") from None
        threads = [threading.Thread(target=self._probe_loop, args=(t,), daemon=True,
                                    name=f"probe {t.zone}") for t in self.config.zones]
        for t in threads:
            t.start()
        host = f"[{listen.host}]" if ":" in listen.host else listen.host
        log.info("ready: http://%s:%d/metrics, %d zone(s)", host, listen.port,
                 len(self.config.zones))
        try:
            self._stop.wait()
        finally:
            server.shutdown()
            server.server_close()
            thread.join(2)
        log.info("stopped")


def _log_changes(target: ZoneTarget, snap: ZoneSnapshot, failing: dict[str, str]) -> None:
    """Log a probe that starts failing (or fails differently) and one that recovers, not
    the same failure every round."""
    probes = [(p.server, p.ok, p.error) for p in snap.servers]
    probes += [(p.parent_server, p.ok, p.error) for p in snap.ds]
    probes += [(p.resolver, p.ok, p.error) for p in snap.resolvers]
    probes += [(f"{p.resolver} (large answers)", not p.large_error, p.large_error)
               for p in snap.resolvers if p.ok]
    for server, ok, error in probes:
        if not ok and failing.get(server) != error:
            log.warning("%s at %s: %s", target.zone, server, error)
            failing[server] = error
        elif ok and server in failing:
            log.info("%s at %s: answering again", target.zone, server)
            del failing[server]
