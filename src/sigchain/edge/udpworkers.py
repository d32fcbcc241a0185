"""More processes answering UDP on the server's own sockets, for the cores one Python
process cannot use (the GIL).

The server binds its UDP sockets once; `UdpWorkers.start()` forks processes that answer
queries arriving on those very sockets with the handler as it was at the fork — a snapshot
of the zones, shared copy-on-write. A datagram goes to whichever process reads it first,
so a busy process takes less. Given the server's listening TCP sockets, it forks one more
process that answers TCP (on an event loop of its own, `edge.server.serve_tcp_worker`), so
that the main process answers nothing: a reload parses, verifies and indexes there while
every query is answered from the old snapshot at full speed. After a reload the server calls
`start()` again: new processes with the new zones begin answering, then the old ones are
told to stop (SIGTERM, honoured between queries; the old TCP worker stops accepting and
finishes the answers it is sending), as NSD does with its server processes. Reloads,
NOTIFY out and the timers stay in the main process.

A small change (an UPDATE, an incremental re-sign) need not re-fork them: `update()` hands
every running worker a message over a socket pair of its own (made at the fork), which the
worker applies between batches of datagrams with the `on_update` callback — that makes its
own next version of the zones from its copy — and acknowledges, so the main process knows
when every UDP answer comes from the new version. The TCP worker reads them as they come
but applies them only when it next answers a query (or is idle): it is not waited for, one
process fewer on the two cores while an UPDATE's reply waits.
A worker forked later starts from the main process's current zones. Re-forking stays the
way for whole-zone changes, and for a worker that does not acknowledge in time.

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
import mmap
import os
import select
import signal
import socket
import time
from collections.abc import Callable, Sequence
from types import FrameType

from sigchain.clock import SYSTEM
from sigchain.edge.logthrottle import flush_all
from sigchain.edge.server import BATCH, Handler, TcpLimits, serve_tcp_worker
from sigchain.edge.updatechannel import ACK, CHANNEL_BUFFER, FRAME, Channel, install

log = logging.getLogger("sigchain.server")

POLL_MS = 250  # how often an idle worker checks that it should still run
UPDATE_SECONDS = 2.0  # a worker that has not applied an update by then is replaced
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


_stop_asked = False  # SIGTERM came while a datagram was in hand: stop once it is answered


def _on_stop(signum: int, frame: FrameType | None) -> None:
    # An old snapshot must not answer once the main process has moved on, so the worker
    # stops at once wherever it waits (polling, between datagrams) — but the datagram it
    # already took off the shared socket is answered first: no other process can see it
    # any more, and it arrived before the stop (dropping it cost its client a retry, 1 s
    # or more, at every reload).
    global _stop_asked
    while frame is not None:
        if frame.f_code is _BATCH_CODE:
            _stop_asked = True
            return
        frame = frame.f_back
    raise _Stopped


def _serve(sockets: Sequence[tuple[int, Handler]], parent: int,
           channel: Channel | None = None) -> None:
    """A worker's life: answer datagrams until SIGTERM/SIGINT, or the parent is gone."""
    try:
        _die_with_parent(parent)
        _loop(sockets, parent, channel)
    except _Stopped:
        return


def _serve_tcp(sockets: Sequence[tuple[int, Handler]], parent: int, limits: TcpLimits,
               told: int, channel: Channel | None = None) -> None:
    """The TCP worker's life (see `edge.server.serve_tcp_worker`); it closes `told` (a pipe
    to the main process) once it accepts no more (`UdpWorkers.wait_released`)."""
    try:
        _die_with_parent(parent)
    except _Stopped:
        return
    signal.set_wakeup_fd(-1)  # the parent's event loop owns the inherited wake-up fd
    keep = {fd for fd, _ in sockets} | {told}
    if channel is not None:
        keep.add(channel.sock.fileno())
    _close_inherited(keep)
    serve_tcp_worker(sockets, limits, lambda: os.getppid() == parent,
                     lambda: flush_all(SYSTEM.now()), lambda: os.close(told),
                     (channel.sock.fileno(), channel.receive, channel.take)
                     if channel is not None else None)


