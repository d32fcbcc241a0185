"""The signer's warnings are findings with parameters; the CLI words them (naming its flags)."""

import json
from pathlib import Path

import dns.name
import pytest

from sigchain.core.dnssec import algorithms, keyfile
from sigchain.core.dnssec.rrsig import SigWindow
from sigchain.core.sign import signer
from sigchain.edge import keystore, zonefile
from sigchain.errors import UnsafeRefused
from sigchain.findings import Severity
from sigchain.model.keys import KeyPair, KeyRole, KeyTiming
from tests.conftest import EXAMPLE_ZONE, sc

NOW = 1_800_000_000
ORIGIN = dns.name.from_text("example.test.")


def _key(role: KeyRole, alg: int = 13, timing: KeyTiming | None = None) -> KeyPair:
    a = algorithms.get(alg)
    priv = algorithms.generate(a)
    return KeyPair(ORIGIN, alg, keyfile.make_dnskey(a, priv, role.flags), priv, timing or KeyTiming())


def test_algorithm_without_a_ksk_is_a_finding() -> None:
    plan = signer.plan_keys([_key(KeyRole.ZSK)], ORIGIN, NOW, force=False)
    assert [(f.code, dict(f.params)) for f in plan.warnings] == [("SIGN_NO_ACTIVE_KSK", {"algorithm": 13})]
    assert plan.warnings[0].severity is Severity.WARNING
    assert "dnssec-verify only with -z" in plan.warnings[0].message


def test_algorithm_without_an_active_key_is_refused_or_forced() -> None:
    pending = _key(KeyRole.ZSK, 15, KeyTiming(publish=0, activate=NOW + 10))
    keys = [_key(KeyRole.KSK), _key(KeyRole.ZSK), pending]
    with pytest.raises(UnsafeRefused, match=r"algorithm 15 .* \(RFC 6840 §5.11\)"):
        signer.plan_keys(keys, ORIGIN, NOW, force=False)
    plan = signer.plan_keys(keys, ORIGIN, NOW, force=True)
    assert [(f.code, dict(f.params)) for f in plan.warnings] == [
        ("SIGN_ALGORITHM_NO_ACTIVE_KEY", {"algorithm": 15})]


def test_a_key_ahead_of_its_publish_time_signs_only_for_an_algorithm_not_yet_published() -> None:
    """An Activate time passed and a Publish time ahead: for a new algorithm the key signs
    with its DNSKEY left out (RFC 6781 §4.1.4). For an algorithm the DNSKEY RRset has, its
    signatures would verify with no key there: the published keys sign, or the algorithm
    has no active key (refused, as before)."""
    ahead = KeyTiming(publish=NOW + 86400, activate=NOW - 60)
    ksk, zsk, early = _key(KeyRole.KSK), _key(KeyRole.ZSK, timing=KeyTiming(0, 0, 0, inactive=NOW - 1)), \
        _key(KeyRole.ZSK, timing=ahead)
    plan = signer.plan_keys([ksk, zsk, early], ORIGIN, NOW, force=False)
    assert plan.zsk_signers == {13: [ksk]}  # the KSK signs as a CSK, not the key out of sight
    assert [k for k in plan.published] == [ksk, zsk]
    new_ksk, new_zsk = _key(KeyRole.KSK, 15, ahead), _key(KeyRole.ZSK, 15, ahead)
    plan = signer.plan_keys([ksk, _key(KeyRole.ZSK), new_ksk, new_zsk], ORIGIN, NOW, force=False)
    assert plan.zsk_signers[15] == [new_zsk] and plan.ksk_signers[15] == [new_ksk]
    assert {k.algorithm for k in plan.published} == {13}
    only_ahead = _key(KeyRole.ZSK, 15, KeyTiming(publish=0, activate=NOW + 10))
    with pytest.raises(UnsafeRefused, match="algorithm 15"):  # published, nothing signs for it
        signer.plan_keys([ksk, only_ahead, _key(KeyRole.ZSK, 15, ahead)], ORIGIN, NOW, force=False)
    revoked = _key(KeyRole.KSK, 15, KeyTiming(publish=0, activate=0, revoke=NOW - 60))
    with pytest.raises(UnsafeRefused, match="algorithm 15"):  # a revoked key is in the RRset too
        signer.plan_keys([ksk, _key(KeyRole.ZSK), revoked, _key(KeyRole.ZSK, 15, ahead)], ORIGIN,
                         NOW, force=False)


def test_cds_without_a_ksk_is_a_finding_the_cli_words_with_its_flag(tmp_path: Path) -> None:
    keydir = tmp_path / "keys"
    keydir.mkdir()
    sc("keygen", "example.test", "--role", "zsk", "--dir", keydir, check=True)
    _origin, rrsets, _ = zonefile.load_records(str(EXAMPLE_ZONE))
    keys = keystore.load_zone_keys(str(keydir), ORIGIN)
    opts = signer.SignOptions(SigWindow(NOW - 3600, 86400, 0), cds=True)
    prep = signer.prepare(rrsets, ORIGIN, keys, opts, NOW)
    assert [f.code for f in prep.warnings] == ["SIGN_NO_ACTIVE_KSK", "CDS_NO_ACTIVE_KSK"]

    proc = sc("sign", EXAMPLE_ZONE, "--keys", keydir, "--cds", "-o", tmp_path / "signed")
    assert proc.returncode == 0, proc.stderr
    assert "sigchain: warning: --cds: no active KSK to publish CDS/CDNSKEY for" in proc.stderr
    json_out = sc("sign", EXAMPLE_ZONE, "--keys", keydir, "--cds", "-o", tmp_path / "s2", "--json")
    assert "--cds: no active KSK to publish CDS/CDNSKEY for" in json.loads(json_out.stdout)["warnings"]
