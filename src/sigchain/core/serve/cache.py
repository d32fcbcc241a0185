"""The response cache: rendered answers of one served set of zones, bounded in entries.

A `ZoneSet` holds one (`ZoneSet.cache`); swapping zones means a new set with an empty cache,
so nothing is ever invalidated. Keys are (lower-cased qname wire, qtype, DO, EDNS, mixed
case); values are (response wire with ID 0, rcode) — see `fastpath.respond_plain`.
"""

from __future__ import annotations

from collections.abc import Callable

DEFAULT_CACHE_ENTRIES = 200_000

CacheKey = tuple[bytes, int, bool, bool, bool]  # (qname key, qtype, DO, EDNS, mixed case)
CacheEntry = tuple[bytes, int]  # (response wire, rcode)


class ResponseCache:
    """Rendered answers by query shape, at most `entries` of them (later ones are not kept)."""

    __slots__ = ("entries", "_memo", "get")

    def __init__(self, entries: int = DEFAULT_CACHE_ENTRIES):
        self.entries = entries
        self._memo: dict[CacheKey, CacheEntry] = {}
        # The dict's own `get`, bound once: the hot path costs one C call, no Python frame.
        self.get: Callable[[CacheKey], CacheEntry | None] = self._memo.get

    def put(self, key: CacheKey, entry: CacheEntry) -> bool:
        """Keep `entry` unless the cache is full; True when kept."""
        if len(self._memo) >= self.entries:
            return False
        self._memo[key] = entry
        return True

    def clear(self) -> None:
        self._memo.clear()

    def empty(self) -> ResponseCache:
        """A new empty cache with the same bound (for the next version of the zones)."""
        return ResponseCache(self.entries)

    def __len__(self) -> int:
        return len(self._memo)
