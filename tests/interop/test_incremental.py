"""A zone kept by the incremental signer through a run of random dynamic updates still passes
BIND's dnssec-verify, ldns-verify-zone and `sigchain verify` at the end: the chain repaired
change by change is one the peers accept."""

from __future__ import annotations

import random
import time
from pathlib import Path

import dns.rcode
import pytest

from sigchain.core.dnssec.rrsig import SigWindow
from sigchain.core.sign import signer
from sigchain.core.sign.incremental import SignedZone
from sigchain.core.update.process import parse, process
from sigchain.core.zone.nsec3hash import Nsec3Params
from tests.conftest import need, run, sc
from tests.unit.test_incremental import ORIGIN, make_keys, make_zone, random_update


@pytest.mark.parametrize("nsec3", [None, Nsec3Params(), Nsec3Params(opt_out=True)],
                         ids=["nsec", "nsec3", "opt-out"])
@pytest.mark.parametrize("alg", [13, 15], ids=["p256", "ed25519"])
def test_incrementally_kept_zone_passes_peers(tmp_path: Path, nsec3: Nsec3Params | None,
                                              alg: int) -> None:
    now = int(time.time())  # the peers check the signatures against the wall clock
    rng = random.Random(alg)
    window = SigWindow(now - 3600, 14 * 86400, 3600, b"j")
    opts = signer.SignOptions(window, nsec3, serial="unixtime")
    zone, _ = SignedZone.sign(make_zone(800, rng), ORIGIN, make_keys(alg), opts, now - 60)
    for step in range(30):
        res = process(parse(random_update(zone, rng, step).to_wire()), zone, ORIGIN, True)  # type: ignore[arg-type]
        assert res.rcode == dns.rcode.NOERROR, res.reason
        zone.apply(res.changes, SigWindow(now - 3600 + step, 14 * 86400, 3600, b"j"), now - 60 + step)
    path = tmp_path / "example.test.signed"
    path.write_text(zone.text())
    run([need("dnssec-verify"), "-o", "example.test", str(path)], check=True)
    run([need("ldns-verify-zone"), str(path)], check=True)
    sc("verify", path, "--origin", "example.test.", "--threads", "1", check=True)
