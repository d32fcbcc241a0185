"""Median wall time of a few start-up commands over N runs each, sigchain beside delv."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time

GOAL = 0.1  # seconds, median: the target for --version and --help


def median_time(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 21
    sigchain = os.path.join(os.path.dirname(sys.executable), "sigchain")
    rows = [
        ("sigchain --version", [sigchain, "--version"], True),
        ("sigchain --help", [sigchain, "--help"], True),
        ("sigchain sign --help", [sigchain, "sign", "--help"], False),
        ("python -c pass", [sys.executable, "-c", "pass"], False),
    ]
    delv = shutil.which("delv")
    if delv:
        rows.append(("delv -v", [delv, "-v"], False))
    print(f"{runs} runs each, {os.cpu_count()} cores\n")
    print(f"| command | median s | goal ≤ {GOAL} s |\n|---|---:|---|")
    for label, cmd, goal in rows:
        t = median_time(cmd, runs)
        verdict = ("ok" if t <= GOAL else "OVER") if goal else ""
        print(f"| `{label}` | {t:.3f} | {verdict} |")


if __name__ == "__main__":
    main()
