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
SHARD_SIZE = 32  # about this many entries per shard (shard counts are powers of two)
GROUP_SHARDS = 1024  # shards per group at most (a power of two; see ShardedMap)
CHUNK_MIN = 1024  # sequences with fewer items stay plain tuples
CHUNK_SIZE = 64  # items per chunk when built; a chunk splits at twice this
BLOCK_SIZE = 64  # chunks per block when built; a block splits at twice this (see Chunks)


class ShardedMap(Mapping[K, V]):
    """An immutable map in shards by key hash, the shards in groups (a two-level table);
    `updated` makes the next version, sharing every shard and group it does not change.

    A change copies its shard (increasing the reference count of each entry in it), its
    group and the table of groups: small shards and two levels keep that to a few hundred
    references at a million entries — each a page written, and in a forked worker that
    shares the zone with the main process, a page copied on first write."""

    __slots__ = ("_groups", "_mask", "_bits", "_inner", "_len")

    def __init__(self, groups: tuple[tuple[dict[K, V], ...], ...], length: int) -> None:
        self._groups = groups
        inner = len(groups[0])
        self._mask = len(groups) * inner - 1  # shard of a key: its hash & _mask
        self._bits = inner.bit_length() - 1  # its group: shard >> _bits
        self._inner = inner - 1  # its place in the group: shard & _inner
        self._len = length

    @classmethod
    def of(cls, items: Mapping[K, V]) -> ShardedMap[K, V]:
        count = 1
        while count * SHARD_SIZE < len(items):
            count *= 2
        inner = min(count, GROUP_SHARDS)
        shards: list[dict[K, V]] = [{} for _ in range(count)]
        mask = count - 1
        for k, v in items.items():
            shards[hash(k) & mask][k] = v
        groups = tuple(tuple(shards[i:i + inner]) for i in range(0, count, inner))
        return cls(groups, len(items))

    def get(self, key: K, default: Any = None) -> Any:  # type: ignore[override]
        h = hash(key) & self._mask
        return self._groups[h >> self._bits][h & self._inner].get(key, default)

    def __getitem__(self, key: K) -> V:
        h = hash(key) & self._mask
        return self._groups[h >> self._bits][h & self._inner][key]

    def __contains__(self, key: object) -> bool:
        h = hash(key) & self._mask
        return key in self._groups[h >> self._bits][h & self._inner]

    def _all(self) -> Iterator[dict[K, V]]:
        return itertools.chain.from_iterable(self._groups)

    def __iter__(self) -> Iterator[K]:
        return itertools.chain.from_iterable(self._all())

    def __len__(self) -> int:
        return self._len

    def items(self) -> Iterable[tuple[K, V]]:  # type: ignore[override]
        return itertools.chain.from_iterable(s.items() for s in self._all())

    def values(self) -> Iterable[V]:  # type: ignore[override]
        return itertools.chain.from_iterable(s.values() for s in self._all())

    def updated(self, sets: Mapping[K, V], dels: Iterable[K] = ()) -> ShardedMap[K, V]:
        """The next version: `sets` put in, `dels` taken out; only their shards (and the
        groups holding them) copied."""
        groups: list[Any] = list(self._groups)
        mask, bits, inner, length = self._mask, self._bits, self._inner, self._len
        fresh: set[int] = set()
        copied: set[int] = set()

        def own(h: int) -> dict[K, V]:
            """Shard `h` copied for this version (once), its group too."""
            g = h >> bits
            if g not in copied:
                groups[g] = list(groups[g])
                copied.add(g)
            if h not in fresh:
                groups[g][h & inner] = dict(groups[g][h & inner])
                fresh.add(h)
            return groups[g][h & inner]  # type: ignore[no-any-return]

        for k, v in sets.items():
            shard = own(hash(k) & mask)
            if k not in shard:
                length += 1
            shard[k] = v
        for k in dels:
            h = hash(k) & mask
            if k not in groups[h >> bits][h & inner]:
                continue
            del own(h)[k]
            length -= 1
        for g in copied:
            groups[g] = tuple(groups[g])
        return ShardedMap(tuple(groups), length)

    def shared_shards(self, other: ShardedMap[K, V]) -> int:
        """How many shards this version shares with `other` (for tests and measurements)."""
        return sum(a is b for a, b in zip(self._all(), other._all(), strict=False))

    def shared_groups(self, other: ShardedMap[K, V]) -> int:
        """How many groups of shards this version shares with `other` (the same)."""
        return sum(a is b for a, b in zip(self._groups, other._groups, strict=False))

    @property
    def shard_count(self) -> int:
        return self._mask + 1

    @property
    def group_count(self) -> int:
        return len(self._groups)


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


class _Block:
    """Up to 2 * BLOCK_SIZE chunks of a `Chunks` sequence, with each one's first item and
    start (relative to the block) for bisection; never changed once made."""

    __slots__ = ("chunks", "firsts", "starts", "len")

    def __init__(self, chunks: tuple[tuple[Any, ...], ...],
                 firsts: tuple[Any, ...] | None = None) -> None:
        self.chunks = chunks
        # the firsts of the block before, when they did not change (no item touched again)
        self.firsts = firsts if firsts is not None else tuple(c[0] for c in chunks)
        starts, n = [], 0
        for c in chunks:
            starts.append(n)
            n += len(c)
        self.starts = starts
        self.len = n

    def at(self, rel: int) -> tuple[int, int]:
        """(chunk, offset in it) of position `rel` in the block (its end: in the last)."""
        c = max(bisect.bisect_right(self.starts, rel) - 1, 0)  # one start per chunk
        return c, rel - self.starts[c]


