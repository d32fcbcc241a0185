"""`sigchain resolver --workers N`: what the worker processes (forked by
`services.resolverrun.serve`) do beside answering: relay their labelled counts to the main
process, and stop with it."""

from __future__ import annotations

import asyncio
import logging
import os

from sigchain.services.resolvermetrics import RELAY_SECONDS, ResolverMetrics

log = logging.getLogger("sigchain.resolver")
ORPHAN_CHECK = 0.5  # seconds between a worker's looks at whether its main process lives


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
