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
QUEUED = 1024  # items waiting at most


class Slices:
    def __init__(self, clock: Clock = SYSTEM, budget: float = SLICE, bound: int = QUEUED):
        self.clock, self.budget, self.bound = clock, budget, bound
        self._waiting: deque[Callable[[], None]] = deque()
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, work: Callable[[], None]) -> bool:
        """(On the running loop's thread) `work()` called in a later slice; False, not queued,
        when `bound` items wait already."""
        if len(self._waiting) >= self.bound:
            return False
        self._waiting.append(work)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain())
        return True

    async def _drain(self) -> None:
        try:
            while self._waiting:
                until = self.clock.monotonic() + self.budget
                while self._waiting and self.clock.monotonic() < until:
                    work = self._waiting.popleft()
                    try:
                        work()
                    except Exception:  # noqa: BLE001 (one item's failure stops none of the others)
                        log.exception("queued work failed")
                await asyncio.sleep(0)  # the loop looks at its sockets (and answers hits)
        finally:  # done, or cancelled as the loop ends: the next item starts another drain
            self._task = None
