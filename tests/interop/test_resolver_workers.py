"""`sigchain resolver --workers 2`: two processes answer on one address (SO_REUSEPORT), both
counted in the metrics, a SIGHUP reaches both, and SIGTERM stops both (no worker left
behind)."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import dns.flags
import dns.message
import dns.rcode

from tests.conftest import sigchain_cmd, terminate
from tests.interop.test_resolver import _wait_ready

ADDRESS, PORT, METRICS_PORT = "127.55.0.50", 5399, 9399


def children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


def test_two_workers_answer_on_one_address_and_stop_together(tmp_path: Path) -> None:
    log = tmp_path / "resolver.log"
    proc = _start_two(tmp_path, log)
    try:
        assert "ready (worker 1): resolving on 127.55.0.50#5399" in log.read_text()
        [worker] = children(proc.pid)
        # refused without any upstream: the reply proves who listens; each query from its
        # own source port: the kernel spreads them
        for _ in range(40):
            assert _refused_without_rd()
        with urllib.request.urlopen(f"http://{ADDRESS}:{METRICS_PORT}/metrics", timeout=5) as page:
            text = page.read().decode()
        assert 'sigchain_resolver_queries_total{rcode="REFUSED"} 40.0' in text.splitlines(), text
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while log.read_text().count("SIGHUP") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert log.read_text().count("SIGHUP") == 2, log.read_text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert not Path(f"/proc/{worker}").exists() or "Z" in Path(f"/proc/{worker}/stat").read_text()
    finally:
        terminate(proc)


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _refused_without_rd() -> bool:
    q = dns.message.make_query("www.example.test", "A")
    q.flags &= ~dns.flags.RD
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.sendto(q.to_wire(), (ADDRESS, PORT))
        return dns.message.from_wire(s.recv(65535)).rcode() == dns.rcode.REFUSED


def _start_two(tmp_path: Path, log: Path) -> subprocess.Popen:  # type: ignore[type-arg]
    with log.open("w") as out:
        proc = subprocess.Popen([*sigchain_cmd(), "resolver", "--listen", f"{ADDRESS}#{PORT}",
                                 "--workers", "2", "--metrics", f"{ADDRESS}#{METRICS_PORT}",
                                 "--anchor-state", str(tmp_path / "anchors.json")],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_ready(proc, log)
        deadline = time.monotonic() + 10
        while "ready (worker 1)" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
    except BaseException:
        terminate(proc)
        raise
    return proc


def test_workers_die_with_a_killed_main_process(tmp_path: Path) -> None:
    """kill -9 of the main process: its worker is gone within a second (PR_SET_PDEATHSIG), so
    a new resolver on the same address answers alone."""
    proc = _start_two(tmp_path, tmp_path / "first.log")
    try:
        [worker] = children(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
        deadline = time.monotonic() + 1.0
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not _alive(worker), "the worker outlived its main process"
    finally:
        terminate(proc)
    again = _start_two(tmp_path, tmp_path / "second.log")
    try:
        assert all(_refused_without_rd() for _ in range(10))
        again.send_signal(signal.SIGTERM)
        assert again.wait(10) == 0
    finally:
        terminate(again)
