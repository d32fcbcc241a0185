"""Zones signed by dnssec-signzone and ldns-signzone pass `sigchain verify`; BIND signs with
our keys and we sign with BIND's."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_ZONE, need, run, sc
from tests.zonetools import keygen


@pytest.fixture
def zone_and_keys(tmp_path: Path) -> tuple[Path, Path]:
    zone = tmp_path / "example.test.zone"
    shutil.copy(EXAMPLE_ZONE, zone)
    keys = tmp_path / "keys"
    keygen(keys, "example.test", "ksk")
    keygen(keys, "example.test", "zsk")
    return zone, keys


def _verify_json(path: Path) -> dict:
    proc = sc("verify", path, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("nsec3", [False, True])
def test_dnssec_signzone_output_passes_sigchain_verify(zone_and_keys: tuple[Path, Path], nsec3: bool) -> None:
    """Also shows dnssec-signzone reads and signs with the keys sigchain generated."""
    zone, keys = zone_and_keys
    out = zone.with_suffix(".bind.signed")
    cmd = [need("dnssec-signzone"), "-S", "-K", str(keys), "-o", "example.test", "-f", str(out)]
    if nsec3:
        cmd += ["-3", "-"]
    run(cmd + [str(zone)], cwd=zone.parent, check=True)  # it writes dsset-* into its cwd
    report = _verify_json(out)
    assert report["ok"] and report["denial"] == ("nsec3" if nsec3 else "nsec")
    assert report["signatures_verified"] > 20


@pytest.mark.parametrize("nsec3", [False, True])
def test_ldns_signzone_output_passes_sigchain_verify(zone_and_keys: tuple[Path, Path], nsec3: bool) -> None:
    zone, keys = zone_and_keys
    out = zone.with_suffix(".ldns.signed")
    bases = sorted(str(p.with_suffix("")) for p in keys.glob("*.key"))
    cmd = [need("ldns-signzone"), "-f", str(out)] + (["-n"] if nsec3 else [])
    run(cmd + [str(zone)] + bases, check=True)
    report = _verify_json(out)
    assert report["ok"]
    codes = {f["code"] for f in report["findings"]}
    if nsec3:
        # ldns-signzone defaults to 1 iteration: a warning, never an error.
        assert report["nsec3"]["iterations"] == 1
        assert codes == {"NSEC3_ITERATIONS_NONZERO"}
    else:
        assert not codes


@pytest.mark.parametrize("alg", ["ECDSAP256SHA256", "ED25519", "RSASHA256"])
def test_sigchain_signs_with_dnssec_keygen_keys(tmp_path: Path, alg: str) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    run([need("dnssec-keygen"), "-K", str(keys), "-a", alg, "-f", "KSK", "example.test"], check=True)
    run([need("dnssec-keygen"), "-K", str(keys), "-a", alg, "example.test"], check=True)
    out = tmp_path / "signed"
    sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", out, "--nsec3", check=True)
    run([need("dnssec-verify"), "-o", "example.test", str(out)], check=True)
