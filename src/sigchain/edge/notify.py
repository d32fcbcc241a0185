"""Sending one NOTIFY over UDP and waiting for its answer, retrying (RFC 1996 §3.6).

The message and the check of a reply come from the caller; this module only owns the
socket and the timers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("sigchain.notify")

DEFAULT_TRIES = 5
DEFAULT_TIMEOUT = 2.0  # seconds for the first try; doubled on each retry


@dataclass(frozen=True)
class NotifyOutcome:
    """`status`: the reply's rcode name, or None when no reply came after `tries` sends."""

    status: str | None
    tries: int


class _Collect(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.queue.put_nowait(data)

    def error_received(self, exc: Exception) -> None:  # e.g. ICMP port unreachable: retry
        log.debug("NOTIFY socket error: %s", exc)


async def send_notify(
    host: str,
    port: int,
    wire: bytes,
    check: Callable[[bytes], str | None],
    *,
    tries: int = DEFAULT_TRIES,
    timeout: float = DEFAULT_TIMEOUT,
) -> NotifyOutcome:
    """Send `wire` to host#port until `check` accepts a datagram as its reply (returning the
    status to report), at most `tries` times, waiting `timeout` seconds, then twice as long."""
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(_Collect, remote_addr=(host, port))
    try:
        wait = timeout
        for attempt in range(1, tries + 1):
            transport.sendto(wire)
            deadline = loop.time() + wait
            while (left := deadline - loop.time()) > 0:
                try:
                    data = await asyncio.wait_for(proto.queue.get(), left)
                except TimeoutError:
                    break
                status = check(data)
                if status is not None:
                    return NotifyOutcome(status, attempt)
            wait *= 2
        return NotifyOutcome(None, tries)
    finally:
        transport.close()
