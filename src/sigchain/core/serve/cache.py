"""The response cache: rendered answers of one served set of zones, bounded in bytes.

A `ZoneSet` holds one (`ZoneSet.cache`); swapping zones means a new set with an empty cache,
so nothing is ever invalidated. Keys are (lower-cased qname wire, qtype, DO, EDNS, mixed
case); values are (response wire with ID 0, rcode) — see `fastpath.respond_plain`. The bytes
are counted in a `CacheBudget` that the caches of every listener share (one limit per
process, however many addresses it serves); a full budget keeps no more answers (they are
still answered, rendered each time), so a flood of random names costs at most the budget.
"""

from __future__ import annotations

from collections.abc import Callable

DEFAULT_CACHE_ENTRIES = 200_000
DEFAULT_CACHE_BYTES = 32 << 20
# What one entry costs beyond its qname and wire: the dict slot, the key and value tuples,
# two bytes-object headers (CPython 3.11, 64-bit; measured in tests/unit/test_cache.py).
ENTRY_OVERHEAD = 320

CacheKey = tuple[bytes, int, bool, bool, bool]  # (qname key, qtype, DO, EDNS, mixed case)
CacheEntry = tuple[bytes, int]  # (response wire, rcode)


class CacheBudget:
    """Bytes the caches sharing it may hold together, and how many they hold."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int = DEFAULT_CACHE_BYTES):
        self.limit = limit
        self.used = 0


class ResponseCache:
    """Rendered answers by query shape, within its byte budget and at most `entries` of them
    (later ones are not kept)."""

    __slots__ = ("entries", "budget", "_memo", "get")

    def __init__(self, entries: int = DEFAULT_CACHE_ENTRIES, budget: CacheBudget | None = None):
        self.entries = entries
        self.budget = CacheBudget() if budget is None else budget
        self._memo: dict[CacheKey, CacheEntry] = {}
        # The dict's own `get`, bound once: the hot path costs one C call, no Python frame.
        self.get: Callable[[CacheKey], CacheEntry | None] = self._memo.get

    def put(self, key: CacheKey, entry: CacheEntry) -> bool:
        """Keep `entry` unless the cache or its budget is full; True when kept."""
        cost = len(key[0]) + len(entry[0]) + ENTRY_OVERHEAD
        budget = self.budget
        if len(self._memo) >= self.entries or budget.used + cost > budget.limit:
            return False
        if key not in self._memo:
            budget.used += cost
        self._memo[key] = entry
        return True

    def clear(self) -> None:
        self.budget.used -= sum(len(k[0]) + len(v[0]) + ENTRY_OVERHEAD
                                for k, v in self._memo.items())
        self._memo.clear()

    def empty(self) -> ResponseCache:
        """A new empty cache with the same bounds and a budget of its own (for the next
        version of the zones)."""
        return ResponseCache(self.entries, CacheBudget(self.budget.limit))

    def __len__(self) -> int:
        return len(self._memo)
