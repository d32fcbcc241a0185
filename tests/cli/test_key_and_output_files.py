"""Key files and signed outputs on disk: loose private keys and key directories are refused
(exit 4, naming the `chmod` that fixes them; `--force` overrides), a replaced output keeps its
permissions, and a temp file left by a killed `sign` is removed by the next run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_ZONE, sc
from tests.zonetools import keygen


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    """A KSK and a ZSK for example.test, as `sigchain keygen` writes them."""
    for role in ("ksk", "zsk"):
        keygen(tmp_path / "keys", "example.test", role)
    return tmp_path / "keys"


def test_keygen_makes_keys_sign_accepts(keys: Path) -> None:
    assert keys.stat().st_mode & 0o777 == 0o700
    assert {p.stat().st_mode & 0o777 for p in keys.glob("*.private")} == {0o600}


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_private_key_readable_by_others_is_refused(keys: Path, tmp_path: Path, mode: int) -> None:
    private = sorted(keys.glob("*.private"))[0]
    private.chmod(mode)
    r = sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", tmp_path / "out")
    print(r.stderr)
    assert r.returncode == 4 and len(r.stderr.strip().splitlines()) == 1
    assert str(private) in r.stderr and f"chmod 600 {private}" in r.stderr
    assert not (tmp_path / "out").exists()
    assert sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", tmp_path / "out", "--force").returncode == 0
    private.chmod(0o600)
    assert sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", tmp_path / "out2").returncode == 0


@pytest.mark.parametrize("mode", [0o770, 0o757, 0o1777])
def test_key_directory_others_can_write_is_refused(keys: Path, tmp_path: Path, mode: int) -> None:
    keys.chmod(mode)
    r = sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", tmp_path / "out")
    print(r.stderr)
    assert r.returncode == 4 and f"chmod go-w {keys}" in r.stderr
    assert sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", tmp_path / "out", "--force").returncode == 0
    keys.chmod(0o755)  # others may read the directory (the .key files are public)
    assert sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", tmp_path / "out").returncode == 0


def test_signed_output_keeps_the_permissions_it_replaces(keys: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", out, check=True)
    assert out.stat().st_mode & 0o777 == 0o644  # a new file
    out.chmod(0o640)
    sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", out, check=True)
    assert out.stat().st_mode & 0o777 == 0o640


def _big_zone(path: Path, names: int) -> None:
    head = EXAMPLE_ZONE.read_text()
    path.write_text(head + "".join(f"h{i} 3600 IN A 192.0.2.{i % 250 + 1}\n" for i in range(names)))


def test_temp_file_of_a_killed_sign_is_removed_by_the_next(keys: Path, tmp_path: Path) -> None:
    zone, out = tmp_path / "z.zone", tmp_path / "z.signed"
    _big_zone(zone, 30_000)
    proc = subprocess.Popen([sys.executable, "-m", "sigchain", "sign", str(zone), "--keys", str(keys),
                             "-o", str(out), "--threads", "1", "--origin", "example.test"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    temps: list[Path] = []
    while not temps and proc.poll() is None and time.monotonic() < deadline:
        temps = [p for p in tmp_path.glob(".sigchain-*") if p.stat().st_size > 0]
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert temps, "sign finished before a temp file was seen"
    assert temps[0].name.startswith(f".sigchain-{proc.pid}-") and temps[0].exists()
    print(f"killed sign left {temps[0].name} ({temps[0].stat().st_size} bytes)")
    # Temp files that are not the dead writer's own stay: a live writer's, another target's,
    # another program's.
    live = tmp_path / f".sigchain-{os.getpid()}-abc-z.signed.tmp"
    other_target = tmp_path / f".sigchain-{proc.pid}-abc-other.signed.tmp"
    not_ours = tmp_path / ".z.signed.tmp"
    for p in (live, other_target, not_ours):
        p.write_text("x")
    _big_zone(zone, 10)
    sc("sign", zone, "--keys", keys, "-o", out, "--origin", "example.test", check=True)
    assert not temps[0].exists()
    assert live.exists() and other_target.exists() and not_ours.exists()
