"""Persistent maps and sorted sequences for the zone index: the next version of a big zone
(`ZoneIndex.patched`) copies only the few pieces a change touches, and the version before
stays valid as it was (answers and transfers under way keep reading it).

A `ShardedMap` is a dict split by key hash into shards of about SHARD_SIZE entries; a
`Chunks` sequence is a sorted tuple split into chunks of about CHUNK_SIZE, found by
bisection on their first items. Both are used only from SHARD_MIN / CHUNK_MIN entries on:
below that a plain dict or tuple, copied whole per change, costs less than its lookups do
split (a lookup in a `ShardedMap` is a Python call, about 100 ns more than a dict's).
`mapping`/`sequence` pick the form for a size; `Draft` collects a version's changes over
either map form; `inserted`/`deleted`/`bisect_*` work on either sequence form."""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar, overload

K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")

SHARD_MIN = 1024  # maps with fewer entries stay plain dicts
SHARD_SIZE = 256  # about this many entries per shard (shard counts are powers of two)
CHUNK_MIN = 1024  # sequences with fewer items stay plain tuples
CHUNK_SIZE = 512  # items per chunk when built; a chunk splits at twice this


class ShardedMap(Mapping[K, V]):
    """An immutable map in shards by key hash; `updated` makes the next version, sharing
    every shard it does not change."""

    __slots__ = ("_shards", "_mask", "_len")

    def __init__(self, shards: tuple[dict[K, V], ...], length: int) -> None:
        self._shards = shards
        self._mask = len(shards) - 1
        self._len = length

    @classmethod
    def of(cls, items: Mapping[K, V]) -> ShardedMap[K, V]:
        count = 1
        while count * SHARD_SIZE < len(items):
            count *= 2
        shards: tuple[dict[K, V], ...] = tuple({} for _ in range(count))
        mask = count - 1
        for k, v in items.items():
            shards[hash(k) & mask][k] = v
        return cls(shards, len(items))

    def get(self, key: K, default: Any = None) -> Any:  # type: ignore[override]
        return self._shards[hash(key) & self._mask].get(key, default)

    def __getitem__(self, key: K) -> V:
        return self._shards[hash(key) & self._mask][key]

    def __contains__(self, key: object) -> bool:
        return key in self._shards[hash(key) & self._mask]

    def __iter__(self) -> Iterator[K]:
        return itertools.chain.from_iterable(self._shards)

    def __len__(self) -> int:
        return self._len

    def items(self) -> Iterable[tuple[K, V]]:  # type: ignore[override]
        return itertools.chain.from_iterable(s.items() for s in self._shards)

    def values(self) -> Iterable[V]:  # type: ignore[override]
        return itertools.chain.from_iterable(s.values() for s in self._shards)

    def updated(self, sets: Mapping[K, V], dels: Iterable[K] = ()) -> ShardedMap[K, V]:
        """The next version: `sets` put in, `dels` taken out; only their shards copied."""
        shards = list(self._shards)
        mask, length = self._mask, self._len
        fresh: set[int] = set()
        for k, v in sets.items():
            i = hash(k) & mask
            if i not in fresh:
                shards[i] = dict(shards[i])
                fresh.add(i)
            if k not in shards[i]:
                length += 1
            shards[i][k] = v
        for k in dels:
            i = hash(k) & mask
            if k not in shards[i]:
                continue
            if i not in fresh:
                shards[i] = dict(shards[i])
                fresh.add(i)
            del shards[i][k]
            length -= 1
        return ShardedMap(tuple(shards), length)

    def shared_shards(self, other: ShardedMap[K, V]) -> int:
        """How many shards this version shares with `other` (for tests and measurements)."""
        return sum(a is b for a, b in zip(self._shards, other._shards, strict=False))

    @property
    def shard_count(self) -> int:
        return len(self._shards)


def mapping(items: dict[K, V]) -> Mapping[K, V]:
    """`items` in the form for its size: itself when small, else a `ShardedMap`."""
    return ShardedMap.of(items) if len(items) >= SHARD_MIN else items


