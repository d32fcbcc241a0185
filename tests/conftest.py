"""Test-wide fixtures: the loopback-only network guard and helpers to run sigchain."""

from __future__ import annotations

import ipaddress
import os
import random
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


# `bash dev/test` runs the suite on every core (pytest-xdist, `-n auto`). An interop test
# starts servers on fixed loopback addresses (one range per file) and shares module fixtures:
# each interop file runs on one worker, one test at a time, and files that share a range or a
# lab run together as one group, one after the other. Unit and CLI files spread freely.
SHARED_RANGES = {
    # the lab (127.53) and what runs beside it or against it: the trace hierarchy and hostile
    # network (127.54), the resolver's own servers (127.55), the exporter's zones (127.57)
    "lab": ("test_lab", "test_diagnose", "test_drills", "test_exporter", "test_exporter_rules",
            "test_walk", "test_trace", "test_resolver", "test_resolver_differential",
            "test_resolver_fallback", "test_resolver_forward", "test_resolver_hostile",
            "test_resolver_selection", "test_resolver_workers"),
    "5011": ("test_rfc5011", "test_resolver_5011"),  # 127.58
    "reload": ("test_serve_reload", "test_reload_memory"),  # 127.59
    "parent": ("test_parent_checkds", "test_parent_submit", "test_ctl_parent"),  # 127.61, 127.63.2
    "inline": ("test_inline", "test_inline_policy", "test_live_rollover"),  # 127.62, 127.64
    "ctl": ("test_ctl", "test_update_serve"),  # 127.63
}
_GROUP_OF = {stem: group for group, stems in SHARED_RANGES.items() for stem in stems}


def work_unit(nodeid: str) -> str:
    """The unit of work a test belongs to: its file, or for an interop file its group."""
    path = nodeid.split("::", 1)[0]
    parent, _, name = path.rpartition("/")
    stem = name.removesuffix(".py")
    if parent.endswith("interop") and stem in _GROUP_OF:
        return "interop/" + _GROUP_OF[stem]
    return path


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """Whatever --dist says: whole files, interop groups whole (xdist's own `loadgroup` needs
    marks it cannot attach to pytest 9's node IDs)."""
    from xdist.scheduler import LoadScopeScheduling

    class Grouped(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return Grouped(config, log)


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


PORTS_PER_WORKER = 1500  # blocks from 20000 up: below the kernel's ephemeral ports (32768+)


def free_port(host: str = "127.0.0.1") -> int:
    """A high port free for both UDP and TCP on `host` (a loopback address), from this xdist
    worker's own block: a port handed out here is only bound later (by a server), so another
    worker, or any socket the kernel gives an ephemeral port, must not be able to pick it
    meanwhile (sigchain's listeners set SO_REUSEPORT: two could even share it)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    low = 20000 + (int(worker) % 8 if worker.isdigit() else 0) * PORTS_PER_WORKER
    for _ in range(200):
        port = random.randrange(low, low + PORTS_PER_WORKER)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, \
                socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            try:
                u.bind((host, port))
                t.bind((host, port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port on {host} in {low}-{low + PORTS_PER_WORKER - 1}")
