"""Work done on an event loop in short slices, between the loop's looks at its sockets: a
client loop that answers cache hits at once queues its dearer work here (answers made from
kept NSEC/NSEC3 records, each judged by the validator), so that a flood of such questions
holds a cached answer up for one slice at most, not for the whole backlog. Bounded: past
`bound` waiting items, new ones are refused (the caller drops the query; the client asks
again), as a resolution thread's queue is. It knows nothing of DNS."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable

from sigchain.clock import SYSTEM, Clock

log = logging.getLogger("sigchain.resolver")
SLICE = 0.002  # seconds of queued work between two looks at the sockets
PER_SLICE = 64  # items at most in one slice, whatever the clock says
QUEUED = 1024  # items waiting at most


class Slices:
    def __init__(self, clock: Clock = SYSTEM, budget: float = SLICE, bound: int = QUEUED):
        self.clock, self.budget, self.bound = clock, budget, bound
        # each item's work and what to call should it never run (the loop ending first)
        self._waiting: deque[tuple[Callable[[], None], Callable[[], None]]] = deque()
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, work: Callable[[], None], abandoned: Callable[[], None]) -> bool:
        """(On the running loop's thread) `work()` called in a later slice, or `abandoned()`
        if the loop ends first; False, neither called, when `bound` items wait already."""
        if len(self._waiting) >= self.bound:
            return False
        self._waiting.append((work, abandoned))
        loop = asyncio.get_running_loop()
        # none running on this loop: never started, ended (even cancelled before its first
        # step, when its `finally` never ran), or left behind on a loop that has ended
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._task = loop.create_task(self._drain())
            self._task.add_done_callback(self._ended)
        return True

    def _ended(self, task: asyncio.Task[None]) -> None:
        """A drain cancelled, the loop ending (even before its first step): what it had
        not run is abandoned, so that nothing waits for ever."""
        if task.cancelled():
            self.abandon()

    async def _drain(self) -> None:
        while self._waiting:
            until, done = self.clock.monotonic() + self.budget, 0
            while self._waiting and (not done or done < PER_SLICE and self.clock.monotonic() < until):
                work, _ = self._waiting.popleft()
                done += 1
                try:
                    work()
                except Exception:  # noqa: BLE001 (one item's failure stops none of the others)
                    log.exception("queued work failed")
            await asyncio.sleep(0)  # the loop looks at its sockets (and answers hits)

    def abandon(self) -> None:
        """Drop every waiting item, calling its `abandoned`."""
        while self._waiting:
            _, abandoned = self._waiting.popleft()
            try:
                abandoned()
            except Exception:  # noqa: BLE001
                log.exception("abandoning queued work failed")
