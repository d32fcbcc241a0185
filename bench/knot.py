"""Knot DNS as a benchmark peer: a throw-away knotd configuration per run, BIND key import
into its KASP database, and a probe that waits until the zone answers a signed SOA."""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

ADDR = "127.0.0.1"


def config(work: Path, origin: str, zone: Path, port: int, *, sign: bool) -> Path:
    """Write `work/knot.conf` for one zone served from `zone` on ADDR@port.

    With `sign`, knotd signs the zone on load (P-256, NSEC3 0 iterations, no salt, two signing
    threads, manual key management so the imported keys are the ones used) and keeps the
    result in memory only (no journal, no zone-file flush)."""
    db = work / "knotdb"
    db.mkdir(parents=True, exist_ok=True)
    cores = os.cpu_count() or 1
    text = (
        f"server:\n    rundir: {db}\n    listen: {ADDR}@{port}\n"
        f"    udp-workers: {cores}\n    tcp-workers: {cores}\n    background-workers: {cores}\n"
        f"database:\n    storage: {db}\n"
        "log:\n  - target: stderr\n    any: notice\n"
        "policy:\n  - id: bench\n    algorithm: ecdsap256sha256\n    manual: on\n"
        "    nsec3: on\n    nsec3-iterations: 0\n    nsec3-salt-length: 0\n    signing-threads: 2\n"
        f"zone:\n  - domain: {origin}\n    file: {zone}\n    storage: {db}\n"
        "    zonefile-sync: -1\n    zonefile-load: whole\n    journal-content: none\n"
        "    semantic-checks: off\n"
    )
    if sign:
        text += "    dnssec-signing: on\n    dnssec-policy: bench\n"
    conf = work / "knot.conf"
    conf.write_text(text)
    return conf


def import_keys(conf: Path, origin: str, keys: Path) -> None:
    """Put the BIND-format keys (sigchain keygen's K-files) into Knot's KASP database."""
    for private in sorted(keys.glob("K*.private")):
        subprocess.run(["keymgr", "-c", str(conf), origin, "import-bind", str(private.with_suffix(""))],
                       check=True, stdout=subprocess.DEVNULL)


def soa_query(origin: str, dnssec: bool) -> bytes:
    """A SOA query for `origin`, with an EDNS OPT record and the DO bit when `dnssec`."""
    qname = b"".join(bytes((len(lbl),)) + lbl.encode() for lbl in origin.rstrip(".").split("."))
    header = struct.pack("!HHHHHH", 0xABCD, 0x0100, 1, 0, 0, 1 if dnssec else 0)
    opt = b"\x00\x00\x29\x04\xd0\x00\x00\x80\x00\x00\x00" if dnssec else b""
    return header + qname + b"\x00\x00\x06\x00\x01" + opt


def answers_soa(port: int, origin: str, *, signed: bool) -> bool:
    """Whether the server on ADDR@port answers SOA for `origin` now (with `signed`, an answer
    that carries more than the SOA itself: its RRSIG)."""
    query = soa_query(origin, signed)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        try:
            s.sendto(query, (ADDR, port))
            reply = s.recv(4096)
        except OSError:
            return False
    ancount = struct.unpack("!H", reply[6:8])[0]
    return reply[:2] == query[:2] and reply[3] & 0x0F == 0 and ancount >= (2 if signed else 1)


def wait_soa(port: int, origin: str, *, signed: bool, proc: subprocess.Popen,  # type: ignore[type-arg]
             timeout: float = 3600.0) -> None:
    """Poll `answers_soa` every 20 ms until it holds; fails if `proc` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server on port {port} exited ({proc.returncode}) before answering")
        if answers_soa(port, origin, signed=signed):
            return
        time.sleep(0.02)
    raise SystemExit(f"server on port {port} did not answer a{' signed' if signed else ''} SOA in time")


def start(conf: Path) -> subprocess.Popen:  # type: ignore[type-arg]
    return subprocess.Popen(["knotd", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def knotc(conf: Path, *args: str) -> None:
    """A blocking knotc command (`-b`: returns when knotd has done it)."""
    subprocess.run(["knotc", "-c", str(conf), "-b", *args], check=True, stdout=subprocess.DEVNULL)


def stop(proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
