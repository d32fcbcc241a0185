"""The lab the diagnose, drill, check and resolver tests share the shape of: one per module,
with Unbound, always taken down; and what the drill tests read off it (dig, the exporter)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import need, sc
from tests.interop.exporter_zones import Samples, scrape


def unbound_lab(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.fail("the lab tests run as root (port 53, addresses on lo): run bash dev/test as root")
    for tool in ("unbound", "unbound-control", "dig"):
        need(tool)
    d = tmp_path_factory.mktemp(name)
    proc = sc("lab", "up", "--dir", d, "--resolver", "unbound")
    try:
        assert proc.returncode == 0, proc.stdout + proc.stderr
        yield d
    finally:
        sc("lab", "down", "--dir", d)


@dataclass(frozen=True)
class Dig:
    """What dig shows of one answer: RCODE, AD flag, A records and the EDE codes."""

    status: str
    ad: bool
    records: list[str]
    ede: set[int]


def dig(server: str, *args: str) -> Dig:
    out = subprocess.run(["dig", f"@{server}", "+dnssec", "+tries=1", "+time=5", *args],
                         capture_output=True, text=True, timeout=30).stdout
    status = out.split("status: ", 1)[1].split(",", 1)[0]
    flags = out.split(";; flags:", 1)[1].split(";", 1)[0].split()
    records = [line.split()[-1] for line in out.splitlines()
               if line and not line.startswith(";") and line.split()[3:4] == ["A"]]
    ede = {int(line.split()[2]) for line in out.splitlines() if line.startswith("; EDE: ")}
    return Dig(status, "ad" in flags, records, ede)


def wait_metrics(url: str, want: Callable[[Samples], bool], what: str,
                 timeout: float = 20) -> Samples:
    """Scrape until `want` holds (the exporter probes on its own schedule)."""
    deadline = time.monotonic() + timeout
    samples: Samples = {}
    while time.monotonic() < deadline:
        samples = scrape(url)
        if want(samples):
            return samples
        time.sleep(0.3)
    shown = {k: v for k, v in samples.items() if k[0].startswith("dnssec_zone_")}
    raise AssertionError(f"exporter never showed {what}: {shown}")
