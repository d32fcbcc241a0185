"""Signing across worker processes gives the same text as signing in this process, whether
the pool was started before the zone was read (as the CLI does for big zones) or not; and
the check of the output before it is renamed into place."""

from __future__ import annotations

import types
from pathlib import Path

import dns.name
import pytest
from dns.rdatatype import RdataType

from sigchain.core.dnssec import algorithms, keyfile
from sigchain.core.dnssec.rrsig import SigWindow
from sigchain.core.sign import signer
from sigchain.core.sign.denial import DenialRequest
from sigchain.core.zone.nsec3hash import Nsec3Params
from sigchain.core.zone.records import RRsetRec, key_of
from sigchain.model.keys import KeyPair, KeyRole, KeyTiming
from sigchain.services import signing
from sigchain.services.signing import NoPhases, VerifyRefused, _verifier
from tests.conftest import EXAMPLE_ZONE
from tests.zonetools import keygen, load

ORIGIN = dns.name.from_text("example.test.")
NOW = 1_800_000_000


def _records(names: int) -> list[RRsetRec]:
    okey = key_of(ORIGIN)
    recs = [
        RRsetRec(okey, "example.test.", 6, 300, (b"\x02ns\x07example\x04test\x00\x01h\x07example\x04test\x00"
                                                  + bytes(20),), ("ns.example.test. h.example.test. 0 0 0 0 0",)),
        RRsetRec(okey, "example.test.", 2, 300, (b"\x02ns\x07example\x04test\x00",), ("ns.example.test.",)),
    ]
    for i in range(names):
        label = f"n{i}"
        recs.append(RRsetRec(okey + (label.encode(),), f"{label}.example.test.", 1, 300,
                             (bytes((192, 0, 2, i % 256)),), (f"192.0.2.{i % 256}",)))
    return recs


def _key(role: KeyRole) -> KeyPair:
    a = algorithms.get(13)
    priv = algorithms.generate(a)
    return KeyPair(ORIGIN, 13, keyfile.make_dnskey(a, priv, role.flags), priv, KeyTiming())


def test_pool_started_early_signs_the_same_text() -> None:
    keys = [_key(KeyRole.KSK), _key(KeyRole.ZSK)]
    opts = signer.SignOptions(SigWindow(NOW - 3600, 86400, 3600, b"seed"), Nsec3Params(), deterministic=True)
    records = _records(1500)  # 3000+ units: more than one batch

    def signed(threads: int, early: bool) -> tuple[str, list[int]]:
        with signing.worker_pool(threads if early else 1) as pool:
            prep = signer.prepare(records, ORIGIN, keys, opts, NOW)
            assert prep.total > signing.BATCH
            tally = signing.Tally([0] * len(prep.ctx.keys))
            text = "".join(signing.sign_stream(prep, threads, tally, pool=pool))
            return text, tally.counts

    alone = signed(1, False)
    assert signed(2, True) == alone
    assert signed(2, False) == alone


def test_sign_file_in_process(tmp_path: Path) -> None:
    """The service the CLI and the lab call: its result describes the file it wrote."""
    keydir = tmp_path / "keys"
    keygen(keydir, "example.test", "ksk")
    keygen(keydir, "example.test", "zsk")
    out = tmp_path / "signed"
    result = signing.sign_file(
        EXAMPLE_ZONE, str(keydir), now=NOW, inception=NOW - 3600, validity=10 * 86400,
        jitter=86400, output=str(out), denial=DenialRequest("nsec3"), threads=2,
    )
    assert result.output == str(out) and result.zone == "example.test." and result.verified
    sigs = [sig for rdatasets in load(out).nodes.values() for rds in rdatasets
            if rds.rdtype == RdataType.RRSIG for sig in rds]
    assert result.signatures == len(sigs) == sum(k["signatures"] for k in result.keys)  # type: ignore[misc]
    assert result.resign_at == min(s.expiration for s in sigs) - 10 * 86400 // 4
    assert result.to_json()["denial"] == "nsec3" and result.warnings == []


def test_an_output_that_does_not_read_back_is_refused_naming_the_output(tmp_path: Path) -> None:
    """The check before writing reads the temp file: should what the signer wrote not parse
    (a bug of ours), the refusal names the output and the line, not the temp file (gone)."""
    tmp = tmp_path / ".sigchain-1-x-out.tmp"
    tmp.write_text("$ORIGIN example.test.\n@ 60 SOA ns h 1 2 3 4 5\nbad..name 60 A 192.0.2.1\n")
    prep = types.SimpleNamespace(origin=dns.name.from_text("example.test."), ksk_signs_dnskey=True)
    check = _verifier(prep, str(tmp_path / "out"), 0, 1, NoPhases())  # type: ignore[arg-type]
    with pytest.raises(VerifyRefused) as refused:
        check(str(tmp))
    said = str(refused.value)
    assert said.startswith("the signed zone could not be read back for its check (line 3: ")
    assert said.endswith(f"; {tmp_path / 'out'} not written") and ".tmp" not in said