def _loop(sockets: Sequence[tuple[int, Handler]], parent: int,
          channel: Channel | None = None) -> None:
    signal.set_wakeup_fd(-1)  # the parent's event loop owns the inherited wake-up fd
    signal.signal(signal.SIGTERM, _on_stop)
    signal.signal(signal.SIGINT, _on_stop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the main process reloads and replaces us
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
    socks = {fd: (socket.socket(fileno=fd), handler) for fd, handler in sockets}
    chan = channel.sock.fileno() if channel is not None else -1
    _close_inherited(set(socks) | {chan})
    poller = select.poll()
    for fd, (sock, _) in socks.items():
        sock.setblocking(False)
        poller.register(fd, select.POLLIN)
    if channel is not None:
        poller.register(chan, select.POLLIN)
    applied = -1
    exact: dict[int, Callable[[bytes], bytes | None] | None] = {}
    while True:
        if channel is not None and channel.applied != applied:
            # The handler's exact-query cache of the version served now, if it has one (see
            # core.serve.cache): read again after every update (a new version, a new cache).
            applied = channel.applied
            exact = {fd: getattr(h, "exact_cache", lambda: None)() for fd, (_, h) in socks.items()}
        elif not exact:
            exact = {fd: getattr(h, "exact_cache", lambda: None)() for fd, (_, h) in socks.items()}
        ready = poller.poll(POLL_MS)
        if _stop_asked:  # asked as a batch ended (its last check passed): stop now
            raise _Stopped
        if os.getppid() != parent:  # busy or idle: a worker never outlives the main process
            return
        if channel is not None and any(fd == chan for fd, _ in ready):
            channel.receive()  # updates first: what comes after them is answered from them
            if channel.closed:
                poller.unregister(chan)
            continue
        for fd, _ in ready:
            sock, handler = socks[fd]
            _batch(sock, handler, exact[fd], channel)


def _batch(sock: socket.socket, handler: Handler,
           exact: Callable[[bytes], bytes | None] | None, channel: Channel | None) -> None:
    """Answer up to BATCH datagrams waiting on `sock`; a query seen before byte for byte
    (after its ID) is answered from `exact` without calling the handler. Stops early once
    the handler applied an update (`catch_up`): `exact` is then of an older version."""
    recvfrom, sendto = sock.recvfrom, sock.sendto
    applied = channel.applied if channel is not None else 0
    for _ in range(BATCH):
        if _stop_asked:  # the datagram in hand when SIGTERM came is answered: stop now
            raise _Stopped
        try:
            data, addr = recvfrom(65535)
        except (BlockingIOError, InterruptedError):
            break
        except OSError as exc:
            log.debug("UDP receive error: %s", exc)
            break
        try:
            if exact is not None and (hit := exact(data[2:])) is not None:
                sendto(data[:2] + hit, addr)
                continue
            response = handler(data, False, str(addr[0]))
            if response is None:
                continue
            for wire in (response,) if isinstance(response, bytes) else response:
                sendto(wire, addr)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNREFUSED):
                log.debug("UDP send error to %s: %s", addr[0], exc)
        except Exception:
            log.exception("error answering a UDP query from %s", addr[0])
        if channel is not None and channel.applied != applied:
            break
    if _stop_asked:
        raise _Stopped


_BATCH_CODE = _batch.__code__

MAX_SLOTS = 256  # UDP workers alive at once (current and leaving) with shared counters


