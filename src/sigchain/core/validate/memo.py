"""Results of costly pure checks remembered by the identity of the objects checked: a
resolver hands the validator the same cached RRset and key objects again and again."""

from __future__ import annotations

from typing import Any


class IdentityMemo:
    """A bounded map from a tuple of objects (by identity, each kept alive by the entry, so an
    id is never reused while remembered) to a value; the oldest entries go first."""

    def __init__(self, size: int):
        self.size = size
        self._entries: dict[tuple[int, ...], tuple[tuple[Any, ...], Any]] = {}

    def get(self, *objects: Any) -> Any:
        """The value remembered for exactly these objects, or None."""
        entry = self._entries.get(tuple(map(id, objects)))
        if entry is None or any(a is not b for a, b in zip(entry[0], objects, strict=True)):
            return None
        return entry[1]

    def put(self, objects: tuple[Any, ...], value: Any) -> None:
        self._entries[tuple(map(id, objects))] = (objects, value)
        while len(self._entries) > self.size:
            try:  # another thread may have evicted it first: either is fine
                del self._entries[next(iter(self._entries))]
            except (KeyError, RuntimeError, StopIteration):
                break
