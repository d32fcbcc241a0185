"""The response cache: rendered answers of one served set of zones, bounded in bytes.

A `ZoneSet` holds one (`ZoneSet.cache`); swapping zones means a new set with an empty cache,
so nothing is ever invalidated. Keys are (lower-cased qname wire, qtype, DO, EDNS, mixed
case, RD/CD bits); values are (response wire after the ID, rcode) — see `fastpath.respond_plain`. The bytes
are counted in a `CacheBudget` that the caches of every listener share (one limit per
process, however many addresses it serves). A cache that is full, or whose budget is, is
emptied and fills again with what is asked from then on (as a generation of a generational
cache: the hot answers come back at once, a flood of random names evicts them at most once
per budget's worth and costs at most the budget).

Beside it, `exact` maps a UDP query's bytes after its ID to the response's bytes after the
ID: for the client that repeats a query byte for byte (the same flags, EDNS size and
options, letter case — most resolvers), a UDP worker answers with one dict lookup and one
concatenation (`edge.udpworkers`), never reaching the parser. Its entries share the budget.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

DEFAULT_CACHE_ENTRIES = 200_000
DEFAULT_CACHE_BYTES = 128 << 20  # the answers of ~100k distinct NSEC3 questions
# What one entry costs beyond its qname and wire: the dict slot, the key and value tuples,
# two bytes-object headers (CPython 3.11, 64-bit; measured in tests/unit/test_cache.py).
ENTRY_OVERHEAD = 320

# An `exact` entry: its dict slot and its key's bytes-object header; a response of its own
# costs one more header.
EXACT_OVERHEAD = 100
BYTES_OVERHEAD = 33

CacheKey = tuple[bytes, int, bool, bool, bool, int]  # (qname, qtype, DO, EDNS, mixed, RD|CD)
CacheEntry = tuple[bytes, int]  # (response wire, rcode)


class CacheBudget:
    """Bytes the caches sharing it may hold together, and how many they hold."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int = DEFAULT_CACHE_BYTES):
        self.limit = limit
        self.used = 0


class ResponseCache:
    """Rendered answers by query shape, within its byte budget and at most `entries` of them
    (then emptied: see the module doc)."""

    __slots__ = ("entries", "budget", "_memo", "get", "_exact", "get_exact", "_used", "keep_exact")

    def __init__(self, entries: int = DEFAULT_CACHE_ENTRIES, budget: CacheBudget | None = None,
                 exact: bool = True):
        self.entries = entries
        # Whether `exact` entries are kept: only where something reads them (`get_exact`),
        # else they would spend the budget and empty the cache the sooner for nothing.
        self.keep_exact = exact
        self.budget = CacheBudget() if budget is None else budget
        self._memo: dict[CacheKey, CacheEntry] = {}
        # The dict's own `get`, bound once: the hot path costs one C call, no Python frame.
        self.get: Callable[[CacheKey], CacheEntry | None] = self._memo.get
        self._used = 0  # bytes of the budget this cache holds
        self._exact: dict[bytes, bytes] = {}  # UDP query after its ID → response after its ID
        self.get_exact: Callable[[bytes], bytes | None] = self._exact.get

    def put(self, key: CacheKey, entry: CacheEntry) -> bool:
        """Keep `entry` unless the cache or its budget is full; True when kept."""
        return self._keep(self._memo, key, entry, len(key[0]) + len(entry[0]) + ENTRY_OVERHEAD)

    def put_exact(self, query: bytes, response: bytes, shared: bool = False) -> bool:
        """Keep the response (after its ID) to a UDP query (after its ID) unless full;
        `shared`: `response` is the very object a `put` entry holds (costs nothing more)."""
        if not self.keep_exact:
            return False
        cost = len(query) + (0 if shared else len(response) + BYTES_OVERHEAD) + EXACT_OVERHEAD
        return self._keep(self._exact, query, response, cost)

    def _keep(self, memo: dict[Any, Any], key: object, value: object, cost: int) -> bool:
        budget = self.budget
        if len(memo) >= self.entries or budget.used + cost > budget.limit:
            if not self._used:
                return False  # the budget is other listeners' caches'
            self.clear()  # full: start again with what is asked now (the working set)
            if budget.used + cost > budget.limit:
                return False
        if key not in memo:
            budget.used += cost
            self._used += cost
        memo[key] = value
        return True

    def clear(self) -> None:
        self.budget.used -= self._used
        self._used = 0
        self._memo.clear()
        self._exact.clear()

    def empty(self) -> ResponseCache:
        """A new empty cache with the same bounds and a budget of its own (for the next
        version of the zones)."""
        return ResponseCache(self.entries, CacheBudget(self.budget.limit))

    @property
    def held(self) -> int:
        """Bytes of the budget this cache holds."""
        return self._used

    def __len__(self) -> int:
        return len(self._memo)
