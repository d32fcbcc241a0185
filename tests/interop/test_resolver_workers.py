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
DEAD_ROOT = "127.55.0.51"  # nothing listens here


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
        assert 'sigchain_resolver_queries_total{rcode="REFUSED"} 40.0' in _metrics(), _metrics()
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


def test_labelled_counts_of_both_workers_reach_the_metrics(tmp_path: Path) -> None:
    """SERVFAIL by EDE and upstream errors by server, counted in whichever worker resolved,
    are summed by the main process (each worker sends its counts every second). The only
    root server is a loopback address where nothing listens: every name is SERVFAIL (EDE 22)
    after a refused upstream query."""
    (tmp_path / "root.hints").write_text(f". 3600000 NS ns.root.\nns.root. 3600000 A {DEAD_ROOT}\n")
    (tmp_path / "anchor.ds").write_text(
        ". 3600 IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D\n")
    proc = _start_two(tmp_path, tmp_path / "resolver.log", "--root-hints", str(tmp_path / "root.hints"),
                      "--anchor", str(tmp_path / "anchor.ds"))
    try:
        for i in range(20):  # each from its own source port: the kernel spreads them
            q = dns.message.make_query(f"n{i}.example.", "A")
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(10)
                s.sendto(q.to_wire(), (ADDRESS, PORT))
                assert dns.message.from_wire(s.recv(65535)).rcode() == dns.rcode.SERVFAIL
        deadline = time.monotonic() + 10
        while True:
            lines = _metrics()
            servfails = sum(float(line.rpartition(" ")[2]) for line in lines
                            if line.startswith('sigchain_resolver_servfail_total{ede="22"'))
            if servfails == 20 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert servfails == 20, lines
        upstream = [line for line in lines if line.startswith("sigchain_resolver_upstream_errors_total")]
        assert any(f'server="{DEAD_ROOT}' in line for line in upstream), lines
    finally:
        terminate(proc)


def _metrics() -> list[str]:
    with urllib.request.urlopen(f"http://{ADDRESS}:{METRICS_PORT}/metrics", timeout=5) as page:
        return page.read().decode().splitlines()


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


def _start_two(tmp_path: Path, log: Path, *extra: str) -> subprocess.Popen:  # type: ignore[type-arg]
    with log.open("w") as out:
        proc = subprocess.Popen([*sigchain_cmd(), "resolver", "--listen", f"{ADDRESS}#{PORT}",
                                 "--workers", "2", "--metrics", f"{ADDRESS}#{METRICS_PORT}",
                                 *(extra or ("--anchor-state", str(tmp_path / "anchors.json")))],
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
