"""The resolver's resolution thread: its own event loop, on which the questions the client
side hands over are resolved many at once (their upstream queries waited on by the loop, not
by blocked threads). It knows nothing of DNS: it starts on first use, bounds how many
questions run and wait, lets clients asking the same question share one resolution, and
stops."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")
RESOLUTIONS = 256  # resolutions under way at once (more wait their turn)
QUEUED = 1024  # distinct questions on the thread, running or waiting (as Unbound's
# num-queries-per-thread counts its mesh states, not the clients waiting on each)
CLIENTS = 4  # clients on the thread, at most CLIENTS × QUEUED (some asking the same)


class ResolutionThread:
    def __init__(self, running: int = RESOLUTIONS, queued: int = QUEUED):
        self.running, self.queued = running, queued
        self._started: tuple[asyncio.AbstractEventLoop, threading.Thread] | None = None
        self._handing = threading.Lock()  # a hand-over, or the thread's last look at them
        self._fresh()

    def _fresh(self) -> None:
        """The state of one thread's loop (used on that loop only): a thread that ended
        abnormally left its questions unfinished, forgotten here, or they would count against
        the bounds for ever."""
        self._closing = False  # set by the thread as it stops: nothing more is started
        self._final = False  # set as it ends: nothing more is handed over (`hand`)
        self._inflight: dict[Hashable, asyncio.Future[Any]] = {}
        # the tasks (held until done: the loop keeps only weak references), their `abandoned`
        self._tasks: dict[asyncio.Task[None], Callable[[], None]] = {}
        self._questions: Counter[Hashable] = Counter()  # tasks per question
        self._slots = asyncio.Semaphore(self.running)  # bound to the loop on its first wait

    def loop(self) -> asyncio.AbstractEventLoop:
        """The thread's event loop, the thread started on first use (in each worker process:
        never before a fork), and again should it ever have ended."""
        if self._started is None or not self._started[1].is_alive() or self._started[0].is_closed():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=self._run, args=(loop,), name="resolutions",
                                      daemon=True)
            self._fresh()
            thread.start()
            self._started = (loop, thread)
        return self._started[0]

    def hand(self, callback: Callable[..., None], *args: Any) -> bool:
        """(From another thread) `callback(*args)` called on the thread's loop; False, not
        called, when the thread is ending and would never run it (the caller drops it)."""
        with self._handing:
            loop = self.loop()
            if self._final:
                return False
            loop.call_soon_threadsafe(callback, *args)
            return True

    def start(self, question: Hashable, work: Callable[[], Awaitable[None]],
              abandoned: Callable[[], None]) -> bool:
        """(On the thread) run `work()`, a client's `question`, as a task, `abandoned()`
        called should it be cancelled (the thread stopping: even before it began). False,
        nothing started (the caller drops it; the client asks again), when the thread is
        stopping, when `queued` other questions are on it already, or CLIENTS × `queued`
        clients: a crowd asking one slow name leaves room for the others."""
        if (self._closing or len(self._tasks) >= CLIENTS * self.queued
                or (question not in self._questions and len(self._questions) >= self.queued)):
            return False
        task = asyncio.ensure_future(work())
        self._tasks[task] = abandoned
        self._questions[question] += 1
        task.add_done_callback(lambda t: self._done(t, question))
        return True

    def _done(self, task: asyncio.Task[None], question: Hashable) -> None:
        abandoned = self._tasks.pop(task)
        self._questions[question] -= 1
        if not self._questions[question]:
            del self._questions[question]
        if task.cancelled() or task.exception() is not None:  # raised: the resolver's work()
            abandoned()  # answers its client on any Exception, so this one ends the thread

    @property
    def stopping(self) -> bool:
        return self._closing

    @property
    def waiting(self) -> tuple[int, int]:
        """(Distinct questions, clients) on the thread."""
        return len(self._questions), len(self._tasks)

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
        """Stop the thread; questions under way, or handed over and not begun, are cancelled."""
        if self._started is not None:
            loop, thread = self._started
            try:
                loop.call_soon_threadsafe(loop.stop)
            except RuntimeError:  # closed already: the thread has ended
                pass
            thread.join(10)
            if not thread.is_alive():  # else still ending: `loop` starts no other until it has
                self._started = None  # (the two would share this object's state)

    def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:  # stopped, or ended by an exception a task let through (SystemExit, a bug):
            self._closing = True  # what was handed over after the stop is refused as it runs
            try:
                while tasks := asyncio.all_tasks(loop):
                    for task in tasks:
                        task.cancel()
                    try:
                        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
                    except RuntimeError:  # stopped again meanwhile (another stop): go on
                        pass
            finally:
                with self._handing:
                    self._final = True  # what is handed over from now is refused by `hand`
                try:  # the tasks' done callbacks run, and what was handed over before (refused)
                    loop.run_until_complete(asyncio.sleep(0))
                except RuntimeError:  # stopped again meanwhile: they ran all the same
                    pass
                finally:
                    for abandoned in self._tasks.values():  # what the loop could not end (a
                        abandoned()  # task raising again as cancelled): no client left waiting
                    self._tasks.clear()
                    loop.close()


def unanswered(answer: concurrent.futures.Future[bytes | None]) -> None:
    """Complete a client's answer with None (not answered), unless it is done or cancelled."""
    if answer.done():
        return
    try:
        if answer.running() or answer.set_running_or_notify_cancel():
            answer.set_result(None)
    except concurrent.futures.InvalidStateError:  # completed meanwhile
        pass
