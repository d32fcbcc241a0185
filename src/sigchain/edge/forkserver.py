"""The multiprocessing context of the signing and verifying workers: "forkserver", its server
started with SIGINT ignored, so that every worker it forks ignores Ctrl-C from birth.

Ctrl-C is the parent's to handle (it ends the workers). The workers used to ignore it from
their initializer on, but one still starting when Ctrl-C came died of it; the parent's
`Pool.terminate()` then waited forever for its task thread, stuck writing a task to a pipe no
worker read any more (`sigchain sign` hung on Ctrl-C under load). An ignored signal stays
ignored through exec, and Python then leaves it so (the server hands its own disposition on
to each worker it forks). A blocked one would not do: the server's start unblocks it."""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import multiprocessing.forkserver
import multiprocessing.pool
import signal
import threading
from multiprocessing.pool import Pool
from typing import Any


def context() -> multiprocessing.context.ForkServerContext:
    """The forkserver context, its server running: started here, from the main thread, with
    SIGINT ignored for the few milliseconds that takes (a Ctrl-C just then is lost)."""
    ctx = multiprocessing.get_context("forkserver")
    if threading.current_thread() is not threading.main_thread():
        return ctx  # type: ignore[return-value]  # (signal handlers are the main thread's)
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        multiprocessing.forkserver.ensure_running()
    finally:
        if old is not None:  # (None: a handler not set from Python, left as it is now)
            signal.signal(signal.SIGINT, old)
    return ctx  # type: ignore[return-value]


def stop(pool: Pool, failed: bool) -> None:
    """End a pool and its workers. After Ctrl-C (`failed`), not by
    `Pool.terminate()`, which can then wait forever: its task thread may be stuck writing a
    large task into the pipe to the workers, which no worker reads any more, while the pool
    itself holds a reader end of that pipe, so the write never fails. Instead the pool's
    upkeep is told to end (it starts no new worker), its workers are killed and its own
    terminate-at-exit is dropped; its threads are daemons, gone with the process. (CPython's
    Pool internals, unchanged from 3.8 to 3.13.)"""
    if not failed:
        pool.terminate()
        pool.join()
        return
    internals: Any = pool
    internals._state = multiprocessing.pool.TERMINATE
    internals._worker_handler._state = multiprocessing.pool.TERMINATE
    internals._terminate.cancel()
    workers = list(internals._pool)
    for p in workers:
        if p.exitcode is None:  # (one already reaped: its PID may be another process's now)
            p.kill()
    for p in workers:
        p.join(5)
