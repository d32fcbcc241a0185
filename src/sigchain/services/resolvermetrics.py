"""The resolver's Prometheus metrics (prometheus_client, one registry per service): queries by
RCODE, SERVFAIL by EDE code and zone, cache hits/misses/size, validations by result, upstream
errors by server, answer latency; served over HTTP with `--metrics ADDR#PORT`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from sigchain.edge.server import ListenAddress
from sigchain.errors import OperationalError

log = logging.getLogger("sigchain.resolver")
LATENCY_BUCKETS = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0)


class ResolverMetrics:
    def __init__(self, cache_size: Callable[[], float], cache_entries: Callable[[], float]):
        r = self.registry = CollectorRegistry()
        p = "sigchain_resolver_"
        self.queries = Counter(p + "queries", "Client queries answered, by RCODE", ["rcode"], registry=r)
        self.servfail = Counter(p + "servfail", "SERVFAIL answers by EDE code and zone",
                                ["ede", "zone"], registry=r)
        self.cache_hits = Counter(p + "cache_hits", "Questions answered from the cache", registry=r)
        self.cache_misses = Counter(p + "cache_misses", "Questions that needed resolution", registry=r)
        size = Gauge(p + "cache_bytes", "Bytes held by the cache (estimated)", registry=r)
        size.set_function(cache_size)
        entries = Gauge(p + "cache_entries", "Entries in the cache", registry=r)
        entries.set_function(cache_entries)
        self.validations = Counter(p + "validations", "Validations by result", ["result"], registry=r)
        self.upstream_errors = Counter(p + "upstream_errors", "Upstream failures by server and kind",
                                       ["server", "error"], registry=r)
        self.latency = Histogram(p + "latency_seconds", "Time to answer a client query",
                                 buckets=LATENCY_BUCKETS, registry=r)
        self._server: Any = None

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
