"""Background processes the lab starts: spawn with a log and a PID file, recognise them by
PID *and* command line (a recycled PID is never ours), stop them by PID."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Sequence

from sigchain.clock import SYSTEM, Clock
from sigchain.errors import OperationalError

# Peer daemons live in sbin, which an ordinary user's PATH often lacks.
_EXTRA_PATH = ("/usr/local/sbin", "/usr/sbin", "/sbin")


def find_binary(name: str) -> str | None:
    """Full path of a program on PATH or in the sbin directories, or None."""
    path = os.environ.get("PATH", os.defpath)
    search = os.pathsep.join([path, *_EXTRA_PATH])
    return shutil.which(name, path=search)


def spawn(cmd: Sequence[str], log_path: str, pid_path: str | None, cwd: str | None = None) -> subprocess.Popen[bytes]:
    """Start `cmd` in its own session, detached from our stdio (output → `log_path`), and
    record its PID in `pid_path` (None: the program writes its own). It outlives this process; stop it with `terminate`."""
    try:
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                list(cmd), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True, cwd=cwd,
            )
    except OSError as exc:
        raise OperationalError(f"cannot start {cmd[0]}: {exc.strerror or exc}") from None
    if pid_path is not None:
        write_pidfile(pid_path, proc.pid)
    return proc


def write_pidfile(path: str, pid: int) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(f"{pid}\n")
    os.replace(tmp, path)


def cmdline(pid: int) -> list[str] | None:
    """The process's argv, or None when there is no such (live, non-zombie) process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        # state is the first field after the parenthesised command name
        if stat[stat.rindex(b")") + 2:][:1] in (b"Z", b"X"):
            return None
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except (OSError, ValueError):
        return None
    if not raw:
        return None
    return [a.decode("utf-8", "replace") for a in raw.rstrip(b"\0").split(b"\0")]


def is_ours(pid: int | None, marker: str) -> bool:
    """Alive, and its command line contains `marker` (a path only the lab uses)."""
    if not pid or pid <= 1:
        return False
    argv = cmdline(pid)
    return argv is not None and any(marker in a for a in argv)


def terminate(pid: int, marker: str, timeout: float = 10.0, clock: Clock = SYSTEM) -> bool:
    """SIGTERM the process if it is ours, wait (on `clock`), SIGKILL if it lingers. True if it
    was ours."""
    if not is_ours(pid, marker):
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = clock.monotonic() + timeout
    while clock.monotonic() < deadline:
        _reap(pid)
        if not is_ours(pid, marker):
            return True
        clock.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    deadline = clock.monotonic() + 5
    while clock.monotonic() < deadline and is_ours(pid, marker):
        _reap(pid)
        clock.sleep(0.05)
    return True


def send_signal(pid: int, marker: str, sig: int) -> bool:
    if not is_ours(pid, marker):
        return False
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def _reap(pid: int) -> None:
    """Collect the exit status if the process is our own child (else nothing to do)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def tail(path: str, lines: int = 5) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def run_tool(cmd: Sequence[str], timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run a helper command to completion (ip, unbound-control, checkconf)."""
    try:
        return subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise OperationalError(f"{cmd[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise OperationalError(f"{' '.join(cmd)} did not finish in {timeout:.0f}s") from None
