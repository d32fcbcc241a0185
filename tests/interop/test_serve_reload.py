"""`sigchain serve` keeps answering while it reloads (issues 10 and 14): with UDP workers, TCP
is answered by a forked worker too, so a main process busy loading (here: stopped) delays no
answer; answers flow over UDP and TCP during the reload of a large zone; and response-rate
limiting keeps one count of dropped and slipped answers over every UDP worker. Everything
binds in 127.59.0.0/16 (this file's range)."""

from __future__ import annotations

import os
import re
import signal
import socket
import threading
import time
from pathlib import Path

import dns.exception
import dns.message
import dns.rcode
import pytest

from tests.conftest import EXAMPLE_ZONE, sc
from tests.interop.test_serve import _wait_children
from tests.interop.test_serve_hardening import Server
from tests.zonetools import keygen

HOST = "127.59.0.1"
LARGE = 10_000  # names in the large zone: its load takes seconds


@pytest.fixture(scope="module")
def zones(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The example zone signed, and a large one (LARGE more names) signed with the same keys."""
    base = tmp_path_factory.mktemp("reload")
    keys = base / "keys"
    keygen(keys, "example.test", "ksk")
    keygen(keys, "example.test", "zsk")
    out = {"small": base / "small.signed", "large": base / "large.signed"}
    sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", out["small"], "--nsec3", check=True)
    large = base / "large.zone"
    large.write_text(EXAMPLE_ZONE.read_text() + "".join(
        f"h{i} 3600 IN A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}\n"
        + (f"h{i} 3600 IN TXT \"name {i}\"\n" if i % 3 == 0 else "") for i in range(LARGE)))
    sc("sign", large, "--keys", keys, "-o", out["large"], "--nsec3", check=True)
    return out


def test_udp_and_tcp_are_answered_while_the_main_process_is_stopped(
        tmp_path: Path, zones: dict[str, Path]) -> None:
    """With UDP workers the main process answers nothing: stopped (as if busy loading for
    ever), every UDP and TCP query is still answered, by the forked workers."""
    server = Server(tmp_path, {"example.test": zones["small"]}, "udp-workers = 2", host=HOST)
    try:
        _wait_children(server.proc.pid, 3)  # 2 UDP workers, 1 TCP worker
        os.kill(server.proc.pid, signal.SIGSTOP)
        try:
            udp = [server.query("www.example.test.", "A", timeout=1, source="127.59.1.1")
                   for _ in range(50)]
            tcp = [server.query("www.example.test.", "A", tcp=True, timeout=1,
                                source="127.59.1.1") for _ in range(50)]
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
    finally:
        assert server.stop() == 0, server.text()[-3000:]
    print(f"\nmain process stopped: {len(udp)} UDP and {len(tcp)} TCP queries answered")
    assert all(r.rcode() == dns.rcode.NOERROR and r.answer for r in udp + tcp)


def test_answers_flow_during_the_reload_of_a_large_zone(
        tmp_path: Path, zones: dict[str, Path]) -> None:
    """Clients querying in a loop over UDP and over TCP (1 s timeout) while a large zone is
    re-read, re-verified and swapped in: none times out; the log says it was verified."""
    live = tmp_path / "large.signed"
    live.write_text(zones["large"].read_text())
    server = Server(tmp_path, {"example.test": live}, "udp-workers = 2", host=HOST)
    stop = threading.Event()
    tally = {"udp": [0, 0, 0.0], "tcp": [0, 0, 0.0]}  # answered, timed out, slowest

    def ask(kind: str) -> None:
        while not stop.is_set():
            start = time.monotonic()
            try:
                server.query("h5.example.test.", "A", tcp=kind == "tcp", timeout=1,
                             source="127.59.2.1")
                tally[kind][0] += 1
                tally[kind][2] = max(tally[kind][2], time.monotonic() - start)
            except dns.exception.Timeout:
                tally[kind][1] += 1

    threads = [threading.Thread(target=ask, args=(k,)) for k in tally]
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        with live.open("a") as f:
            f.write("; touched: new content, the same zone\n")
        start = time.monotonic()
        server.proc.send_signal(signal.SIGHUP)
        server.wait_log("reloaded zone example.test. serial", timeout=120)
        took = time.monotonic() - start
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join()
        assert server.stop() == 0, server.text()[-3000:]
    print(f"\nreload of a {LARGE}-name zone {took:.2f} s; UDP {tally['udp'][0]} answered, "
          f"{tally['udp'][1]} timed out, slowest {tally['udp'][2] * 1000:.0f} ms; TCP "
          f"{tally['tcp'][0]} answered, {tally['tcp'][1]} timed out, slowest "
          f"{tally['tcp'][2] * 1000:.0f} ms")
    assert re.search(r"reloaded zone example\.test\. serial \d+ \(verified[;)]", server.text())
    # the same signatures as at the last load: none is checked by crypto again (their
    # fields and window are: see tests/unit/test_reload_known.py)
    counts = re.search(r"\(verified; (\d+) signature\(s\) checked, (\d+) known", server.text())
    assert counts and int(counts[1]) == 0 and int(counts[2]) > LARGE, server.text()[-2000:]
    assert tally["udp"][1] == 0 and tally["tcp"][1] == 0
    assert tally["udp"][0] > 0 and tally["tcp"][0] > 0
    assert "Traceback" not in server.text()


def _drain(s: socket.socket, wait: float) -> list[bytes]:
    """The datagrams waiting on `s`, and those arriving until `wait` seconds pass quietly."""
    out = []
    s.settimeout(wait) if wait else s.setblocking(False)
    while True:
        try:
            out.append(s.recv(4096))
        except (BlockingIOError, TimeoutError):
            return out


def test_rate_limit_counts_dropped_and_slipped_answers_over_every_worker(
        tmp_path: Path, zones: dict[str, Path]) -> None:
    """1,000 identical queries from one source in about a second, RRL at 5 a second, two UDP
    workers: mostly dropped or slipped, and the server's one count (periodic and final log
    lines, summed over the workers) matches what the client saw, answer for answer."""
    options = "udp-workers = 2\nrate-limit-responses-per-second = 5"
    server = Server(tmp_path, {"example.test": zones["small"]}, options, host=HOST)
    wire = bytearray(dns.message.make_query("www.example.test.", "A").to_wire())
    replies: list[bytes] = []
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.59.3.1", 0))
            s.setblocking(False)
            start = time.monotonic()
            for i in range(1000):
                wire[0:2] = i.to_bytes(2, "big")
                s.sendto(wire, (HOST, server.port))
                if i % 50 == 49:  # read as we go: the replies would overflow our buffer
                    time.sleep(max(0.0, start + (i + 1) / 1000 - time.monotonic()))
                    replies += _drain(s, 0)
            took = time.monotonic() - start
            replies += _drain(s, 0.5)
        server.wait_log("answers dropped,", timeout=15)  # the periodic line
    finally:
        assert server.stop() == 0, server.text()[-3000:]
    final = re.search(r"rate limit: (\d+) answers sent, (\d+) dropped, (\d+) slipped "
                      r"\(all UDP processes\)", server.text())
    assert final, server.text()[-3000:]
    sent, dropped, slipped = map(int, final.groups())
    truncated = sum(1 for r in replies if r[2] & 0x02)
    full = len(replies) - truncated
    print(f"\n1,000 identical queries in {took:.2f} s: {full} answered, {truncated} truncated, "
          f"{1000 - full - truncated} unanswered; server counts {sent} sent, {dropped} "
          f"dropped, {slipped} slipped")
    assert full < 100 and truncated > 300
    assert (sent, slipped, dropped) == (full, truncated, 1000 - full - truncated)
