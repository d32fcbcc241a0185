"""Start-up imports only what the command needs; durations compound (`1d12h`); the default
jitter fits short validities."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from dns.rdatatype import RdataType

from tests.conftest import EXAMPLE_ZONE, sc
from tests.zonetools import load


@pytest.mark.parametrize("args", [["--version"], ["--help"]])
def test_version_and_help_import_no_subcommand(args: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "sigchain", *args],
                          capture_output=True, text=True, check=True)
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()}
    heavy = {m for m in imported if m.startswith(("sigchain.cli.", "sigchain.services",
                                                  "sigchain.core", "dns", "cryptography"))}
    assert heavy <= {"sigchain.cli.main"}, sorted(heavy)
    assert "sign" in proc.stdout or "version" in proc.stdout


def _expirations(path: Path) -> list[int]:
    nodes = load(path).nodes
    return [sig.expiration for rdatasets in nodes.values() for rds in rdatasets
            if rds.rdtype == RdataType.RRSIG for sig in rds]


def test_compound_durations_and_times(keys: Path, tmp_path: Path) -> None:
    out = tmp_path / "s"
    sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", out, "--deterministic",
       "--inception", "now-1h30m", "--validity", "1d12h", check=True)
    (expiration,) = set(_expirations(out))
    assert abs(expiration - (int(time.time()) - 5400 + 36 * 3600)) < 60
    bad = sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", out, "--validity", "1d12")
    assert bad.returncode == 2 and "1d12h" in bad.stderr


def test_default_jitter_fits_a_short_validity(keys: Path, tmp_path: Path) -> None:
    out = tmp_path / "s"
    sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", out, "--inception", "now", "--validity", "2h",
       check=True)
    now = int(time.time())
    expirations = _expirations(out)
    assert len(set(expirations)) > 1  # spread
    assert all(now + 90 * 60 - 60 <= e <= now + 2 * 3600 + 60 for e in expirations)  # ≤ 2h/4
