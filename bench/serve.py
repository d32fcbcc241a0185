"""dnsperf against sigchain serve and named on the same signed zone, one after the other."""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import genzone  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SIGCHAIN = str(ROOT / ".venv" / "bin" / "sigchain")
ORIGIN = "bench.test."
ADDR = "127.0.0.1"


def wait_for(port: int, timeout: float = 30.0) -> None:
    """Until the server answers a SOA query on UDP."""
    query = bytes.fromhex("abcd01000001000000000000") + b"".join(
        bytes((len(lbl),)) + lbl.encode() for lbl in ORIGIN.rstrip(".").split(".")
    ) + b"\x00\x00\x06\x00\x01"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.5)
            try:
                s.sendto(query, (ADDR, port))
                if s.recv(512)[:2] == query[:2]:
                    return
            except OSError:
                time.sleep(0.2)
    raise SystemExit(f"server on port {port} did not come up")


def queries(path: Path, names: int, count: int = 100_000) -> None:
    """60% existing names, 20% NXDOMAIN, 20% NODATA (names that have no TXT)."""
    rnd = random.Random(53)
    with open(path, "w") as f:
        for _ in range(count):
            i = rnd.randrange(names)
            r = rnd.random()
            if r < 0.6:
                kind = i % 20
                if kind == 0:
                    f.write(f"dh{i:07d}.{ORIGIN} NS\n")  # referral
                elif kind in (1, 2):
                    f.write(f"h{i:07d}.{ORIGIN} CNAME\n")
                else:
                    f.write(f"h{i:07d}.{ORIGIN} A\n")
            elif r < 0.8:
                f.write(f"nx{i:07d}.{ORIGIN} A\n")
            else:
                f.write(f"h{i:07d}.{ORIGIN} SRV\n")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (sigchain's UDP workers)."""
    ticks = 0
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        kids = []
    for p in [str(pid), *kids]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def dnsperf(port: int, qfile: Path, seconds: int, pid: int) -> dict[str, float]:
    before = cpu_seconds(pid)
    out = subprocess.run(
        ["dnsperf", "-s", ADDR, "-p", str(port), "-d", str(qfile), "-l", str(seconds), "-D", "-c", "8", "-q", "200"],
        capture_output=True, text=True, check=True,
    ).stdout
    cpu = cpu_seconds(pid) - before
    qps = float(re.search(r"Queries per second:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    done = float(re.search(r"Queries completed:\s+(\d+)", out).group(1))  # type: ignore[union-attr]
    lat = re.search(r"Average Latency \(s\):\s+([\d.]+)", out)
    lost = re.search(r"Queries lost:\s+(\d+)", out)
    return {"qps": qps, "latency_ms": float(lat.group(1)) * 1000 if lat else float("nan"),
            "lost": float(lost.group(1)) if lost else 0.0, "cpu_us": cpu / max(done, 1) * 1e6,
            "load_s": 0.0}


def main() -> None:
    names = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    seconds = int(sys.argv[2]) if len(sys.argv) > 2 else 15
    work = Path(tempfile.mkdtemp(prefix="sigchain-bench-serve-"))
    zone, signed, keys, qfile = work / "zone", work / "zone.signed", work / "keys", work / "queries"
    with open(zone, "w") as f:
        genzone.generate(ORIGIN, names, f)
    for role in ("ksk", "zsk"):
        subprocess.run([SIGCHAIN, "keygen", ORIGIN, "--role", role, "--dir", str(keys)], check=True,
                       stdout=subprocess.DEVNULL)
    subprocess.run([SIGCHAIN, "sign", str(zone), "--keys", str(keys), "--nsec3", "-o", str(signed)], check=True,
                   stdout=subprocess.DEVNULL)
    queries(qfile, names)
    results = {}

    conf = work / "named.conf"
    conf.write_text(
        f'options {{ directory "{work}"; pid-file "{work}/named.pid"; listen-on port 53532 {{ {ADDR}; }};\n'
        f'  listen-on-v6 {{ none; }}; recursion no; minimal-responses yes; notify no; }};\n'
        f'zone "{ORIGIN}" {{ type primary; file "{signed}"; }};\n'
    )
    servers = {
        "sigchain serve": (53531, [SIGCHAIN, "serve", "--zone", f"{ORIGIN}={signed}", "--listen", f"{ADDR}#53531"]),
        "named": (53532, ["named", "-g", "-c", str(conf)]),
    }
    for name, (port, cmd) in servers.items():
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            start = time.monotonic()
            wait_for(port, 900)
            loaded = time.monotonic() - start
            results[name] = dnsperf(port, qfile, seconds, proc.pid)
            results[name]["load_s"] = loaded
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait()

    print(f"# {names}-name NSEC3 zone, DO=1, {seconds} s per server, dnsperf -c 8 -q 200, 2 cores shared")
    print("| server | QPS | avg latency ms | lost | server CPU µs/query | start-up s |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['qps']:.0f} | {r['latency_ms']:.2f} | {r['lost']:.0f} "
              f"| {r['cpu_us']:.1f} | {r['load_s']:.1f} |")
    print(f"sigchain / named QPS ratio: {results['sigchain serve']['qps'] / results['named']['qps']:.2f}")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
