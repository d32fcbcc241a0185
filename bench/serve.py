"""dnsperf against sigchain serve, named and knotd on the same signed zone, one after the other:
QPS, latency, CPU per query, load time and server memory (sum of PSS over its processes).
Each server first gets one cold pass over distinct questions (every name once, and a third
as many NXDOMAIN names: 133k for 100k names, in random order), then the warm run.

Usage: bench/serve [NAMES] [SECONDS] [--signed FILE]  (FILE: a signed bench.test. zone of
NAMES names made by an earlier run, to skip signing). bench/serve --reload [NAMES]: the memory
of a reload instead (bench/reloadmem.py)."""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import genzone  # noqa: E402
import knot  # noqa: E402
import reloadmem  # noqa: E402
from sign import tree_sample  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SIGCHAIN = str(ROOT / ".venv" / "bin" / "sigchain")
ORIGIN = "bench.test."
ADDR = "127.0.0.1"


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


def distinct(path: Path, names: int) -> int:
    """Every name once (the type `queries` would ask of it) and names // 3 NXDOMAIN names,
    shuffled: each question asked once. Returns how many."""
    lines = []
    for i in range(names):
        kind = i % 20
        lines.append(f"dh{i:07d}.{ORIGIN} NS" if kind == 0 else
                     f"h{i:07d}.{ORIGIN} CNAME" if kind in (1, 2) else f"h{i:07d}.{ORIGIN} A")
    lines += [f"nx{i:07d}.{ORIGIN} A" for i in range(names // 3)]
    random.Random(54).shuffle(lines)
    path.write_text("\n".join(lines) + "\n")
    return len(lines)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a server's process tree (sigchain's UDP workers included)."""
    cpu: dict[int, float] = {}
    tree_sample(pid, cpu)
    return sum(cpu.values())


def dnsperf(port: int, qfile: Path, seconds: int, pid: int, once: bool = False) -> dict[str, float]:
    """dnsperf for `seconds` over `qfile` (or, `once`, one pass over it)."""
    before = cpu_seconds(pid)
    run = ["-n", "1"] if once else ["-l", str(seconds)]
    out = subprocess.run(
        ["dnsperf", "-s", ADDR, "-p", str(port), "-d", str(qfile), *run, "-D", "-c", "8", "-q", "200"],
        capture_output=True, text=True, check=True,
    ).stdout
    cpu = cpu_seconds(pid) - before
    qps = float(re.search(r"Queries per second:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    done = float(re.search(r"Queries completed:\s+(\d+)", out).group(1))  # type: ignore[union-attr]
    lat = re.search(r"Average Latency \(s\):\s+([\d.]+)", out)
    lost = re.search(r"Queries lost:\s+(\d+)", out)
    return {"qps": qps, "latency_ms": float(lat.group(1)) * 1000 if lat else float("nan"),
            "lost": float(lost.group(1)) if lost else 0.0, "cpu_us": cpu / max(done, 1) * 1e6,
            "load_s": 0.0, "pss_mib": tree_sample(pid, {}) / 2**20}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("names", type=int, nargs="?", default=100_000)
    p.add_argument("seconds", type=int, nargs="?", default=15)
    p.add_argument("--signed", type=Path, help="a signed zone of NAMES names from an earlier run")
    p.add_argument("--reload", action="store_true", help="measure a reload's memory instead")
    args = p.parse_args()
    names, seconds = args.names, args.seconds
    work = Path(tempfile.mkdtemp(prefix="sigchain-bench-serve-"))
    if args.reload:
        reloadmem.run(work, ORIGIN, names, SIGCHAIN)
        shutil.rmtree(work)
        return
    zone, signed, keys, qfile = work / "zone", work / "zone.signed", work / "keys", work / "queries"
    if args.signed is not None:
        shutil.copy(args.signed, signed)
    else:
        with open(zone, "w") as f:
            genzone.generate(ORIGIN, names, f)
        for role in ("ksk", "zsk"):
            subprocess.run([SIGCHAIN, "keygen", ORIGIN, "--role", role, "--dir", str(keys)],
                           check=True, stdout=subprocess.DEVNULL)
        subprocess.run([SIGCHAIN, "sign", str(zone), "--keys", str(keys), "--nsec3", "-o", str(signed)],
                       check=True, stdout=subprocess.DEVNULL)
    queries(qfile, names)
    cold_file = work / "distinct"
    cold_count = distinct(cold_file, names)
    results = {}

    conf = work / "named.conf"
    conf.write_text(
        f'options {{ directory "{work}"; pid-file "{work}/named.pid"; listen-on port 53532 {{ {ADDR}; }};\n'
        f'  listen-on-v6 {{ none; }}; recursion no; minimal-responses yes; notify no; }};\n'
        f'zone "{ORIGIN}" {{ type primary; file "{signed}"; }};\n'
    )
    knot_conf = knot.config(work, ORIGIN, signed, 53533, sign=False) if shutil.which("knotd") else None
    servers = {
        "sigchain serve": (53531, [SIGCHAIN, "serve", "--zone", f"{ORIGIN}={signed}", "--listen", f"{ADDR}#53531"]),
        "named": (53532, ["named", "-g", "-c", str(conf)]),
    }
    if knot_conf is not None:
        servers["knotd"] = (53533, ["knotd", "-c", str(knot_conf)])
    else:
        print("# knotd not installed (dev/peers installs it): skipped")
    for name, (port, cmd) in servers.items():
        start = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            knot.wait_soa(port, ORIGIN, signed=True, proc=proc, timeout=900)
            loaded = time.monotonic() - start
            cold = dnsperf(port, cold_file, seconds, proc.pid, once=True)
            results[name] = dnsperf(port, qfile, seconds, proc.pid)
            results[name]["load_s"] = loaded
            results[name]["cold_qps"] = cold["qps"]
        finally:
            knot.stop(proc)
    report(results, names, seconds, cold_count)
    shutil.rmtree(work)


def report(results: dict[str, dict[str, float]], names: int, seconds: int, cold: int) -> None:
    """The table, with QPS, load time and memory as ratios to the best peer (not sigchain)."""
    peers = {k: v for k, v in results.items() if k != "sigchain serve"}
    best_qps = max(r["qps"] for r in peers.values())
    best_cold = max(r["cold_qps"] for r in peers.values())
    best_load = min(r["load_s"] for r in peers.values())
    best_mem = min(r["pss_mib"] for r in peers.values())
    print(f"# {names}-name NSEC3 zone, DO=1, {seconds} s warm per server after one cold pass over "
          f"{cold} distinct questions, dnsperf -c 8 -q 200, {os.cpu_count()} cores shared")
    print("| server | warm QPS | ÷ best peer | cold QPS | ÷ best peer | avg latency ms | lost "
          "| server CPU µs/query | start-up s | ÷ best peer | PSS MiB | ÷ best peer |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['qps']:.0f} | {r['qps'] / best_qps:.2f} | {r['cold_qps']:.0f} "
              f"| {r['cold_qps'] / best_cold:.2f} | {r['latency_ms']:.2f} | {r['lost']:.0f} "
              f"| {r['cpu_us']:.1f} | {r['load_s']:.1f} | {r['load_s'] / best_load:.2f} "
              f"| {r['pss_mib']:.0f} | {r['pss_mib'] / best_mem:.2f} |")
    if "sigchain serve" in results:
        ours = results["sigchain serve"]
        for peer, r in peers.items():
            print(f"sigchain vs {peer}: warm {ours['qps'] / r['qps']:.2f}x, cold "
                  f"{ours['cold_qps'] / r['cold_qps']:.2f}x, start-up {ours['load_s'] / r['load_s']:.2f}x, "
                  f"memory {ours['pss_mib'] / r['pss_mib']:.2f}x")


if __name__ == "__main__":
    main()