_GONE: Any = object()


class Draft(Mapping[K, V]):
    """A next version being made from `base` (a dict or a `ShardedMap`, left as it is):
    reads see the changes made so far; `finish` makes the new version."""

    def __init__(self, base: Mapping[K, V]) -> None:
        self.base = base
        self.changes: dict[K, V] = {}

    def __getitem__(self, key: K) -> V:
        v = self.get(key, _GONE)
        if v is _GONE:
            raise KeyError(key)
        return v

    def get(self, key: K, default: Any = None) -> Any:  # type: ignore[override]
        v = self.changes[key] if key in self.changes else self.base.get(key, _GONE)
        return default if v is _GONE else v

    def __contains__(self, key: object) -> bool:
        if key in self.changes:
            return self.changes[key] is not _GONE  # type: ignore[index]
        return key in self.base

    def __setitem__(self, key: K, value: V) -> None:
        self.changes[key] = value

    def pop(self, key: K, default: Any = None) -> Any:
        v = self.get(key, _GONE)
        self.changes[key] = _GONE
        return default if v is _GONE else v

    def __iter__(self) -> Iterator[K]:
        changes = self.changes
        for k in self.base:
            if k not in changes:
                yield k
        for k, v in changes.items():
            if v is not _GONE:
                yield k

    def items(self) -> Iterator[tuple[K, V]]:  # type: ignore[override]
        changes = self.changes
        for k, v in self.base.items():
            if k not in changes:
                yield k, v
        for k, v in changes.items():
            if v is not _GONE:
                yield k, v

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def finish(self) -> Mapping[K, V]:
        """The new version (the base itself when nothing changed)."""
        if not self.changes:
            return self.base
        sets = {k: v for k, v in self.changes.items() if v is not _GONE}
        dels = [k for k, v in self.changes.items() if v is _GONE]
        if isinstance(self.base, ShardedMap):
            return self.base.updated(sets, dels)
        d = dict(self.base)
        d.update(sets)
        for k in dels:
            d.pop(k, None)
        return mapping(d)


