"""The answer cache is bounded in bytes, one budget shared by every listener's zone set:
a flood of random NXDOMAIN queries costs at most the budget, measured with tracemalloc."""

from __future__ import annotations

import random
import tracemalloc

import dns.message
import dns.name
import dns.rcode
import dns.zone

from sigchain.core.serve.cache import CacheBudget, ResponseCache
from sigchain.core.serve.fastpath import respond
from sigchain.core.serve.index import ZoneIndex, ZoneSet
from tests.conftest import EXAMPLE_ZONE

ORIGIN = dns.name.from_text("example.test.")


def _index() -> ZoneIndex:
    zone = dns.zone.from_file(str(EXAMPLE_ZONE), ORIGIN, relativize=False)
    return ZoneIndex.build(ORIGIN, {n: list(node.rdatasets) for n, node in zone.nodes.items()})


def _queries(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [dns.message.make_query(f"{rng.getrandbits(64):016x}.example.test.", "A",
                                   want_dnssec=True).to_wire() for _ in range(count)]


def test_random_nxdomain_flood_stays_within_the_byte_budget() -> None:
    """5,000 random names with a 256 KiB budget: every one answered NXDOMAIN, the cache
    holds what fits and no more (emptied when full, it fills again), and its real memory is
    within the budget."""
    index = _index()
    budget = CacheBudget(256 << 10)
    zones = ZoneSet([index], cache=ResponseCache(budget=budget))
    queries = _queries(5000, 1)
    tracemalloc.start()
    try:
        base = tracemalloc.take_snapshot()
        for q in queries:
            r = respond(zones, q)
            assert r is not None and r[3] & 0x0F == dns.rcode.NXDOMAIN
        grown = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(base, "filename"))
    finally:
        tracemalloc.stop()
    print(f"\n5,000 random NXDOMAIN queries, 256 KiB budget: {len(zones.cache)} answers cached, "
          f"{budget.used} bytes counted, {grown} bytes allocated")
    assert 0 < len(zones.cache) < 5000
    assert 0 < budget.used <= budget.limit
    assert grown <= budget.limit * 1.1  # the counted cost is the real cost
    assert respond(zones, queries[-1]) == respond(zones, queries[-1])  # the last ones kept


def test_one_budget_is_shared_by_every_listener() -> None:
    """Two listeners' zone sets with one budget: together they hold at most the budget."""
    index = _index()
    budget = CacheBudget(256 << 10)
    first = ZoneSet([index], cache=ResponseCache(budget=budget))
    second = ZoneSet([index], cache=ResponseCache(budget=budget))
    for q in _queries(2000, 2):
        respond(first, q)
    for q in _queries(100, 3):
        assert respond(second, q) is not None
    assert first.cache.held + second.cache.held == budget.used <= budget.limit
    assert len(first.cache) > 0
