"""The client loop's sliced work queue (services/loopslices.py): bounded, run in slices with
the loop's own callbacks (its socket reads) between them, one failure stopping nothing."""

from __future__ import annotations

import asyncio
import time

from sigchain.services.loopslices import Slices


def test_queued_work_leaves_the_loop_room_between_slices() -> None:
    async def main() -> list[object]:
        slices = Slices(budget=0.004, bound=100)
        done: list[object] = []

        def work(i: int) -> None:
            time.sleep(0.002)  # each item a dear one: two fit in a slice
            done.append(i)

        for i in range(10):
            assert slices.add(lambda i=i: work(i))
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

        added = [slices.add(fail), slices.add(lambda: done.append(1)), slices.add(lambda: done.append(2)),
                 slices.add(lambda: done.append(3))]
        while len(slices):
            await asyncio.sleep(0.001)
        assert slices.add(lambda: done.append(4))  # room again, and a new drain started
        while len(slices):
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.001)
        return added, done

    added, done = asyncio.run(main())
    assert added == [True, True, True, False]
    assert done == [1, 2, 4]
