"""Signing across worker processes gives the same text as signing in this process, whether
the pool was started before the zone was read (as the CLI does for big zones) or not."""

from __future__ import annotations

import dns.name

from sigchain.core.dnssec import algorithms, keyfile
from sigchain.core.dnssec.rrsig import SigWindow
from sigchain.core.sign import signer
from sigchain.core.zone.nsec3hash import Nsec3Params
from sigchain.core.zone.records import RRsetRec, key_of
from sigchain.model.keys import KeyPair, KeyRole, KeyTiming
from sigchain.services import signing

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
            counts = [0] * len(prep.ctx.keys)
            return "".join(signing.sign_stream(prep, threads, counts, pool=pool)), counts

    alone = signed(1, False)
    assert signed(2, True) == alone
    assert signed(2, False) == alone