class Chunks(Sequence[T]):
    """An immutable sequence in chunks; `inserted`/`deleted` copy one chunk and the
    chunk-level lists. Bisection (`bisect_left`/`bisect_right` below) needs it sorted."""

    __slots__ = ("_chunks", "_firsts", "_starts", "_len")

    def __init__(self, chunks: list[tuple[T, ...]]) -> None:
        self._chunks = chunks
        self._firsts = [c[0] for c in chunks]
        starts, n = [], 0
        for c in chunks:
            starts.append(n)
            n += len(c)
        self._starts = starts
        self._len = n

    @classmethod
    def of(cls, items: Sequence[T]) -> Chunks[T]:
        return cls([tuple(items[i:i + CHUNK_SIZE]) for i in range(0, len(items), CHUNK_SIZE)])

    def __len__(self) -> int:
        return self._len

    @overload
    def __getitem__(self, i: int) -> T: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[T]: ...

    def __getitem__(self, i: int | slice) -> T | Sequence[T]:
        if i.__class__ is not int:
            return tuple(self)[i]
        if i < 0:
            i += self._len  # type: ignore[operator]
            if i < 0:  # type: ignore[operator]
                raise IndexError("Chunks index out of range")
        c = bisect.bisect_right(self._starts, i) - 1
        return self._chunks[c][i - self._starts[c]]  # type: ignore[operator]

    def cover(self, x: Any, values: Chunks[Any] | None = None) -> Any:
        """The last item <= `x` (wrapping to the last item when `x` is below them all), or
        the item at its position in `values` (a sequence changed in step with this one:
        the same chunks)."""
        chunks = self._chunks if values is None else values._chunks
        c = bisect.bisect_right(self._firsts, x) - 1
        if c < 0:
            return chunks[-1][-1]
        return chunks[c][bisect.bisect_right(self._chunks[c], x) - 1]

    def __iter__(self) -> Iterator[T]:
        return itertools.chain.from_iterable(self._chunks)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Chunks | tuple | list):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def bisect_right(self, x: Any) -> int:
        c = bisect.bisect_right(self._firsts, x) - 1
        if c < 0:
            return 0
        return self._starts[c] + bisect.bisect_right(self._chunks[c], x)

    def bisect_left(self, x: Any) -> int:
        c = bisect.bisect_left(self._firsts, x) - 1
        if c < 0:
            return 0
        return self._starts[c] + bisect.bisect_left(self._chunks[c], x)

    def _locate(self, i: int) -> tuple[int, int]:
        """(chunk, offset in it) of position `i` (0 <= i <= len: the end is in the last)."""
        c = max(0, bisect.bisect_right(self._starts, i) - 1)
        if c >= len(self._chunks):
            c = len(self._chunks) - 1
        return c, i - self._starts[c]

    def inserted(self, i: int, x: T) -> Chunks[T]:
        """A new sequence with `x` at position `i`."""
        if not self._chunks:
            return Chunks([(x,)])
        c, at = self._locate(i)
        chunk = self._chunks[c]
        new = chunk[:at] + (x,) + chunk[at:]
        chunks = list(self._chunks)
        chunks[c:c + 1] = [new] if len(new) < 2 * CHUNK_SIZE else \
            [new[:len(new) // 2], new[len(new) // 2:]]
        return Chunks(chunks)

    def deleted(self, i: int) -> Chunks[T]:
        """A new sequence without the item at position `i`."""
        c, at = self._locate(i)
        chunk = self._chunks[c]
        new = chunk[:at] + chunk[at + 1:]
        chunks = list(self._chunks)
        chunks[c:c + 1] = [new] if new else []
        return Chunks(chunks)

    def shared_chunks(self, other: Chunks[T]) -> int:
        """How many chunks this sequence shares with `other` (tests and measurements)."""
        theirs = {id(c) for c in other._chunks}
        return sum(id(c) in theirs for c in self._chunks)

    @property
    def chunk_count(self) -> int:
        return len(self._chunks)


def sequence(items: Sequence[T]) -> Sequence[T]:
    """`items` in the form for its length: a tuple when short, else `Chunks`."""
    return Chunks.of(items) if len(items) >= CHUNK_MIN else tuple(items)


def cover(seq: Sequence[Any], x: Any, values: Sequence[Any] | None = None) -> Any:
    """The last item of sorted `seq` that is <= `x`, wrapping to its last item when `x` is
    below them all (as a covering NSEC/NSEC3 record is found); with `values` (a sequence
    made and changed in step with `seq`), the item at that position in it."""
    if type(seq) is tuple:
        return (seq if values is None else values)[bisect.bisect_right(seq, x) - 1]
    return seq.cover(x, values)  # type: ignore[attr-defined]


def bisect_right(seq: Sequence[Any], x: Any) -> int:
    return bisect.bisect_right(seq, x) if type(seq) is tuple else seq.bisect_right(x)  # type: ignore[attr-defined]


def bisect_left(seq: Sequence[Any], x: Any) -> int:
    return bisect.bisect_left(seq, x) if type(seq) is tuple else seq.bisect_left(x)  # type: ignore[attr-defined]


def inserted(seq: Sequence[T], i: int, x: T) -> Sequence[T]:
    """`seq` with `x` at position `i`, as a new sequence (`seq` left as it is)."""
    if isinstance(seq, Chunks):
        return seq.inserted(i, x)
    return sequence((*seq[:i], x, *seq[i:]))


def deleted(seq: Sequence[T], i: int) -> Sequence[T]:
    """`seq` without its item at position `i`, as a new sequence."""
    if isinstance(seq, Chunks):
        return seq.deleted(i)
    return sequence((*seq[:i], *seq[i + 1:]))
