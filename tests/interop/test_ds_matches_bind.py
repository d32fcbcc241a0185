"""`sigchain ds` is byte-identical to `dnssec-dsfromkey`, for our keys and for BIND's."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_ZONE, need, run, sc
from tests.zonetools import keygen

ALGS = {  # ours → dnssec-keygen's name
    "ecdsap256sha256": "ECDSAP256SHA256", "ecdsap384sha384": "ECDSAP384SHA384",
    "ed25519": "ED25519", "ed448": "ED448", "rsasha256": "RSASHA256", "rsasha512": "RSASHA512",
}


def _dsfromkey(*args: str) -> list[str]:
    return run([need("dnssec-dsfromkey"), *args], check=True).stdout.splitlines()


def _ours(*args: object) -> list[str]:
    return sc("ds", *args, check=True).stdout.splitlines()


@pytest.mark.parametrize("alg", sorted(ALGS))
@pytest.mark.parametrize("maker", ["sigchain", "dnssec-keygen"])
def test_ds_identical(tmp_path: Path, alg: str, maker: str) -> None:
    if maker == "sigchain":
        base = tmp_path / keygen(tmp_path, "example.test", "ksk", alg)
    else:
        name = run([need("dnssec-keygen"), "-K", str(tmp_path), "-a", ALGS[alg], "-f", "KSK", "example.test"],
                   check=True).stdout.strip()
        base = tmp_path / name
    key = f"{base}.key"
    assert _ours(key) == _dsfromkey("-2", key)
    assert _ours(key, "--digest", "4") == _dsfromkey("-a", "SHA-384", key)
    ours_cds = _ours(key, "--cds")
    assert ours_cds[1:] == _dsfromkey("-C", "-2", key)
    cdnskey = _ours(key, "--cdnskey")[1].split()
    dnskey = [line for line in Path(key).read_text().splitlines() if not line.startswith(";")][0].split()
    i = dnskey.index("DNSKEY")
    assert cdnskey[:3] == [dnskey[0], "IN", "CDNSKEY"]
    assert cdnskey[3:6] == dnskey[i + 1 : i + 4] and cdnskey[6] == "".join(dnskey[i + 4 :])


def test_ds_from_signed_zone_lists_ksks_only(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    ksk = keygen(keys, "example.test", "ksk")
    keygen(keys, "example.test", "zsk")
    signed = tmp_path / "signed"
    sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", signed, check=True)
    ours = _ours("--zone", signed)
    assert ours == _dsfromkey("-2", "-f", str(signed), "example.test")
    assert ours == _dsfromkey("-2", str(keys / f"{ksk}.key"))
