"""Test-wide fixtures: the loopback-only network guard and helpers to run sigchain."""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_ZONE = ROOT / "examples" / "example.test.zone"


def _allowed(address: object) -> bool:
    """Only loopback (127.0.0.0/8, ::1) and local sockets may be talked to from tests."""
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    if not isinstance(address, tuple) or not address:
        return False
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False  # a host name that is not 'localhost': refuse rather than resolve it


class NonLoopbackTraffic(AssertionError):
    pass


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any test that tries to send a packet to a non-loopback address."""

    def guard(name: str):
        original = getattr(socket.socket, name)

        def checked(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            address = args[-1] if name == "sendto" else args[0]
            if self.family in (socket.AF_INET, socket.AF_INET6) and not _allowed(address):
                raise NonLoopbackTraffic(f"test tried to reach non-loopback address {address!r}")
            return original(self, *args, **kwargs)

        monkeypatch.setattr(socket.socket, name, checked)

    for name in ("connect", "connect_ex", "sendto"):
        guard(name)


def sigchain_cmd() -> list[str]:
    return [sys.executable, "-m", "sigchain"]


def run(args: list[str], cwd: Path | None = None, check: bool = False) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, args))} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


def sc(*args: object, cwd: Path | None = None, check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the sigchain CLI as a user would."""
    return run(sigchain_cmd() + [str(a) for a in args], cwd=cwd, check=check)


def need(tool: str) -> str:
    """Path of a peer binary; the README test command installs them, so missing is a failure."""
    path = shutil.which(tool) or (f"/usr/sbin/{tool}" if os.path.exists(f"/usr/sbin/{tool}") else None)
    if path is None:
        pytest.fail(f"peer tool {tool!r} is not installed (run the README test command: bash dev/test)")
    return path


def terminate(proc: subprocess.Popen | None, timeout: float = 10) -> None:  # type: ignore[type-arg]
    """Stop a server a test started: SIGTERM, then SIGKILL if it does not exit in time."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def free_port(host: str = "127.0.0.1") -> int:
    """A high port free for both UDP and TCP on `host` (a loopback address)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind((host, 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind((host, port))
                except OSError:
                    continue
        if port > 1024:
            return port
    raise RuntimeError("no free port")
