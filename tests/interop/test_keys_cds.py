"""CDS/CDNSKEY follow the KSK's SyncPublish/SyncDelete metadata (what `keys run` writes) in
`sigchain sign` as in `dnssec-signzone -S`, with no --cds needed."""

from __future__ import annotations

import shutil
from pathlib import Path

import dns.rdatatype
import dns.zone
import pytest

from sigchain.clock import SYSTEM
from sigchain.edge import keystore
from tests.conftest import EXAMPLE_ZONE, need, run, sc


def _cds_types(path: Path) -> set[str]:
    zone = dns.zone.from_file(str(path), "example.test.", relativize=False)
    apex = zone.get_node("example.test.")
    return {dns.rdatatype.to_text(rds.rdtype) for rds in apex.rdatasets
            if rds.rdtype in (dns.rdatatype.CDS, dns.rdatatype.CDNSKEY)}


@pytest.mark.parametrize("window, published", [((-3600, None), True), ((-7200, -3600), False),
                                               ((3600, None), False)])
def test_sign_publishes_cds_in_the_sync_window_as_dnssec_signzone(
        tmp_path: Path, window: tuple[int, int | None], published: bool) -> None:
    keys = tmp_path / "keys"
    ksk = sc("keygen", "example.test", "--role", "ksk", "--dir", keys, check=True).stdout.strip()
    sc("keygen", "example.test", "--role", "zsk", "--dir", keys, check=True)
    now = SYSTEM.now()
    base = str(keys / ksk)
    kp = keystore.load_pair(base + ".private")
    start, end = window
    keystore.write_timing(base, kp.timing.__class__(
        created=now - 86400, publish=now - 86400, activate=now - 86400,
        sync_publish=now + start, sync_delete=None if end is None else now + end))
    ours = tmp_path / "ours.signed"
    sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", ours, check=True)
    theirs = tmp_path / "theirs.signed"
    zone = tmp_path / "example.test.zone"
    shutil.copy(EXAMPLE_ZONE, zone)
    run([need("dnssec-signzone"), "-S", "-K", str(keys), "-o", "example.test", "-f",
         str(theirs), str(zone)], cwd=tmp_path, check=True)  # it writes dsset-* into its cwd
    expected = {"CDS", "CDNSKEY"} if published else set()
    assert _cds_types(theirs) == expected  # BIND's reading of the same metadata
    assert _cds_types(ours) == expected
