"""The client loop's sliced work queue (services/loopslices.py): bounded, run in slices with
the loop's own callbacks (its socket reads) between them, one failure stopping nothing, and
nothing left waiting when a loop ends."""

from __future__ import annotations

import asyncio
import time

from sigchain.services.loopslices import Slices


def _never() -> None:
    raise AssertionError("abandoned, though the loop ran it")


def test_queued_work_leaves_the_loop_room_between_slices() -> None:
    async def main() -> list[object]:
        slices = Slices(budget=0.004, bound=100)
        done: list[object] = []

        def work(i: int) -> None:
            time.sleep(0.002)  # each item a dear one: two fit in a slice
            done.append(i)

        for i in range(10):
            assert slices.add(lambda i=i: work(i), _never)
        asyncio.get_running_loop().call_soon(done.append, "loop")  # as a socket read would be
        while len(slices) or len(done) < 11:
            await asyncio.sleep(0.001)
        return done

    done = asyncio.run(main())
    assert sorted(x for x in done if isinstance(x, int)) == list(range(10))
    assert 0 < done.index("loop") < 10  # the loop's callback ran between two slices


def test_the_queue_is_bounded_and_one_failure_stops_nothing() -> None:
    async def main() -> tuple[list[bool], list[int]]:
        slices = Slices(bound=3)
        done: list[int] = []

        def fail() -> None:
            raise RuntimeError("one item's bug")

        added = [slices.add(fail, _never), slices.add(lambda: done.append(1), _never),
                 slices.add(lambda: done.append(2), _never), slices.add(lambda: done.append(3), _never)]
        while len(slices):
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.001)  # the drain ends
        assert slices.add(lambda: done.append(4), _never)  # room again: a new drain runs it
        while len(slices):
            await asyncio.sleep(0.001)
        return added, done

    added, done = asyncio.run(main())
    assert added == [True, True, True, False]
    assert done == [1, 2, 4]


def test_a_loop_ending_first_abandons_what_waits_and_the_next_loop_drains_anew() -> None:
    """Items still queued when their loop ends (the drain cancelled between slices) are
    abandoned, not left waiting; a later loop gets a drain of its own."""
    slices = Slices(budget=0.0)  # one item a slice: the loop ends with two still queued
    abandoned: list[int] = []
    done: list[int] = []

    async def queue_and_leave() -> None:
        for i in range(3):
            assert slices.add(lambda i=i: done.append(i), lambda i=i: abandoned.append(i))

    asyncio.run(queue_and_leave())  # ends at once: the drain is cancelled before it starts
    assert abandoned and sorted(done + abandoned) == [0, 1, 2] and len(slices) == 0

    async def again() -> None:
        assert slices.add(lambda: done.append(9), _never)
        while 9 not in done:
            await asyncio.sleep(0.001)

    asyncio.run(asyncio.wait_for(again(), 5))
    assert done[-1] == 9
