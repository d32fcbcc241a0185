"""The resolver's resolution thread: its own event loop, on which the questions the client
side hands over are resolved many at once (their upstream queries waited on by the loop, not
by blocked threads). It knows nothing of DNS: it starts on first use, bounds how many
questions run and wait, lets clients asking the same question share one resolution, and
stops."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")
RESOLUTIONS = 256  # resolutions under way at once (more wait their turn)
QUEUED = 1024  # questions on the thread, running or waiting (as Unbound's num-queries-per-thread)


class ResolutionThread:
    def __init__(self, running: int = RESOLUTIONS, queued: int = QUEUED):
        self.running, self.queued = running, queued
        self._started: tuple[asyncio.AbstractEventLoop, threading.Thread] | None = None
        # on the thread's loop only:
        self._inflight: dict[Hashable, asyncio.Future[Any]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(running)  # bound to the loop on its first wait

    def loop(self) -> asyncio.AbstractEventLoop:
        """The thread's event loop, the thread started on first use (in each worker process:
        never before a fork), and again should it ever have ended."""
        if self._started is None or not self._started[1].is_alive():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=_run, args=(loop,), name="resolutions", daemon=True)
            self._slots = asyncio.Semaphore(self.running)
            thread.start()
            self._started = (loop, thread)
        return self._started[0]

    def start(self, work: Callable[[], Awaitable[None]]) -> bool:
        """(On the thread) run `work()` as a task; False, nothing started, when `queued`
        questions are on the thread already (the caller drops this one)."""
        if len(self._tasks) >= self.queued:
            return False
        task = asyncio.ensure_future(work())
        self._tasks.add(task)  # held until done: the loop keeps only weak references
        task.add_done_callback(self._tasks.discard)
        return True

    @property
    def waiting(self) -> int:
        return len(self._tasks)

    async def shared(self, key: Hashable, work: Callable[[], Awaitable[T]]) -> T:
        """(On the thread) `work()`'s result, one run per `key` at a time: callers with the
        same key meanwhile wait for that run; `running` runs at once."""
        running = self._inflight.get(key)
        if running is not None:
            return await asyncio.shield(running)  # type: ignore[no-any-return]
        running = self._inflight[key] = asyncio.get_running_loop().create_future()
        try:
            async with self._slots:
                result = await work()
            running.set_result(result)
            return result
        except asyncio.CancelledError:
            running.cancel()
            raise
        except Exception as exc:
            running.set_exception(exc)
            running.exception()  # retrieved here: those waiting get it too
            raise
        finally:
            self._inflight.pop(key, None)

    def close(self) -> None:
        """Stop the thread; questions under way are cancelled."""
        if self._started is not None:
            loop, thread = self._started
            self._started = None
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)


def _run(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    finally:
        loop.close()