class SharedCounters:
    """Counters that forked UDP workers add to and the main process sums: `fields` signed
    64-bit integers per slot in memory shared across fork (anonymous MAP_SHARED). A worker
    owns one slot while it runs; a slot handed to the next worker keeps its counts, so the
    sums cover every worker that ever ran."""

    def __init__(self, fields: int, slots: int = MAX_SLOTS):
        self.fields = fields
        self._map = mmap.mmap(-1, 8 * fields * slots)
        self._values = memoryview(self._map).cast("q")
        self._owner: list[int] = [0] * slots  # the pid using each slot, 0 if free

    def take(self) -> int:
        """A free slot, reserved until `own` names its worker (-1 if none is free: that
        worker's counts go uncounted)."""
        try:
            slot = self._owner.index(0)
        except ValueError:
            return -1
        self._owner[slot] = -1
        return slot

    def own(self, slot: int, pid: int) -> None:
        if slot >= 0:
            self._owner[slot] = pid

    def release(self, pid: int) -> None:
        if pid in self._owner:
            self._owner[self._owner.index(pid)] = 0

    def view(self, slot: int) -> memoryview:
        """Slot `slot`'s counters (a private buffer for -1)."""
        if slot < 0:
            return memoryview(bytearray(8 * self.fields)).cast("q")
        return self._values[slot * self.fields:(slot + 1) * self.fields]

    def totals(self) -> list[int]:
        values = self._values
        return [sum(values[i::self.fields]) for i in range(self.fields)]


