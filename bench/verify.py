"""Zone verification side by side: `sigchain verify` against dnssec-verify, ldns-verify-zone,
kzonecheck -d on and kzonesign -v on the same sigchain-signed NSEC3 zone(s); wall time, CPU
time, peak memory (sum of PSS over the process tree) and wall time ÷ the fastest peer."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import genzone  # noqa: E402
import knot  # noqa: E402
from sign import ORIGIN, SIGCHAIN, run, workspace  # noqa: E402


def verifiers(signed: Path, work: Path) -> dict[str, list[str]]:
    """The commands, each of which exits non-zero on a bad signature (checked by hand on a
    zone with one corrupted RRSIG: all five report it)."""
    cmds = {
        "sigchain verify": SIGCHAIN + ["verify", "--origin", ORIGIN, str(signed)],
        "dnssec-verify": ["dnssec-verify", "-q", "-o", ORIGIN, str(signed)],
        "ldns-verify-zone": ["ldns-verify-zone", "-q", str(signed)],
    }
    if shutil.which("kzonecheck"):
        cmds["kzonecheck -d on"] = ["kzonecheck", "-o", ORIGIN, "-d", "on", str(signed)]
    if shutil.which("kzonesign"):
        conf = knot.config(work, ORIGIN, signed, 53549, sign=True)
        cmds["kzonesign -v"] = ["kzonesign", "-c", str(conf), "-v", ORIGIN]
    if len(cmds) < 5:
        print("# Knot's kzonecheck/kzonesign not installed (dev/peers installs them): skipped")
    return cmds


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [100_000, 1_000_000]
    work, keys = workspace("sigchain-bench-verify-")
    rows = []
    for n in sizes:
        zone, signed = work / f"zone{n}", work / f"zone{n}.signed"
        with open(zone, "w") as f:
            genzone.generate(ORIGIN, n, f)
        subprocess.run(SIGCHAIN + ["sign", str(zone), "--keys", str(keys), "--nsec3", "-P", "-o", str(signed)],
                       check=True, stdout=subprocess.DEVNULL)
        zone.unlink()
        for name, cmd in verifiers(signed, work).items():
            wall, cpu, peak = run(cmd, work)
            rows.append((n, name, wall, cpu, peak))
            print(f"{n:>8} {name:<18} wall {wall:7.1f} s  cpu {cpu:7.1f} s  peak {peak / 2**20:7.0f} MiB",
                  flush=True)
        signed.unlink()
    print("\n| names | verifier | wall s | CPU s | peak MiB | wall ÷ fastest peer |")
    print("|---:|---|---:|---:|---:|---:|")
    for n in sizes:
        mine = [r for r in rows if r[0] == n]
        fastest = min((r for r in mine if r[1] != "sigchain verify"), key=lambda r: r[2])
        for _n, name, wall, cpu, peak in mine:
            print(f"| {n} | {name} | {wall:.1f} | {cpu:.1f} | {peak / 2**20:.0f} | {wall / fastest[2]:.2f} |")
        ours = next(r for r in mine if r[1] == "sigchain verify")
        dv = next(r for r in mine if r[1] == "dnssec-verify")
        print(f"\n{n} names: sigchain verify {ours[2]:.1f} s = {ours[2] / fastest[2]:.2f}x the fastest peer "
              f"({fastest[1]}), {ours[2] / dv[2]:.2f}x dnssec-verify (target <= 0.5)\n")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
