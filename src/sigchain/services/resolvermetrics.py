"""The resolver's Prometheus metrics (prometheus_client, one registry per service): queries by
RCODE, SERVFAIL by EDE code and zone, cache hits/misses/size, validations by result, upstream
errors by server, answer latency; served over HTTP with `--metrics ADDR#PORT`.

Queries by RCODE, cache hits and misses and the latency histogram are counted for every
answer, so they are plain integers in memory shared across fork (`Tally`), not
prometheus_client objects (a lock and several calls per increment: more than a cache hit
costs to answer). Each worker process counts into slots of its own; the process serving
`/metrics` sums every slot, so they cover all workers. The other counters (labelled by zone,
EDE, server: open-ended label sets) are prometheus_client counters of the main process; a
worker process adds its counts up and sends them there every second (`relay`) over a datagram
socket pair made before the fork."""

from __future__ import annotations

import bisect
import json
import logging
import socket
import threading
from collections import Counter as Tallied
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from sigchain.edge.server import ListenAddress
from sigchain.edge.udpworkers import SharedCounters
from sigchain.errors import OperationalError

log = logging.getLogger("sigchain.resolver")
LATENCY_BUCKETS = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0)
RCODES = 17  # the header's RCODE values, and BADVERS (16: what the resolver answers above 15)
HITS, MISSES = RCODES, RCODES + 1
LATENCY = RCODES + 2  # a count per bucket (the last: above every bound), then the sum in ns
LATENCY_SUM = LATENCY + len(LATENCY_BUCKETS) + 1
FIELDS = LATENCY_SUM + 1
RELAY_SECONDS = 1.0  # how often a worker sends its labelled counts to the main process
_RELAY_ITEMS = 100  # counts per datagram (each a metric name, up to two labels and a number)
_LABELLED = ("servfail", "validations", "upstream_errors", "dropped")
# label sets kept per labelled counter: zones and servers are named by whoever runs them (an
# attacker can invent endless bogus zones or name-server addresses), so past this many a new
# zone or server is counted as "other" — each series is memory kept for the process's life
MAX_SERIES = 1000
_OPEN_LABEL = {"servfail": 1, "upstream_errors": 0}  # which label is open-ended
_RCODE_TEXT = ("NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN",
               "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE", "DSOTYPENI", "RESERVED12",
               "RESERVED13", "RESERVED14", "RESERVED15", "BADVERS")