class UdpWorkers:
    """Forked processes answering UDP on given sockets, and (given listening TCP sockets) one
    answering TCP (see module doc)."""

    def __init__(self, count: int, tcp_limits: TcpLimits | None = None,
                 counters: SharedCounters | None = None,
                 on_fork: Callable[[memoryview], None] | None = None,
                 on_update: Callable[[bytes], None] | None = None):
        self.count = max(0, count)
        self.tcp_limits = tcp_limits or TcpLimits()
        # Each UDP worker gets a slot of `counters`, handed to `on_fork` in the worker.
        self.counters = counters
        self.on_fork = on_fork
        # Applies an `update()` payload in a worker (None: workers take no updates).
        self.on_update = on_update
        self._channels: dict[int, socket.socket] = {}  # worker → main process's end
        self._acked: dict[int, int] = {}  # worker → the last update it acknowledged
        self._ack_buf: dict[int, bytes] = {}
        self._seq = 0
        self.current: list[int] = []
        self.tcp_pid = 0  # the TCP worker, 0 when there is none
        self.leaving: list[int] = []
        self._sockets: list[tuple[int, Handler]] = []
        self._tcp: list[tuple[int, Handler]] = []
        self._released: dict[int, int] = {}  # TCP worker → pipe it closes once it accepts no more

    def start(self, sockets: Sequence[tuple[socket.socket | int, Handler]],
              tcp: Sequence[tuple[socket.socket | int, Handler]] = ()) -> None:
        """Fork `count` workers serving `sockets` (and one serving the listening sockets
        `tcp`, if any) with their handlers as they are now; the workers started before (an
        older snapshot) are told to stop once these run: the UDP ones at once, the TCP one
        once it has finished the answers it is sending (SIGHUP: it drains)."""
        self._sockets = [(s if isinstance(s, int) else s.fileno(), h) for s, h in sockets]
        self._tcp = [(s if isinstance(s, int) else s.fileno(), h) for s, h in tcp]
        old, self.current = self.current, []
        old_tcp, self.tcp_pid = self.tcp_pid, 0
        _release_free_memory()
        for _ in range(self.count):
            self.current.append(self._fork())
        if self._tcp:
            self.tcp_pid = self._fork(tcp=True)
        self._stop(old)
        if old_tcp:
            self._stop([old_tcp], signal.SIGHUP)

    def update(self, payload: bytes, wait: bool = True, skip: int = 0,
               timeout: float = UPDATE_SECONDS) -> list[int]:
        """Hand `payload` to every running worker (applied there by `on_update`, in the
        order sent) and, with `wait`, wait until each UDP worker has applied it — except
        `skip`, a worker that cannot answer now (it waits for the main process; it applies
        the update with `catch_up` first). The TCP worker is not waited for: it applies what
        it was sent before it next answers a query (`Channel.take`), so no TCP answer
        after this returns is older. A worker that takes longer than `timeout` seconds (to
        read, or for a UDP worker to apply) is replaced by a new one forked from the current
        zones. The pids replaced."""
        self._seq += 1
        seq = self._seq
        frame = FRAME.pack(seq, len(payload)) + payload
        pids = [p for p in [*self.current, self.tcp_pid] if p and p in self._channels]
        deadline = time.monotonic() + timeout
        late = self._send(pids, frame, deadline)
        if self.tcp_pid in self._channels:
            self._read_acks(self.tcp_pid)  # only so that they do not pile up unread
        if wait:
            late += self._wait_acks([p for p in pids if p not in late and p != skip
                                     and p != self.tcp_pid], seq, deadline)
        for pid in late:
            self._replace(pid)
        return late

    def _send(self, pids: list[int], frame: bytes, deadline: float) -> list[int]:
        """Write `frame` to each worker's channel; the workers it could not be written to."""
        todo = {p: memoryview(frame) for p in pids}
        failed: list[int] = []
        while todo:
            for pid, left in list(todo.items()):
                try:
                    sent = self._channels[pid].send(left)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:  # it is gone: reaped and replaced as such
                    del todo[pid]
                    continue
                if sent == len(left):
                    del todo[pid]
                else:
                    todo[pid] = left[sent:]
            if todo:
                wait = deadline - time.monotonic()
                if wait <= 0:
                    failed += todo
                    break
                select.select([], [self._channels[p] for p in todo], [], wait)
        return failed

    def _wait_acks(self, pids: list[int], seq: int, deadline: float) -> list[int]:
        """Wait until each of `pids` has acknowledged `seq`; those that did not in time."""
        pending = [p for p in pids if self._acked.get(p, seq) < seq]
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([self._channels[p] for p in pending], [], [], left)
            for pid in list(pending):
                if self._channels[pid] in ready:
                    self._read_acks(pid)
                    if self._acked.get(pid, seq) >= seq:
                        pending.remove(pid)
        return pending

    def _read_acks(self, pid: int) -> None:
        chan = self._channels[pid]
        data = self._ack_buf.get(pid, b"")
        while True:
            try:
                chunk = chan.recv(65536)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                chunk = b""
            if not chunk:  # it ended: counted as having nothing left to apply
                self._acked[pid] = self._seq
                break
            data += chunk
        whole = len(data) - len(data) % ACK.size
        for off in range(0, whole, ACK.size):
            self._acked[pid] = max(self._acked.get(pid, 0), ACK.unpack_from(data, off)[0])
        self._ack_buf[pid] = data[whole:]

    def _replace(self, pid: int) -> None:
        """A worker that did not apply an update in time: told to stop, a new one forked."""
        log.warning("worker %d did not apply an update within %.0f s: replaced", pid,
                    UPDATE_SECONDS)
        if pid == self.tcp_pid:
            self._stop([pid], signal.SIGHUP)
            self.tcp_pid = self._fork(tcp=True)
        elif pid in self.current:
            self._stop([pid])
            self.current[self.current.index(pid)] = self._fork()

    def wait_released(self, timeout: float = 1.0) -> None:
        """Wait (at most `timeout` seconds) until the TCP workers told to leave accept no
        more connections: from then on every new one is answered from the new zones (a
        NOTIFY sent before could bring a secondary's IXFR to the old worker)."""
        pending = [fd for pid, fd in self._released.items() if pid != self.tcp_pid]
        deadline = time.monotonic() + timeout
        while pending and (left := deadline - time.monotonic()) > 0:
            done, _, _ = select.select(pending, [], [], left)  # EOF: closed, or it ended
            pending = [fd for fd in pending if fd not in done]
        for pid in [p for p in self._released if p != self.tcp_pid]:
            os.close(self._released.pop(pid))

    def _fork(self, tcp: bool = False) -> int:
        parent = os.getpid()
        dups = [(os.dup(fd), h) for fd, h in (self._tcp if tcp else self._sockets)]
        told, tell = os.pipe() if tcp else (-1, -1)
        mine = theirs = None
        if self.on_update is not None:
            mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            for end in (mine, theirs):
                end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, CHANNEL_BUFFER)
                end.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, CHANNEL_BUFFER)
        # Signals wait until the worker has its own handlers: the inherited ones would wake
        # the parent's event loop instead (they write to its wake-up fd).
        signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        # The zones stay shared copy-on-write only if the worker's garbage collector leaves
        # them alone (a collection writes to every object it visits): freeze them first.
        gc.freeze()
        counters = self.counters if not tcp else None
        slot = counters.take() if counters is not None else -1
        pid = os.fork()
        if pid == 0:  # the worker
            code = 0
            try:
                channel = None
                if theirs is not None and self.on_update is not None:
                    channel = install(theirs, self.on_update, lazy=tcp)
                if tcp:
                    os.close(told)
                    _serve_tcp(dups, parent, self.tcp_limits, tell, channel)
                else:
                    if counters is not None and self.on_fork is not None:
                        self.on_fork(counters.view(slot))
                    _serve(dups, parent, channel)
            except BaseException:
                log.exception("%s worker failed", "TCP" if tcp else "UDP")
                code = 1
            finally:
                flush_all()
                logging.shutdown()
                os._exit(code)
        gc.unfreeze()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
        for fd, _ in dups:
            os.close(fd)
        if tcp:
            os.close(tell)
            self._released[pid] = told
        if mine is not None and theirs is not None:
            theirs.close()
            mine.setblocking(False)
            self._channels[pid] = mine
            self._acked[pid] = self._seq  # it starts from the zones as they are now
        if counters is not None:
            counters.own(slot, pid)
        log.debug("%s worker %d started", "TCP" if tcp else "UDP", pid)
        return pid

    def _stop(self, pids: list[int], sig: signal.Signals = signal.SIGTERM) -> None:
        for pid in pids:
            self._close_channel(pid)
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                continue
            if pid not in self.leaving:
                self.leaving.append(pid)

    def reap(self, respawn: bool = True) -> None:
        """Collect workers that ended; replace a current one that died unasked."""
        for pid in list(self.leaving):
            if _exited(pid) is not None:
                self.leaving.remove(pid)
                self._release(pid)
        for i, pid in enumerate(list(self.current)):
            status = _exited(pid)
            if status is None:
                continue
            self._release(pid)
            log.error("UDP worker %d ended unexpectedly (status %d)%s", pid, status,
                      ": starting another" if respawn else "")
            self.current[i] = self._fork() if respawn else -1
        self.current = [p for p in self.current if p > 0]
        if self.tcp_pid and (status := _exited(self.tcp_pid)) is not None:
            self._close_channel(self.tcp_pid)
            log.error("TCP worker %d ended unexpectedly (status %d)%s", self.tcp_pid, status,
                      ": starting another" if respawn else "")
            self.tcp_pid = self._fork(tcp=True) if respawn else 0

    def stop(self, timeout: float = 3.0) -> None:
        """Stop every worker and wait for them (SIGKILL after `timeout` seconds)."""
        self._stop(self.current + ([self.tcp_pid] if self.tcp_pid else []) + self.leaving)
        self.current, self.tcp_pid = [], 0
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
            self._release(pid)
        self.leaving = []

    def _close_channel(self, pid: int) -> None:
        chan = self._channels.pop(pid, None)
        if chan is not None:
            chan.close()
        self._acked.pop(pid, None)
        self._ack_buf.pop(pid, None)

    def _release(self, pid: int) -> None:
        self._close_channel(pid)
        if self.counters is not None:
            self.counters.release(pid)


def _release_free_memory() -> None:
    """Collect garbage and hand the C heap's free pages back to the system (glibc
    `malloc_trim`), so that what a load left behind is not inherited by every worker (and
    counted in their memory) but gone."""
    gc.collect()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def _exited(pid: int) -> int | None:
    """The exit status of an ended child (reaping it), or None while it runs."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return 0
    return os.waitstatus_to_exitcode(status) if done else None
