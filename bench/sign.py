"""Run the signers side by side and print wall time, CPU time, peak memory and signatures/s.

Every output is checked with dnssec-verify, so speed never comes at the cost of a bad zone.
Peak memory is the largest sum of PSS (proportional set size: shared pages split between the
processes sharing them) over the signer's whole process tree, sampled every 50 ms — sigchain
forks worker processes, which RSS would count the parent's shared pages in again."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import genzone  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SIGCHAIN = [str(ROOT / ".venv" / "bin" / "sigchain")]
ORIGIN = "bench.test."


def _pss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_sample(pid: int, cpu: dict[int, float]) -> int:
    """Sum of PSS (bytes) of `pid` and its descendants; records each one's CPU seconds in
    `cpu` (workers started through a fork server are never waited for by the signer, so
    the usual children's-times accounting would miss them)."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
        stats[int(entry)] = fields
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += _pss(p)
        if p in stats:
            cpu[p] = (int(stats[p][11]) + int(stats[p][12])) / tick
        todo += children.get(p, [])
    return total


def run(cmd: list[str], cwd: Path) -> tuple[float, float, int]:
    """(wall s, CPU s of the tree, peak tree PSS bytes); fails loudly on a non-zero exit."""
    start = time.monotonic()
    before = os.times()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    sampled: dict[int, float] = {}
    while proc.poll() is None:
        peak = max(peak, tree_sample(proc.pid, sampled))
        time.sleep(0.05)
    wall = time.monotonic() - start
    after = os.times()
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err}")
    waited = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    # The top process's own time is in `waited`; add the descendants it never waited for.
    return wall, max(waited, sum(sampled.values())), peak


def count_rrsigs(path: Path) -> int:
    n = 0
    with open(path, "rb") as f:
        for line in f:
            if b"RRSIG" in line and re.search(rb"\sRRSIG\s+[A-Z0-9]", line):
                n += 1
    return n


def openssl_ceiling() -> dict[int, float]:
    """ECDSA P-256 signatures/s from `openssl speed`, with 1 and 2 processes."""
    out = {}
    for procs in (1, 2):
        cmd = ["openssl", "speed", "-seconds", "3"] + (["-multi", str(procs)] if procs > 1 else []) + ["ecdsap256"]
        text = subprocess.run(cmd, capture_output=True, text=True).stdout
        m = re.search(r"256 bits ecdsa \(nistp256\)\s+\S+s\s+\S+s\s+([\d.]+)", text)
        if m:
            out[procs] = float(m.group(1))
    return out


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [100_000, 1_000_000]
    work = Path(tempfile.mkdtemp(prefix="sigchain-bench-"))
    print(f"# machine: {os.cpu_count()} cores; work dir {work}")
    keys = work / "keys"
    for role in ("ksk", "zsk"):
        subprocess.run(SIGCHAIN + ["keygen", ORIGIN, "--role", role, "--dir", str(keys)], check=True,
                       stdout=subprocess.DEVNULL)
    bases = sorted(str(p.with_suffix("")) for p in keys.glob("*.key"))
    ceiling = openssl_ceiling()
    rows = []
    for n in sizes:
        zone = work / f"zone{n}"
        with open(zone, "w") as f:
            genzone.generate(ORIGIN, n, f)
        signers = {
            "sigchain": SIGCHAIN + ["sign", str(zone), "--keys", str(keys), "--nsec3", "-P", "-o", "{out}"],
            "dnssec-signzone -n1": ["dnssec-signzone", "-S", "-P", "-n", "1", "-3", "-", "-K", str(keys),
                                    "-o", ORIGIN, "-f", "{out}", str(zone)],
            "dnssec-signzone -n2": ["dnssec-signzone", "-S", "-P", "-n", "2", "-3", "-", "-K", str(keys),
                                    "-o", ORIGIN, "-f", "{out}", str(zone)],
            "ldns-signzone": ["ldns-signzone", "-n", "-t", "0", "-f", "{out}", str(zone)] + bases,
        }
        if shutil.which("knotc"):
            print("# knotc found, but the Knot run is not automated yet; skipped")
        for name, cmd in signers.items():
            out = work / f"out-{n}-{name.replace(' ', '')}"
            wall, cpu, peak = run([c.replace("{out}", str(out)) for c in cmd], work)
            sigs = count_rrsigs(out)
            check = subprocess.run(["dnssec-verify", "-q", "-o", ORIGIN, str(out)], capture_output=True, text=True)
            verdict = "ok" if check.returncode == 0 else "FAILED: " + check.stderr.strip()[-200:]
            rows.append((n, name, wall, cpu, peak, sigs, verdict))
            print(f"{n:>8} {name:<20} wall {wall:7.1f} s  cpu {cpu:7.1f} s  peak {peak / 2**20:7.0f} MiB  "
                  f"{sigs / wall:9.0f} sig/s  dnssec-verify {verdict}", flush=True)
            out.unlink()
        zone.unlink()
    print()
    print("| names | signer | wall s | CPU s | peak MiB | signatures | sig/s | sigchain wall ratio | dnssec-verify |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---|")
    for n, name, wall, cpu, peak, sigs, verdict in rows:
        ours = next(r for r in rows if r[0] == n and r[1] == "sigchain")
        print(f"| {n} | {name} | {wall:.1f} | {cpu:.1f} | {peak / 2**20:.0f} | {sigs} | {sigs / wall:.0f} | "
              f"{ours[2] / wall:.2f} | {verdict} |")
    for procs, rate in sorted(ceiling.items()):
        for n, name, wall, _cpu, _peak, sigs, _v in rows:
            if name == "sigchain":
                print(f"OpenSSL ceiling, {procs} process(es): {rate:.0f} sig/s; sigchain at {n} names reaches "
                      f"{sigs / wall / rate:.0%} of it")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
