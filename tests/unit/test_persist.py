"""`core.serve.persist`: sharded maps and chunked sequences behave as a dict and a sorted
list do (the oracle), and a new version leaves the old one as it was."""

from __future__ import annotations

import bisect
import random

import pytest

from sigchain.core.serve import persist
from sigchain.core.serve.persist import Chunks, Draft, ShardedMap


@pytest.fixture(autouse=True)
def small(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (("SHARD_MIN", 8), ("SHARD_SIZE", 4), ("CHUNK_MIN", 8), ("CHUNK_SIZE", 4)):
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
