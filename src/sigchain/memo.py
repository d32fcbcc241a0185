"""A bounded memo: a dict that forgets everything once it holds `limit` entries. The hot
paths that meet the same few values again and again (a zone's keys and key tags, the names
and records of upstream replies) look up with the dict's own `get`, and `keep` on a miss."""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Kept(dict[K, V]):
    """`keep(key, value)` stores and returns `value`, first dropping every entry when the
    memo is full: a memo outside any cache's memory limit stays small, and the values met
    most often come back at once."""

    __slots__ = ("limit",)

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def keep(self, key: K, value: V) -> V:
        if len(self) >= self.limit:
            self.clear()
        self[key] = value
        return value