class Tally:
    """One writer's counts (a slot of shared memory): a single thread writes to it, or
    several holding one lock — an increment is not atomic across threads."""

    def __init__(self, view: memoryview):
        self.view = view

    def answer(self, rcode: int, hit: bool, seconds: float) -> None:
        """An answer sent: its RCODE, whether the cache had it, how long it took."""
        v = self.view
        v[rcode] += 1
        v[HITS if hit else MISSES] += 1
        v[LATENCY + bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1  # le: bound included
        v[LATENCY_SUM] += int(seconds * 1e9)

    def other(self, rcode: int) -> None:
        """An answer given without looking at the cache (REFUSED, FORMERR, NOTIMP)."""
        self.view[rcode] += 1


class _Tallies(Collector):
    """The Prometheus view of every slot's counts, summed."""

    def __init__(self, shared: SharedCounters):
        self.shared = shared

    def collect(self) -> Iterator[Metric]:
        totals = self.shared.totals()
        p = "sigchain_resolver_"
        queries = CounterMetricFamily(p + "queries", "Client queries answered, by RCODE", labels=["rcode"])
        for code in range(RCODES):
            if totals[code]:
                queries.add_metric([_RCODE_TEXT[code]], totals[code])
        yield queries
        yield CounterMetricFamily(p + "cache_hits", "Questions answered from the cache", totals[HITS])
        yield CounterMetricFamily(p + "cache_misses", "Questions that needed resolution", totals[MISSES])
        cumulative, buckets = 0, []
        for i, bound in enumerate((*LATENCY_BUCKETS, float("inf"))):
            cumulative += totals[LATENCY + i]
            buckets.append((floatToGoString(bound), cumulative))
        yield HistogramMetricFamily(p + "latency_seconds", "Time to answer a client query",
                                    buckets=buckets, sum_value=totals[LATENCY_SUM] / 1e9)


class ResolverMetrics:
    def __init__(self, cache_size: Callable[[], float], cache_entries: Callable[[], float],
                 processes: int = 1):
        r = self.registry = CollectorRegistry()
        p = "sigchain_resolver_"
        # two slots per process: its event loop's thread, and its resolution thread (locked)
        self.shared = SharedCounters(FIELDS, 2 * max(processes, 1))
        r.register(_Tallies(self.shared))
        self.worker(0)
        self.servfail = Counter(p + "servfail", "SERVFAIL answers by EDE code and zone",
                                ["ede", "zone"], registry=r)
        size = Gauge(p + "cache_bytes", "Bytes held by the cache (estimated)", registry=r)
        size.set_function(cache_size)
        entries = Gauge(p + "cache_entries", "Entries in the cache", registry=r)
        entries.set_function(cache_entries)
        self.validations = Counter(p + "validations", "Validations by result", ["result"], registry=r)
        self.upstream_errors = Counter(p + "upstream_errors", "Upstream failures by server and kind",
                                       ["server", "error"], registry=r)
        self.dropped = Counter(p + "dropped", "Client questions dropped unanswered, by reason",
                               ["reason"], registry=r)
        self._server: Any = None
        self._relay: socket.socket | None = None  # a worker's end: counts go to the main process
        self._pending: Tallied[tuple[str, tuple[str, ...]]] = Tallied()
        self._lock = threading.Lock()
        self._series: dict[str, set[tuple[str, ...]]] = {}

    def count(self, metric: str, *labels: str) -> None:
        """Add one to a labelled counter ("servfail", "validations", "upstream_errors",
        "dropped"): here, or (a worker) to be sent to the main process with the next `flush`."""
        if self._relay is None:
            self._inc(metric, labels, 1)
            return
        with self._lock:
            self._pending[(metric, labels)] += 1

    def _inc(self, metric: str, labels: tuple[str, ...], n: int) -> None:
        """Add `n` to a labelled counter, a new zone or server past MAX_SERIES as "other"."""
        with self._lock:
            seen = self._series.setdefault(metric, set())
            if labels not in seen:
                at = _OPEN_LABEL.get(metric)
                if at is not None and len(seen) >= MAX_SERIES:
                    labels = (*labels[:at], "other", *labels[at + 1:])
                seen.add(labels)
        getattr(self, metric).labels(*labels).inc(n)

    @staticmethod
    def relay() -> tuple[socket.socket, socket.socket]:
        """A socket pair for the workers' counts: (the main process's end, the workers' end),
        made before forking them."""
        main, workers = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        main.setblocking(False)
        workers.setblocking(False)
        return main, workers

    def send_to(self, sock: socket.socket) -> None:
        """(In a worker) count labelled metrics for the main process, over `sock`."""
        self._relay = sock

    def flush(self) -> None:
        """(In a worker) send the counts added up since the last flush; any that cannot be
        sent now (a full socket buffer) wait for the next one."""
        if self._relay is None:
            return
        with self._lock:
            pending, self._pending = self._pending, Tallied()
        items = [[metric, list(labels), n] for (metric, labels), n in pending.items()]
        for i in range(0, len(items), _RELAY_ITEMS):
            chunk = items[i:i + _RELAY_ITEMS]
            try:
                self._relay.send(json.dumps(chunk).encode())
            except OSError:  # full, or the main process is gone: keep them for the next time
                with self._lock:
                    for metric, labels, n in items[i:]:
                        self._pending[(metric, tuple(labels))] += n
                return

    def receive(self, sock: socket.socket) -> None:
        """(In the main process) add the counts the workers sent."""
        while True:
            try:
                data = sock.recv(1 << 20)
            except (BlockingIOError, InterruptedError):
                return
            try:
                for metric, labels, n in json.loads(data):
                    if metric in _LABELLED and isinstance(n, int) and n > 0:
                        self._inc(metric, tuple(map(str, labels)), n)
            except (ValueError, TypeError) as exc:  # not from a worker of ours: dropped
                log.warning("metrics from a worker: unreadable datagram dropped (%s)", exc)

    def worker(self, index: int) -> None:
        """Count into worker `index`'s slots from now on (called in a forked worker)."""
        self.loop = Tally(self.shared.view(2 * index))  # the event loop's thread only
        self.threads = Tally(self.shared.view(2 * index + 1))  # under the service's lock

    def serve(self, address: ListenAddress) -> None:
        try:
            started = start_http_server(address.port, address.host, registry=self.registry)
        except OSError as exc:
            raise OperationalError(f"cannot serve metrics on {address}: {exc.strerror or exc}") from None
        self._server = started[0] if isinstance(started, tuple) else None
        log.info("metrics on http://%s:%d/metrics", address.host, address.port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
