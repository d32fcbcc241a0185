"""`sigchain resolver` in the foreground: the listeners on the service's handler, the signals
(SIGHUP re-reads the config, SIGTERM/SIGINT stop), the trust-anchor upkeep, the metrics page,
and with `workers` > 1 the other worker processes (`services.resolverworkers`), forked before
any thread or event loop starts, each with its own sockets on the same addresses
(SO_REUSEPORT) and its own cache; they stop with the main process."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal

from sigchain.edge.server import Listeners
from sigchain.edge.udpworkers import kill_with_parent
from sigchain.services import resolverworkers
from sigchain.services.resolver import ResolverService

log = logging.getLogger("sigchain.resolver")

# Allocations between collections of the youngest generation (CPython's default: 700). A cold
# name makes thousands of short-lived objects, few of them in cycles: collecting every 700
# cost 10-20% of the CPU of a cold name (bench/README). Cycles are still collected.
GC_YOUNG = 20_000


def serve(service: ResolverService) -> None:
    """Run in the foreground until SIGTERM/SIGINT, with the other worker processes when the
    config asks for more than one."""
    if service.config.workers <= 1:
        asyncio.run(run(service))
        return
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
                    asyncio.run(run(service, reuse_port=True, parent=parent))
            except BaseException as exc:  # noqa: BLE001 (a worker reports and exits)
                log.error("worker %d: %s", i, exc)
                code = 3
            finally:
                os._exit(code)
        children.append(pid)
    counts_out.close()
    service.counts_in_from_workers = counts_in
    try:
        asyncio.run(run(service, reuse_port=True, children=tuple(children)))
    finally:
        for pid in children:
            resolverworkers.signal_quietly(pid, signal.SIGTERM)
        for pid in children:
            os.waitpid(pid, 0)


async def run(service: ResolverService, reuse_port: bool = False, children: tuple[int, ...] = (),
              parent: int | None = None) -> None:
    """Answer until SIGTERM/SIGINT. `children`: worker processes answering on the same
    addresses (SO_REUSEPORT), sent on each SIGHUP; this process alone serves metrics.
    `parent`: (a worker) the main process, whose end ends this one too."""
    loop = asyncio.get_running_loop()
    gc.freeze()  # what start-up made (modules, config, anchors) is not scanned again
    gc.set_threshold(GC_YOUNG, *gc.get_threshold()[1:])
    service.metrics.worker(service.worker)
    listeners = Listeners(service.handle, reuse_port=reuse_port, pipelined=True)
    await listeners.start(list(service.config.listens))
    if service.config.metrics is not None and not service.worker:
        try:
            service.metrics.serve(service.config.metrics)
        except BaseException:
            await listeners.close()
            raise
    stop = asyncio.Event()
    upkeep = [asyncio.ensure_future(service.keeper.run(stop, service.pool))]

    def hup() -> None:
        keeper = service.keeper
        service.reload()
        if service.keeper is not keeper:  # the re-read config's anchors and NTAs: its keeper's
            upkeep[0].cancel()
            upkeep[0] = asyncio.ensure_future(service.keeper.run(stop, service.pool))
        for pid in children:
            resolverworkers.signal_quietly(pid, signal.SIGHUP)

    handlers = {signal.SIGTERM: stop.set, signal.SIGINT: stop.set, signal.SIGHUP: hup}
    for sig, act in handlers.items():
        loop.add_signal_handler(sig, act)
    watch = asyncio.ensure_future(resolverworkers.orphaned(parent, stop)) if parent is not None else None
    counts = service.counts_in_from_workers
    if counts is not None:
        loop.add_reader(counts.fileno(), service.metrics.receive, counts)
    relay = asyncio.ensure_future(resolverworkers.relay_counts(service.metrics, stop)) \
        if service.worker else None
    who = f" (worker {service.worker})" if service.worker else ""
    log.info("ready%s: resolving on %s", who, ", ".join(map(str, service.config.listens)))
    try:
        await stop.wait()
    finally:
        log.info("stopping%s", who)
        for sig in handlers:
            loop.remove_signal_handler(sig)
        upkeep[0].cancel()
        if watch is not None:
            watch.cancel()
        if relay is not None:
            relay.cancel()
            service.metrics.flush()
        if counts is not None:
            loop.remove_reader(counts.fileno())
            service.metrics.receive(counts)
        await listeners.close()
        service.metrics.close()
        service.close()
