"""`sigchain keygen`: BIND file names and formats, permissions, refusals."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from tests.conftest import sc

CASES = [(alg, num, role, flags)
         for alg, num in [("ecdsap256sha256", 13), ("ecdsap384sha384", 14), ("ed25519", 15), ("ed448", 16)]
         for role, flags in [("ksk", 257), ("zsk", 256), ("csk", 257)]]
CASES += [("rsasha256", 8, "zsk", 256), ("rsasha512", 10, "ksk", 257)]  # RSA keygen is slow


@pytest.mark.parametrize(("alg", "num", "role", "flags"), CASES)
def test_keygen_writes_bind_named_files(tmp_path: Path, alg: str, num: int, role: str, flags: int) -> None:
    proc = sc("keygen", "Example.Test", "--role", role, "--algorithm", alg, "--dir", tmp_path / "k", check=True)
    base = proc.stdout.strip()
    m = re.fullmatch(rf"Kexample\.test\.\+{num:03d}\+(\d{{5}})", base)
    assert m, base
    key = (tmp_path / "k" / f"{base}.key").read_text()
    private = tmp_path / "k" / f"{base}.private"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "k").stat().st_mode) == 0o700
    text = private.read_text()
    assert text.startswith(f"Private-key-format: v1.3\nAlgorithm: {num} (")
    assert re.search(r"^Created: \d{14}$", text, re.M) and re.search(r"^Activate: \d{14}$", text, re.M)
    record = [line for line in key.splitlines() if not line.startswith(";")][0].split()
    assert record[:3] == ["Example.Test.", "IN", "DNSKEY"]  # case kept in content, as BIND
    assert record[3:6] == [str(flags), "3", str(num)]
    assert f"keyid {int(m.group(1))}, for Example.Test." in key


@pytest.mark.parametrize("alg", ["rsasha1", "nsec3rsasha1", "5", "7"])
def test_sha1_algorithms_refused_without_force(tmp_path: Path, alg: str) -> None:
    proc = sc("keygen", "example.test", "--role", "zsk", "--algorithm", alg, "--dir", tmp_path)
    assert proc.returncode == 4
    assert "RFC 8624" in proc.stderr and "9904" in proc.stderr
    assert not list(tmp_path.iterdir())


def test_sha1_algorithm_allowed_with_force(tmp_path: Path) -> None:
    proc = sc("keygen", "example.test", "--role", "zsk", "--algorithm", "rsasha1", "--dir", tmp_path, "--force",
              check=True)
    assert "+005+" in proc.stdout


def test_bad_zone_name_and_unknown_algorithm_are_usage_errors(tmp_path: Path) -> None:
    assert sc("keygen", "a..b", "--role", "zsk", "--dir", tmp_path).returncode == 2
    bad = sc("keygen", "example.test", "--role", "zsk", "--algorithm", "gost", "--dir", tmp_path)
    assert bad.returncode == 2 and "unknown algorithm" in bad.stderr


def test_key_tags_do_not_collide(tmp_path: Path) -> None:
    bases = {sc("keygen", "example.test", "--role", "zsk", "--dir", tmp_path, check=True).stdout.strip()
             for _ in range(5)}
    assert len(bases) == 5
