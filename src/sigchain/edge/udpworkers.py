"""More processes answering UDP on the server's own sockets, for the cores one Python
process cannot use (the GIL).

The server binds its UDP sockets once; `UdpWorkers.start()` forks processes that answer
queries arriving on those very sockets with the handler as it was at the fork — a snapshot
of the zones, shared copy-on-write. A datagram goes to whichever process reads it first,
so a busy process takes less. After a reload the server calls `start()` again: new
processes with the new zones begin answering, then the old ones are told to stop (SIGTERM,
honoured between queries), as NSD does with its server processes. TCP, transfers, NOTIFY
and reloads stay in the main process.

A worker closes every file descriptor it inherited except its UDP sockets and stdio (the
main process's event loop, TCP listeners and signal wake-up pipe are not its business),
and leaves when told to, or when the main process is gone: the kernel kills it when its
parent dies (Linux `PR_SET_PDEATHSIG`), and it checks its parent between batches of datagrams
too, so a crashed main process never leaves workers answering from old zones on its port.
"""

from __future__ import annotations

import ctypes
import errno
import gc
import logging
import os
import select
import signal
import socket
import time
from collections.abc import Sequence

from sigchain.edge.logthrottle import flush_all
from sigchain.edge.server import Handler

log = logging.getLogger("sigchain.server")

POLL_MS = 250  # how often an idle worker checks that it should still run
BATCH = 64  # datagrams read from one socket before looking at the others
REAP_SECONDS = 1.0
_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def kill_with_parent() -> None:
    """Have the kernel SIGKILL this (forked) process when its parent ends (Linux only; the
    caller still checks os.getppid(), for other systems and a parent gone before this ran)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)  # this process's own symbols: libc's
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the loop's parent check remains
        pass


def _die_with_parent(parent: int) -> None:
    """Die with the parent; if it is already gone (it died before this ran), leave now."""
    kill_with_parent()
    if os.getppid() != parent:
        raise _Stopped


def _close_inherited(keep: set[int]) -> None:
    try:
        fds = sorted(int(f) for f in os.listdir("/proc/self/fd"))
    except OSError:
        fds = list(range(3, 1024))
    for fd in fds:
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


class _Stopped(BaseException):
    """Raised by SIGTERM wherever the worker is; not an Exception, so that the per-query
    `except Exception` does not swallow it and leave an old snapshot answering."""


def _on_stop(signum: int, frame: object) -> None:
    # Raised where the worker is — waiting or mid-query — so that it stops at once: an old
    # snapshot must not answer once the main process has moved on (a query it held is lost,
    # and the client asks again).
    raise _Stopped


def _serve(sockets: Sequence[tuple[int, Handler]], parent: int) -> None:
    """A worker's life: answer datagrams until SIGTERM/SIGINT, or the parent is gone."""
    try:
        _die_with_parent(parent)
        _loop(sockets, parent)
    except _Stopped:
        return


def _loop(sockets: Sequence[tuple[int, Handler]], parent: int) -> None:
    signal.set_wakeup_fd(-1)  # the parent's event loop owns the inherited wake-up fd
    signal.signal(signal.SIGTERM, _on_stop)
    signal.signal(signal.SIGINT, _on_stop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the main process reloads and replaces us
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
    socks = {fd: (socket.socket(fileno=fd), handler) for fd, handler in sockets}
    _close_inherited(set(socks))
    poller = select.poll()
    for fd, (sock, _) in socks.items():
        sock.setblocking(False)
        poller.register(fd, select.POLLIN)
    while True:
        ready = poller.poll(POLL_MS)
        if os.getppid() != parent:  # busy or idle: a worker never outlives the main process
            return
        for fd, _ in ready:
            sock, handler = socks[fd]
            for _ in range(BATCH):
                try:
                    data, addr = sock.recvfrom(65535)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as exc:
                    log.debug("UDP receive error: %s", exc)
                    break
                try:
                    response = handler(data, False, str(addr[0]))
                    if response is None:
                        continue
                    for wire in (response,) if isinstance(response, bytes) else response:
                        sock.sendto(wire, addr)
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.ECONNREFUSED):
                        log.debug("UDP send error to %s: %s", addr[0], exc)
                except Exception:
                    log.exception("error answering a UDP query from %s", addr[0])


class UdpWorkers:
    """Forked processes answering UDP on given sockets (see module doc)."""

    def __init__(self, count: int):
        self.count = max(0, count)
        self.current: list[int] = []
        self.leaving: list[int] = []
        self._sockets: list[tuple[int, Handler]] = []

    def start(self, sockets: Sequence[tuple[socket.socket | int, Handler]]) -> None:
        """Fork `count` workers serving `sockets` with their handlers as they are now; the
        workers started before (an older snapshot) are told to stop once these run."""
        self._sockets = [(s if isinstance(s, int) else s.fileno(), h) for s, h in sockets]
        old, self.current = self.current, []
        for _ in range(self.count):
            self.current.append(self._fork())
        self._stop(old)

    def _fork(self) -> int:
        parent = os.getpid()
        dups = [(os.dup(fd), h) for fd, h in self._sockets]
        # Signals wait until the worker has its own handlers: the inherited ones would wake
        # the parent's event loop instead (they write to its wake-up fd).
        signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        # The zones stay shared copy-on-write only if the worker's garbage collector leaves
        # them alone (a collection writes to every object it visits): freeze them first.
        gc.freeze()
        pid = os.fork()
        if pid == 0:  # the worker
            code = 0
            try:
                _serve(dups, parent)
            except BaseException:
                log.exception("UDP worker failed")
                code = 1
            finally:
                flush_all()
                logging.shutdown()
                os._exit(code)
        gc.unfreeze()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
        for fd, _ in dups:
            os.close(fd)
        log.debug("UDP worker %d started", pid)
        return pid

    def _stop(self, pids: list[int]) -> None:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            self.leaving.append(pid)

    def reap(self, respawn: bool = True) -> None:
        """Collect workers that ended; replace a current one that died unasked."""
        for pid in list(self.leaving):
            if _exited(pid) is not None:
                self.leaving.remove(pid)
        for i, pid in enumerate(list(self.current)):
            status = _exited(pid)
            if status is None:
                continue
            log.error("UDP worker %d ended unexpectedly (status %d)%s", pid, status,
                      ": starting another" if respawn else "")
            self.current[i] = self._fork() if respawn else -1
        self.current = [p for p in self.current if p > 0]

    def stop(self, timeout: float = 3.0) -> None:
        """Stop every worker and wait for them (SIGKILL after `timeout` seconds)."""
        self._stop(self.current)
        self.current = []
        waited = 0.0
        while self.leaving and waited < timeout:
            self.reap(respawn=False)
            if self.leaving:
                time.sleep(0.05)
                waited += 0.05
        for pid in self.leaving:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
            except ProcessLookupError:
                pass
        self.leaving = []


def _exited(pid: int) -> int | None:
    """The exit status of an ended child (reaping it), or None while it runs."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return 0
    return os.waitstatus_to_exitcode(status) if done else None
