"""DNSSEC rules decided in one place (core/dnssec): the policy object — honoured by the
parts it is handed to: key creation, DS, the signer, the validator and the verifier — and
the RRSIG field rule the validator and the verifier share."""

from __future__ import annotations

import dns.dnssec
import dns.name
import pytest

from sigchain.core.dnssec import algorithms, ds, keyfile
from sigchain.core.dnssec.policy import DEFAULT_POLICY, DnssecPolicy
from sigchain.core.sign import signer
from sigchain.errors import InputError, UnsafeRefused
from sigchain.model.keys import KeyPair, KeyRole, KeyTiming

N = dns.name.from_text
ZONE = N("example.test.")
NOW = 1_800_000_000


def _key(alg: int, role: KeyRole = KeyRole.CSK) -> KeyPair:
    a = algorithms.get(alg)
    priv = algorithms.generate(a, 1024 if a.family == "rsa" else None)
    return KeyPair(ZONE, alg, keyfile.make_dnskey(a, priv, role.flags), priv, KeyTiming())


def test_default_algorithms_follow_rfc_9904() -> None:
    """RFC 9904: SHA-1 algorithms may be validated but not used to sign; unimplemented
    ones neither."""
    assert DEFAULT_POLICY.sign_algorithms == {8, 10, 13, 14, 15, 16}
    assert DEFAULT_POLICY.validate_algorithms == {5, 7, 8, 10, 13, 14, 15, 16}
    for number in (1, 3, 6, 12, 200):
        assert not DEFAULT_POLICY.may_validate(number)


def test_signing_algorithm_refusal_and_force() -> None:
    rsasha1 = algorithms.get(5)
    with pytest.raises(UnsafeRefused, match="MUST NOT be used for signing"):
        DEFAULT_POLICY.check_may_sign(rsasha1, force=False)
    DEFAULT_POLICY.check_may_sign(rsasha1, force=True)
    with pytest.raises(UnsafeRefused, match="not supported for signing"):
        DEFAULT_POLICY.check_may_sign(algorithms.get(3), force=True)  # DSA: nothing to force


def test_the_signer_takes_its_algorithms_from_the_policy_it_is_given() -> None:
    keys = [_key(15)]
    signer.plan_keys(keys, ZONE, NOW, force=False)  # Ed25519: allowed by default
    no_eddsa = DnssecPolicy(sign_algorithms=frozenset({8, 13}))
    with pytest.raises(UnsafeRefused):
        signer.plan_keys(keys, ZONE, NOW, force=False, policy=no_eddsa)


def test_ds_creation_and_matching_follow_the_digest_rules() -> None:
    key = _key(13).dnskey
    sha256 = ds.make_ds(ZONE, key, 2)
    assert sha256.key_tag == dns.dnssec.key_id(key) and len(sha256.digest) == 32
    assert ds.make_ds(ZONE, key, 2) == dns.dnssec.make_ds(ZONE, key, "SHA256")  # the oracle
    with pytest.raises(InputError, match="unsupported DS digest type 1"):
        ds.make_ds(ZONE, key, 1)  # RFC 8624 §3.3: SHA-1 DS MUST NOT be created
    sha1 = dns.dnssec.make_ds(ZONE, key, "SHA1", validating=True)
    assert ds.ds_matches(ZONE, sha1, key)  # ... but is still validated
    assert not ds.ds_matches(ZONE, sha1, key, DnssecPolicy(validate_digests=frozenset({2, 4})))
    assert ds.ds_matches(ZONE, sha256, key)
    assert not ds.ds_matches(N("other.test."), sha256, key)
    assert not ds.ds_matches(ZONE, sha256, _key(13).dnskey)
    with pytest.raises(InputError):
        ds.make_ds(ZONE, key, 4, DnssecPolicy(create_digests=frozenset({2})))


def test_one_nsec3_iteration_limit() -> None:
    DEFAULT_POLICY.check_nsec3_iterations(150, force=False)
    with pytest.raises(UnsafeRefused, match="above 150"):
        DEFAULT_POLICY.check_nsec3_iterations(151, force=False)
    DEFAULT_POLICY.check_nsec3_iterations(151, force=True)
    with pytest.raises(InputError):
        DEFAULT_POLICY.check_nsec3_iterations(65536, force=True)
    DnssecPolicy(max_nsec3_iterations=0).check_nsec3_iterations(0, force=False)
    with pytest.raises(UnsafeRefused):
        DnssecPolicy(max_nsec3_iterations=0).check_nsec3_iterations(1, force=False)


def test_rrsig_field_rule_for_validators_and_zone_verifiers() -> None:
    from sigchain.core.dnssec.rrsig import wrong_fields

    ok = {"signer_is_zone": True, "labels": 3, "owner_labels": 3}
    assert wrong_fields(**ok) == []
    assert wrong_fields(**{**ok, "signer_is_zone": False}) == ["signer"]
    assert wrong_fields(**{**ok, "labels": 4}, may_expand=True) == ["labels"]
    # Fewer labels: a wildcard expansion for a validator, an error in a zone file.
    assert wrong_fields(**{**ok, "labels": 2}, may_expand=True) == []
    assert wrong_fields(**{**ok, "labels": 2}) == ["labels"]
    assert wrong_fields(**ok, original_ttl=300, rrset_ttl=60) == ["original-ttl"]
    assert wrong_fields(**ok, original_ttl=300) == []  # a validator does not compare TTLs
