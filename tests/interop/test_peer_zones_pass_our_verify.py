"""Zones signed by dnssec-signzone and ldns-signzone pass `sigchain verify`; BIND signs with
our keys and we sign with BIND's."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dns.zone
import pytest
from dns.rdatatype import RdataType

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


def test_a_new_algorithms_signatures_ahead_of_its_keys_as_bind_and_ldns_read_them(
        tmp_path: Path) -> None:
    """An algorithm roll's first step (RFC 6781 §4.1.4): keys activated with a Publish time
    still to come sign, their DNSKEYs not yet out. dnssec-signzone -S makes that zone from
    the K-files' metadata, and so do we; dnssec-verify and ldns-verify-zone pass it, and so
    do we (the early signatures are noted, not errors: no validator uses them)."""
    keys = tmp_path / "keys"
    keys.mkdir()
    for extra in ([], ["-f", "KSK"]):
        run([need("dnssec-keygen"), "-q", "-K", str(keys), "-a", "RSASHA256", "-b", "2048",
             *extra, "example.test"], check=True)
        run([need("dnssec-keygen"), "-q", "-K", str(keys), "-a", "ED25519", "-P", "+86400",
             "-A", "now", *extra, "example.test"], check=True)
    ours, bind = tmp_path / "ours.signed", tmp_path / "bind.signed"
    sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", ours, check=True)
    run([need("dnssec-signzone"), "-S", "-K", str(keys), "-o", "example.test", "-f", str(bind),
         str(EXAMPLE_ZONE)], cwd=tmp_path, check=True)
    for signed in (ours, bind):
        zone = dns.zone.from_file(str(signed), "example.test", relativize=False)
        dnskeys = {rd.algorithm for _, rds in zone.iterate_rdatasets(RdataType.DNSKEY)
                   for rd in rds}
        sig_algs = {rd.algorithm for node in zone.nodes.values() for rds in node
                    if rds.rdtype == RdataType.RRSIG for rd in rds}
        assert dnskeys == {8} and sig_algs == {8, 15}, signed
        run([need("dnssec-verify"), "-o", "example.test", str(signed)], check=True)
        run([need("ldns-verify-zone"), str(signed)], check=True)
        report = _verify_json(signed)
        codes = {f["code"] for f in report["findings"]}
        assert report["ok"] and "RRSIG_KEY_NOT_PUBLISHED" in codes, report["findings"][:3]
        assert "RRSIG_UNKNOWN_KEY" not in codes


def test_types_bind_names_and_dnspython_does_not_are_read(zone_and_keys: tuple[Path, Path]) -> None:
    """dnssec-signzone writes UID, GID and UINFO (types 100-102) by name in its NSEC bitmaps
    (their records in RFC 3597 form): sigchain verify reads them (the names are registered)."""
    zone, keys = zone_and_keys
    with zone.open("a") as f:
        f.write("u TYPE101 \\# 4 00000064\ng TYPE102 \\# 4 00000064\ni TYPE100 \\# 3 026869\n")
    out = zone.with_suffix(".bind.signed")
    run([need("dnssec-signzone"), "-S", "-K", str(keys), "-o", "example.test", "-f", str(out),
         str(zone)], cwd=zone.parent, check=True)
    assert " UID" in out.read_text() and " UINFO" in out.read_text()
    assert _verify_json(out)["ok"]
