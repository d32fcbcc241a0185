"""`core.serve.persist`: sharded maps and chunked sequences behave as a dict and a sorted
list do (the oracle), a new version leaves the old one as it was, and shares with it all but
the one shard and group, or chunk and block, a change is in."""

from __future__ import annotations

import bisect
import random

import pytest

from sigchain.core.serve import persist
from sigchain.core.serve.persist import Chunks, Draft, ShardedMap


@pytest.fixture(autouse=True)
def small(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (("SHARD_MIN", 8), ("SHARD_SIZE", 4), ("GROUP_SHARDS", 4),
                        ("CHUNK_MIN", 8), ("CHUNK_SIZE", 4), ("BLOCK_SIZE", 2)):
        monkeypatch.setattr(persist, name, value)


def test_sharded_map_versions_follow_a_dict() -> None:
    rng = random.Random(1)
    oracle = {rng.randbytes(3): i for i in range(50)}
    m = persist.mapping(dict(oracle))
    assert isinstance(m, ShardedMap)
    for step in range(200):
        before, snapshot = m, dict(oracle)
        draft = Draft(m)
        for _ in range(rng.randint(1, 4)):
            k = rng.choice(list(oracle)) if oracle and rng.random() < 0.5 else rng.randbytes(3)
            if rng.random() < 0.4:
                assert draft.pop(k, None) == oracle.pop(k, None)
            else:
                draft[k] = oracle[k] = step
            assert (k in draft) == (k in oracle) and draft.get(k) == oracle.get(k)
        m = draft.finish()
        assert dict(m.items()) == oracle and len(m) == len(oracle)
        assert all(m[k] == v and k in m for k, v in oracle.items())
        assert dict(before.items()) == snapshot  # the old version is left as it was
        assert m.get(b"absent", 7) == 7 and b"absent" not in m


def test_chunks_follow_a_sorted_list() -> None:
    rng = random.Random(2)
    oracle = sorted(rng.randbytes(2) for _ in range(40))
    seq = persist.sequence(oracle)
    assert isinstance(seq, Chunks)
    for _ in range(300):
        before, snapshot = seq, list(oracle)
        x = rng.randbytes(2)
        if oracle and rng.random() < 0.45:
            i = rng.randrange(len(oracle))
            seq = persist.deleted(seq, i)
            del oracle[i]
        else:
            i = persist.bisect_left(seq, x)
            assert i == bisect.bisect_left(oracle, x)
            seq = persist.inserted(seq, i, x)
            oracle.insert(i, x)
        assert list(seq) == oracle and len(seq) == len(oracle) and list(before) == snapshot
        if oracle:
            assert persist.bisect_right(seq, x) == bisect.bisect_right(oracle, x)
            assert persist.cover(seq, x) == oracle[bisect.bisect_right(oracle, x) - 1]
            assert seq[-1] == oracle[-1] and seq[len(oracle) // 2] == oracle[len(oracle) // 2]


def test_small_ones_stay_plain() -> None:
    assert type(persist.mapping({1: 1})) is dict
    assert type(persist.sequence([1, 2])) is tuple
    assert persist.cover((1, 3, 5), 0) == 5 and persist.cover((1, 3, 5), 4, ("a", "b", "c")) == "b"


def test_a_change_copies_one_shard_and_its_group() -> None:
    m = ShardedMap.of({i: i for i in range(200)})  # 64 shards (4 entries each) in 16 groups
    assert (m.shard_count, m.group_count) == (64, 16)
    for k in (5, 1000):  # replaced, added
        new = m.updated({k: -1})
        assert new[k] == -1 and m.get(k) == (k if k < 200 else None)
        assert new.shard_count - new.shared_shards(m) == 1
        assert new.group_count - new.shared_groups(m) == 1
    gone = m.updated({}, [7, 999])  # one there, one not: only the first's shard copied
    assert 7 not in gone and len(gone) == 199 and gone.shard_count - gone.shared_shards(m) == 1
    assert m.updated({}, [999]).shared_groups(m) == m.group_count


def test_chunks_in_blocks_split_and_empty() -> None:
    seq = Chunks.of(list(range(0, 200, 2)))  # 25 chunks of 4, in blocks of 2
    assert (seq.chunk_count, seq.block_count) == (25, 13)
    new = seq.inserted(seq.bisect_left(51), 51)
    assert new.chunk_count - new.shared_chunks(seq) == 1 and 51 in list(new)
    assert new.cover(51) == 51 and seq.cover(51) == 50 and new.cover(-1) == 198
    grown, values = seq, Chunks.of([f"v{x}" for x in range(0, 200, 2)])  # changed in step
    more = [96 + k / 64 for k in range(1, 21)]  # one chunk grows past 2 * 4 and splits, then its block
    for x in more:
        i = grown.bisect_left(x)
        grown, values = grown.inserted(i, x), values.inserted(i, f"v{x}")
    assert grown.block_count > seq.block_count and list(grown) == sorted([*seq, *more])
    assert grown.cover(96.2, values) == f"v{96 + 12 / 64}" and grown.cover(97, values) == "v96.3125"
    assert grown[-1] == 198 and grown[60] == list(grown)[60] and values[60] == f"v{grown[60]}"
    empty = seq
    while len(empty):  # chunks and blocks go as they empty
        empty = empty.deleted(len(empty) // 2)
    assert empty.block_count == 0 and list(empty) == [] and list(seq) == list(range(0, 200, 2))
    assert list(empty.inserted(0, 5)) == [5]