def _blocks_of(chunks: list[tuple[Any, ...]]) -> list[_Block]:
    return [_Block(tuple(chunks[i:i + BLOCK_SIZE])) for i in range(0, len(chunks), BLOCK_SIZE)]


class Chunks(Sequence[T]):
    """An immutable sequence in chunks, the chunks in blocks (two levels); `inserted` and
    `deleted` copy one chunk, its block's chunk list and the list of blocks (a few hundred
    references at a million items, see ShardedMap for why that count matters). Bisection
    (`bisect_left`/`bisect_right` below) needs it sorted."""

    __slots__ = ("_blocks", "_firsts", "_starts", "_len")

    def __init__(self, blocks: list[_Block], firsts: tuple[Any, ...] | None = None) -> None:
        self._blocks = blocks
        # each block's first item (the version before's, when unchanged)
        self._firsts = firsts if firsts is not None else tuple(b.firsts[0] for b in blocks)
        starts, n = [], 0
        for b in blocks:
            starts.append(n)
            n += b.len
        self._starts = starts
        self._len = n

    @classmethod
    def of(cls, items: Sequence[T]) -> Chunks[T]:
        return cls(_blocks_of([tuple(items[i:i + CHUNK_SIZE])
                               for i in range(0, len(items), CHUNK_SIZE)]))

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
        if not 0 <= i < self._len:  # type: ignore[operator]
            raise IndexError("Chunks index out of range")
        b, c, at = self._locate(i)  # type: ignore[arg-type]
        return self._blocks[b].chunks[c][at]  # type: ignore[no-any-return]

    def _find(self, x: Any) -> tuple[int, int]:
        """(block, chunk) of the last chunk whose first item is <= `x`; block -1 if none."""
        b = bisect.bisect_right(self._firsts, x) - 1
        if b < 0:
            return -1, -1
        return b, bisect.bisect_right(self._blocks[b].firsts, x) - 1

    def cover(self, x: Any, values: Chunks[Any] | None = None) -> Any:
        """The last item <= `x` (wrapping to the last item when `x` is below them all), or
        the item at its position in `values` (a sequence changed in step with this one:
        the same blocks and chunks)."""
        blocks = self._blocks if values is None else values._blocks
        b, c = self._find(x)
        if b < 0:
            return blocks[-1].chunks[-1][-1]
        return blocks[b].chunks[c][bisect.bisect_right(self._blocks[b].chunks[c], x) - 1]

    def __iter__(self) -> Iterator[T]:
        return itertools.chain.from_iterable(c for b in self._blocks for c in b.chunks)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Chunks | tuple | list):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def bisect_right(self, x: Any) -> int:
        b, c = self._find(x)
        if b < 0:
            return 0
        block = self._blocks[b]
        return self._starts[b] + block.starts[c] + bisect.bisect_right(block.chunks[c], x)

    def bisect_left(self, x: Any) -> int:
        b = bisect.bisect_left(self._firsts, x) - 1
        if b < 0:
            return 0
        block = self._blocks[b]
        c = bisect.bisect_left(block.firsts, x) - 1  # >= 0: the block's first is below x
        return self._starts[b] + block.starts[c] + bisect.bisect_left(block.chunks[c], x)

    def _locate(self, i: int) -> tuple[int, int, int]:
        """(block, chunk in it, offset in that) of position `i` (0 <= i <= len: the end is
        in the last chunk)."""
        b = max(bisect.bisect_right(self._starts, i) - 1, 0)  # one start per block
        c, at = self._blocks[b].at(i - self._starts[b])
        return b, c, at

    def _with(self, b: int, c: int, new: tuple[tuple[T, ...], ...]) -> Chunks[T]:
        """This sequence with chunk `c` of block `b` replaced by the chunks `new` (none,
        one, or the two it split in); only that block and the block list are new."""
        block = self._blocks[b]
        chunks = list(block.chunks)
        chunks[c:c + 1] = new
        same_firsts = len(new) == 1 and new[0][0] is block.chunks[c][0]
        blocks = list(self._blocks)
        if not chunks:
            del blocks[b]
        elif len(chunks) < 2 * BLOCK_SIZE:
            blocks[b] = _Block(tuple(chunks), block.firsts if same_firsts else None)
        else:
            half = len(chunks) // 2
            blocks[b:b + 1] = [_Block(tuple(chunks[:half])), _Block(tuple(chunks[half:]))]
        return Chunks(blocks, self._firsts if same_firsts else None)

    def inserted(self, i: int, x: T) -> Chunks[T]:
        """A new sequence with `x` at position `i`."""
        if not self._blocks:
            return Chunks([_Block(((x,),))])
        b, c, at = self._locate(i)
        chunk = self._blocks[b].chunks[c]
        new = chunk[:at] + (x,) + chunk[at:]
        return self._with(b, c, (new,) if len(new) < 2 * CHUNK_SIZE else
                          (new[:len(new) // 2], new[len(new) // 2:]))

    def deleted(self, i: int) -> Chunks[T]:
        """A new sequence without the item at position `i`."""
        b, c, at = self._locate(i)
        chunk = self._blocks[b].chunks[c]
        new = chunk[:at] + chunk[at + 1:]
        return self._with(b, c, (new,) if new else ())

    def shared_chunks(self, other: Chunks[T]) -> int:
        """How many chunks this sequence shares with `other` (tests and measurements)."""
        theirs = {id(c) for b in other._blocks for c in b.chunks}
        return sum(id(c) in theirs for b in self._blocks for c in b.chunks)

    @property
    def chunk_count(self) -> int:
        return sum(len(b.chunks) for b in self._blocks)

    @property
    def block_count(self) -> int:
        return len(self._blocks)


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
