"""The worker's end of the channel over which the main process hands its answering
processes each change of the zones (`edge.udpworkers.UdpWorkers.update`): frames of a
sequence number and a payload, each applied by the worker and acknowledged with its number."""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable

CHANNEL_BUFFER = 1 << 20  # asked-for socket buffer of the update channels (the kernel caps it)
FRAME = struct.Struct("!QI")  # an update: its sequence number and payload length
ACK = struct.Struct("!Q")  # a worker's acknowledgement: the sequence number it applied


class UpdateFailed(BaseException):
    """A worker could not apply an update: it ends (not an Exception, so that no per-query
    handler swallows it and leaves the worker answering from an old version), and the main
    process forks a fresh one from the current zones."""


class Channel:
    """A worker's end of its update channel: frames from the main process, each applied
    (`apply(payload)`) then acknowledged with its sequence number (see `UdpWorkers.update`).
    A `lazy` channel (the TCP worker's) only reads them as they come; `take` applies them,
    before the worker next answers from the zones."""

    def __init__(self, sock: socket.socket, apply: Callable[[bytes], None], lazy: bool = False):
        sock.setblocking(False)
        self.sock, self.apply, self.lazy = sock, apply, lazy
        self.buf = bytearray()
        self.applied = 0  # updates applied so far (the UDP loop re-reads its caches on change)
        self.closed = False
        self.failed: UpdateFailed | None = None  # raised again by every later `take`

    def receive(self) -> bool:
        """Read what has come (so that the main process's writes never block) and, unless
        lazy, apply every whole update in it; false once the main process closed the
        channel. An update that cannot be applied raises `UpdateFailed`: the worker ends
        and a fresh one replaces it."""
        while not self.closed:
            try:
                chunk = self.sock.recv(1 << 18)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                chunk = b""
            if not chunk:  # the main process closed it: no more updates for this worker
                self.closed = True
                break
            self.buf += chunk
        if not self.lazy:
            self._apply_read()
        return not self.closed

    def take(self) -> None:
        """Apply every update sent so far (all the main process wrote before this call:
        an answer given after it is from a version at least as new as any reply the main
        process sent before the query came). Once one failed, raises that again: nothing
        more is answered from the version before it."""
        if self.failed is not None:
            raise self.failed
        self.receive()
        self._apply_read()

    def _apply_read(self) -> None:
        while len(self.buf) >= FRAME.size:
            seq, size = FRAME.unpack_from(self.buf)
            end = FRAME.size + size
            if len(self.buf) < end:
                break
            payload = bytes(self.buf[FRAME.size:end])
            del self.buf[:end]
            try:
                self.apply(payload)
            except Exception as exc:
                self.failed = UpdateFailed(f"update {seq} not applied: {exc}")
                raise self.failed from exc
            self.applied += 1
            try:
                self.sock.send(ACK.pack(seq))
            except OSError:
                pass


_CHANNEL: Channel | None = None  # in a worker: its update channel


def install(sock: socket.socket, apply: Callable[[bytes], None], lazy: bool) -> Channel:
    """In a newly forked worker: its end of the update channel, which `catch_up` uses."""
    global _CHANNEL
    _CHANNEL = Channel(sock, apply, lazy)
    return _CHANNEL


def catch_up() -> None:
    """In a worker, apply the updates already sent to it (a UDP worker calls it after it
    relayed an UPDATE's reply: the main process wrote the new version's update before
    replying; the TCP worker while the main process works on an UPDATE it forwarded); in
    the main process, nothing."""
    if _CHANNEL is not None:
        _CHANNEL.take()
