"""`sigchain resolver --workers N`: the other worker processes, forked before any thread
or event loop starts, each answering on the same addresses (SO_REUSEPORT) with its own cache;
they relay their labelled counts to the main process, and stop with it."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from typing import TYPE_CHECKING

from sigchain.edge.udpworkers import kill_with_parent
from sigchain.services.resolvermetrics import RELAY_SECONDS, ResolverMetrics

if TYPE_CHECKING:
    from sigchain.services.resolver import ResolverService

log = logging.getLogger("sigchain.resolver")
ORPHAN_CHECK = 0.5  # seconds between a worker's looks at whether its main process lives


def serve(service: ResolverService) -> None:
    """Fork `service.config.workers` - 1 workers, then run the main process's loop; on its
    end, stop them and wait for them."""
    children = []
    parent = os.getpid()
    counts_in, counts_out = service.metrics.relay()
    for i in range(1, service.config.workers):
        pid = os.fork()
        if pid == 0:
            service.worker = i
            code = 0
            try:
                counts_in.close()
                service.metrics.send_to(counts_out)
                kill_with_parent()
                if os.getppid() == parent:  # not already orphaned before the line above
                    asyncio.run(service.run(reuse_port=True, parent=parent))
            except BaseException as exc:  # noqa: BLE001 (a worker reports and exits)
                log.error("worker %d: %s", i, exc)
                code = 3
            finally:
                os._exit(code)
        children.append(pid)
    counts_out.close()
    service.counts_in_from_workers = counts_in
    try:
        asyncio.run(service.run(reuse_port=True, children=tuple(children)))
    finally:
        for pid in children:
            signal_quietly(pid, signal.SIGTERM)
        for pid in children:
            os.waitpid(pid, 0)


async def relay_counts(metrics: ResolverMetrics, stop: asyncio.Event) -> None:
    """(A worker) send its labelled counts to the main process every RELAY_SECONDS."""
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), RELAY_SECONDS)
        except TimeoutError:
            pass
        metrics.flush()


async def orphaned(parent: int, stop: asyncio.Event) -> None:
    """Stop a worker whose main process is gone (beside PR_SET_PDEATHSIG, for other systems)."""
    while os.getppid() == parent:
        await asyncio.sleep(ORPHAN_CHECK)
    log.warning("the main process %d is gone: stopping", parent)
    stop.set()


def signal_quietly(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
