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
import knot  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SIGCHAIN = [str(ROOT / ".venv" / "bin" / "sigchain")]
ORIGIN = "bench.test."
KNOT_PORT = 53541


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


def run_knotd(conf: Path, out: Path) -> tuple[float, float, int, float, float]:
    """knotd from start until the zone answers SOA with an RRSIG (it signs on load), then
    `knotc zone-sign` (a re-sign of the loaded zone); the signed zone is flushed to `out`.
    Returns (wall s to signed SOA, CPU s until then, peak PSS bytes, re-sign wall and CPU s)."""
    sampled: dict[int, float] = {}
    peak = 0
    start = time.monotonic()
    proc = knot.start(conf)
    try:
        while not knot.answers_soa(KNOT_PORT, ORIGIN, signed=True):
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise SystemExit(f"knotd exited ({proc.returncode}):\n{err}")
            peak = max(peak, tree_sample(proc.pid, sampled))
            time.sleep(0.02)
        wall = time.monotonic() - start
        peak = max(peak, tree_sample(proc.pid, sampled))
        cpu = sum(sampled.values())
        start = time.monotonic()
        knot.knotc(conf, "zone-sign", ORIGIN)
        resign = time.monotonic() - start
        after: dict[int, float] = {}
        tree_sample(proc.pid, after)
        resign_cpu = sum(after.values()) - cpu
        out.mkdir()
        knot.knotc(conf, "zone-flush", ORIGIN, "+outdir", str(out))
    finally:
        knot.stop(proc)
    return wall, cpu, peak, resign, resign_cpu


def flushed(out: Path) -> Path:
    """The one zone file Knot wrote into directory `out` (named after the source file)."""
    return next(p for p in out.iterdir() if p.is_file())


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


RESIGN = "knotc zone-sign (re-sign)"


def measured(n: int, name: str, wall: float, cpu: float, peak: int, out: Path) -> tuple:  # type: ignore[type-arg]
    """One table row: counts the output's signatures and checks it with dnssec-verify."""
    path = flushed(out) if out.is_dir() else out
    sigs = count_rrsigs(path)
    check = subprocess.run(["dnssec-verify", "-q", "-o", ORIGIN, str(path)], capture_output=True, text=True)
    verdict = "ok" if check.returncode == 0 else "FAILED: " + check.stderr.strip()[-200:]
    shutil.rmtree(out) if out.is_dir() else out.unlink()
    print(f"{n:>8} {name:<26} wall {wall:7.1f} s  cpu {cpu:7.1f} s  peak {peak / 2**20:7.0f} MiB  "
          f"{sigs / wall:9.0f} sig/s  dnssec-verify {verdict}", flush=True)
    return (n, name, wall, cpu, peak, sigs, verdict)


def table(rows: list[tuple]) -> None:  # type: ignore[type-arg]
    """The markdown table; every wall time as a ratio to the fastest peer that signed the zone
    file (sigchain and the re-sign of an already loaded zone are not candidates)."""
    print("| names | signer | wall s | CPU s | peak MiB | signatures | sig/s | wall ÷ fastest peer | dnssec-verify |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---|")
    for n in sorted({r[0] for r in rows}):
        mine = [r for r in rows if r[0] == n]
        fastest = min((r for r in mine if r[1] not in ("sigchain", RESIGN)), key=lambda r: r[2])
        for _n, name, wall, cpu, peak, sigs, verdict in mine:
            print(f"| {n} | {name} | {wall:.1f} | {cpu:.1f} | {peak / 2**20:.0f} | {sigs} | {sigs / wall:.0f} | "
                  f"{wall / fastest[2]:.2f} | {verdict} |")
        ours = next(r for r in mine if r[1] == "sigchain")
        print(f"\n{n} names: sigchain {ours[2]:.1f} s = {ours[2] / fastest[2]:.2f}x the fastest peer "
              f"({fastest[1]}, {fastest[2]:.1f} s)\n")


def workspace(prefix: str) -> tuple[Path, Path]:
    """A fresh work directory and a P-256 KSK + ZSK made by `sigchain keygen` in work/keys."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    print(f"# machine: {os.cpu_count()} cores; work dir {work}")
    keys = work / "keys"
    for role in ("ksk", "zsk"):
        subprocess.run(SIGCHAIN + ["keygen", ORIGIN, "--role", role, "--dir", str(keys)], check=True,
                       stdout=subprocess.DEVNULL)
    return work, keys


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [100_000, 1_000_000]
    work, keys = workspace("sigchain-bench-")
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
        knot_db = None
        if shutil.which("knotd"):
            knot_db = work / f"knot-{n}"
            knot_db.mkdir()
            conf = knot.config(knot_db, ORIGIN, zone, KNOT_PORT, sign=True)
            knot.import_keys(conf, ORIGIN, keys)
            signers["kzonesign"] = ["kzonesign", "-c", str(conf), "-o", "{out}", ORIGIN]
        else:
            print("# knotd not installed (dev/peers installs it): Knot rows skipped")
        for name, cmd in signers.items():
            out = work / f"out-{n}-{name.replace(' ', '')}"
            if name == "kzonesign":
                out.mkdir()
            wall, cpu, peak = run([c.replace("{out}", str(out)) for c in cmd], work)
            rows.append(measured(n, name, wall, cpu, peak, out))
        if knot_db is not None:
            out = work / f"out-{n}-knotd"
            wall, cpu, peak, resign, resign_cpu = run_knotd(knot_db / "knot.conf", out)
            rows.append(measured(n, "knotd (load + sign)", wall, cpu, peak, out))
            rows.append((n, RESIGN, resign, resign_cpu, peak, rows[-1][5], "(same zone, in memory)"))
            shutil.rmtree(knot_db)
        zone.unlink()
    print()
    table(rows)
    for procs, rate in sorted(ceiling.items()):
        for n, name, wall, _cpu, _peak, sigs, _v in rows:
            if name == "sigchain":
                print(f"OpenSSL ceiling, {procs} process(es): {rate:.0f} sig/s; sigchain at {n} names reaches "
                      f"{sigs / wall / rate:.0%} of it")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
