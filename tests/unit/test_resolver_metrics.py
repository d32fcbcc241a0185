"""The resolver's metrics without a resolver: the shared tallies as Prometheus sees them (RCODE
counts, hits and misses, a cumulative latency histogram), and the labelled counts a worker
sends to the main process (unreadable datagrams dropped, not raised)."""

from __future__ import annotations

from prometheus_client import generate_latest

from sigchain.services.resolvermetrics import ResolverMetrics


def _metrics(processes: int = 1) -> ResolverMetrics:
    return ResolverMetrics(lambda: 0.0, lambda: 0.0, processes)


def _values(m: ResolverMetrics) -> dict[str, float]:
    text = generate_latest(m.registry).decode()
    return {k: float(v) for k, _, v in (line.rpartition(" ") for line in text.splitlines()
                                       if line and not line.startswith("#"))}


def test_tallies_of_every_slot_are_summed_into_counters_and_a_histogram() -> None:
    m = _metrics(processes=2)
    m.loop.answer(0, True, 0.00005)  # NOERROR, a hit, within the first bucket
    m.threads.answer(2, False, 0.3)  # SERVFAIL, resolved, in the 0.5 bucket
    m.worker(1)  # as a forked worker would: its own slots of the same memory
    m.loop.answer(3, True, 20.0)  # NXDOMAIN, above every bound
    m.loop.other(5)  # REFUSED: neither hit nor miss
    v = _values(m)
    assert v['sigchain_resolver_queries_total{rcode="NOERROR"}'] == 1
    assert v['sigchain_resolver_queries_total{rcode="SERVFAIL"}'] == 1
    assert v['sigchain_resolver_queries_total{rcode="NXDOMAIN"}'] == 1
    assert v['sigchain_resolver_queries_total{rcode="REFUSED"}'] == 1
    assert 'sigchain_resolver_queries_total{rcode="FORMERR"}' not in v
    assert v["sigchain_resolver_cache_hits_total"] == 2 and v["sigchain_resolver_cache_misses_total"] == 1
    assert v['sigchain_resolver_latency_seconds_bucket{le="0.0001"}'] == 1
    assert v['sigchain_resolver_latency_seconds_bucket{le="0.1"}'] == 1
    assert v['sigchain_resolver_latency_seconds_bucket{le="0.5"}'] == 2
    assert v['sigchain_resolver_latency_seconds_bucket{le="10.0"}'] == 2
    assert v['sigchain_resolver_latency_seconds_bucket{le="+Inf"}'] == 3
    assert v["sigchain_resolver_latency_seconds_count"] == 3
    assert abs(v["sigchain_resolver_latency_seconds_sum"] - 20.30005) < 1e-6


def test_a_workers_labelled_counts_reach_the_main_process() -> None:
    main, worker = _metrics(), _metrics()
    inbox, outbox = ResolverMetrics.relay()
    try:
        worker.send_to(outbox)
        for _ in range(3):
            worker.count("servfail", "6", "dnssec-failed.test.")
        worker.count("upstream_errors", "127.0.0.9", "timeout")
        assert _values(worker).get('sigchain_resolver_servfail_total{ede="6",zone="dnssec-failed.test."}') is None
        worker.flush()
        outbox.send(b"not json")  # dropped with a log line
        outbox.send(b'[["cache_hits", [], 5]]')  # not a labelled counter: ignored
        main.receive(inbox)
        v = _values(main)
        assert v['sigchain_resolver_servfail_total{ede="6",zone="dnssec-failed.test."}'] == 3
        assert v['sigchain_resolver_upstream_errors_total{error="timeout",server="127.0.0.9"}'] == 1
        assert v["sigchain_resolver_cache_hits_total"] == 0
        worker.flush()  # nothing new: nothing sent
        main.receive(inbox)
        assert _values(main)['sigchain_resolver_servfail_total{ede="6",zone="dnssec-failed.test."}'] == 3
    finally:
        inbox.close()
        outbox.close()


def test_zones_and_servers_past_the_bound_are_counted_as_other() -> None:
    """A zone or server label is named by whoever runs it: an attacker inventing bogus zones
    (or name servers) must not grow the process's series without bound. Past MAX_SERIES, a
    new one is counted as "other"; the known ones keep counting; a worker's counts too."""
    from sigchain.services.resolvermetrics import MAX_SERIES

    m = _metrics()
    for i in range(MAX_SERIES + 50):
        m.count("servfail", "6", f"z{i}.evil.")
        m.count("upstream_errors", f"192.0.2.{i % 250}#{5300 + i}", "timeout")
    m.count("servfail", "6", "z0.evil.")
    main, worker = ResolverMetrics.relay()
    w = _metrics()
    w.send_to(worker)
    w.count("servfail", "7", "new.evil.")
    w.flush()
    m.receive(main)
    v = _values(m)
    servfail = {k: n for k, n in v.items() if k.startswith("sigchain_resolver_servfail_total")}
    assert len(servfail) == MAX_SERIES + 2  # the first ones, "other" for EDE 6 and for EDE 7
    assert servfail['sigchain_resolver_servfail_total{ede="6",zone="other"}'] == 50
    assert servfail['sigchain_resolver_servfail_total{ede="7",zone="other"}'] == 1
    assert servfail['sigchain_resolver_servfail_total{ede="6",zone="z0.evil."}'] == 2
    errors = [k for k in v if k.startswith("sigchain_resolver_upstream_errors_total")]
    assert len(errors) == MAX_SERIES + 1
    assert v['sigchain_resolver_upstream_errors_total{error="timeout",server="other"}'] == 50
    main.close()
    worker.close()
