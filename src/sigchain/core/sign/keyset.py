"""Key selection for signing: which keys are published and which sign what, at `now`
(BIND timing metadata, KSK/ZSK/CSK roles, the policy's algorithms); the per-key summary."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import dns.name
import dns.rdtypes.ANY.DNSKEY

from sigchain.core.dnssec import algorithms, keyfile
from sigchain.core.dnssec.policy import DEFAULT_POLICY, DnssecPolicy
from sigchain.errors import InputError, UnsafeRefused
from sigchain.findings import Finding
from sigchain.model.keys import KeyPair


@dataclass(frozen=True)
class KeyPlan:
    """Which keys are in the DNSKEY RRset and which sign what, at `now`."""

    published: list[KeyPair]
    ksk_signers: dict[int, list[KeyPair]]  # algorithm → keys signing DNSKEY/CDS/CDNSKEY
    zsk_signers: dict[int, list[KeyPair]]  # algorithm → keys signing everything else
    warnings: list[Finding]
    # every KSK/CSK, published or not: a CDS/CDNSKEY follows the key's SyncPublish..SyncDelete
    # window, not its DNSKEY (a double-DS roll asks for the successor's DS before its DNSKEY
    # is out, and keeps the predecessor's after it left, until the parent may drop it)
    seps: list[KeyPair] = field(default_factory=list)


def plan_keys(keys: Sequence[KeyPair], origin: dns.name.Name, now: int, force: bool,
              policy: DnssecPolicy = DEFAULT_POLICY) -> KeyPlan:
    """Apply BIND timing metadata (as `dnssec-signzone -S`), the KSK/ZSK/CSK rules and the
    policy's signing algorithms."""
    warnings: list[Finding] = []
    for k in keys:
        if k.zone != origin:
            raise InputError(f"key {k.source} is for zone {k.zone}, not {origin}", file=k.source)
    revoked = [_revoked(k) for k in keys if k.is_sep and k.timing.is_revoked(now)]
    published = [k for k in keys if k.timing.is_published(now) and not (
        k.is_sep and k.timing.is_revoked(now))]
    shown = {id(k) for k in published}
    # An algorithm with no key in the DNSKEY RRset yet is signed by its active keys all the
    # same: an algorithm roll's new keys sign before their DNSKEYs are out (RFC 6781
    # §4.1.4), as BIND's dnssec-signzone -S does with a Publish time still ahead. An
    # algorithm the RRset has is signed by its published keys only (a signature no key there
    # verifies would leave its RRsets unsigned for that algorithm).
    ahead = {k.algorithm for k in keys} - {k.algorithm for k in (*published, *revoked)}
    active = [k for k in keys if k.timing.is_active(now) and not (
        k.is_sep and k.timing.is_revoked(now)) and (id(k) in shown or k.algorithm in ahead)]
    if not any(id(k) in shown for k in active):
        raise InputError(f"no active signing key for {origin} (of {len(keys)} key(s) found)")
    published += revoked
    algs = sorted({k.algorithm for k in (*published, *active)})
    ksk: dict[int, list[KeyPair]] = {}
    zsk: dict[int, list[KeyPair]] = {}
    for a in algs:
        policy.check_may_sign(algorithms.get(a), force)
        seps = [k for k in active if k.algorithm == a and k.is_sep]
        zones = [k for k in active if k.algorithm == a and not k.is_sep]
        if not seps and not zones:
            unsigned = Finding("SIGN_ALGORITHM_NO_ACTIVE_KEY", {"algorithm": a})
            if not force:
                raise UnsafeRefused(unsigned.message)
            warnings.append(unsigned)
            continue
        if not seps:
            warnings.append(Finding("SIGN_NO_ACTIVE_KSK", {"algorithm": a}))
        # A revoked key signs the DNSKEY RRset itself (RFC 5011 §2.1), and nothing else.
        ksk[a] = (seps or zones) + [k for k in revoked if k.algorithm == a]
        zsk[a] = zones or seps  # a KSK whose algorithm has no ZSK acts as a CSK
    return KeyPlan(published, ksk, zsk, warnings, [k for k in keys if k.is_sep])


def _revoked(k: KeyPair) -> KeyPair:
    """The key as published once its Revoke time has passed: the REVOKE bit set (a new tag)."""
    return replace(k, dnskey=keyfile.revoked(k.dnskey))


def key_summary(
    published: Sequence[KeyPair], signing: Sequence[KeyPair], counts: Sequence[int]
) -> list[dict[str, object]]:
    """Each published key with how many signatures it made (`counts` is per `signing` key)."""
    by_key = {id(k): counts[i] for i, k in enumerate(signing)}
    return [
        {
            "key_tag": k.key_tag, "algorithm": k.algorithm, "flags": k.flags, "file": k.source,
            "signatures": by_key.get(id(k), 0),
            "state": "active" if by_key.get(id(k)) else "published",
        }
        for k in published
    ]
