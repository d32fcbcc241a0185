"""The real validator as the rollover oracle's judge: each cached combination becomes small
synthetic RRsets (DS anchor, DNSKEY RRset with its RRSIGs, a signed A RRset) with real keys."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

import dns.dnssec
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from sigchain.core.rollover.policy import KeyPolicy
from sigchain.core.rollover.states import Key
from sigchain.core.validate.validator import validate
from sigchain.core.validate.verdict import Evidence, Question, Status, ZoneCut
from tests.unit.rollover_oracle import combinations

ZONE = dns.name.from_text("roll.test.")
WWW = dns.name.from_text("www.roll.test.")
NOW = 1_900_000_000
Info = dict[str, tuple[bool, int]]  # key id → (signs the DNSKEY RRset, algorithm)
PRIVATE = {13: lambda: ec.generate_private_key(ec.SECP256R1()),
           14: lambda: ec.generate_private_key(ec.SECP384R1()),
           15: ed25519.Ed25519PrivateKey.generate}


@cache
def _private(key_id: str, algorithm: int) -> Any:
    return PRIVATE[algorithm]()


def _dnskey(key_id: str, info: Info) -> dns.dnssec.DNSKEY:
    ksk, alg = info[key_id]
    return dns.dnssec.make_dnskey(_private(key_id, alg).public_key(), alg,
                                  flags=257 if ksk else 256)


def _signed(rrset: dns.rrset.RRset, signers: Iterable[str], info: Info) -> dns.rrset.RRset:
    sigs = dns.rrset.RRset(rrset.name, dns.rdataclass.IN, dns.rdatatype.RRSIG)
    for key_id in sorted(signers):
        sigs.add(dns.dnssec.sign(rrset, _private(key_id, info[key_id][1]), ZONE,
                                 _dnskey(key_id, info), inception=NOW - 3600,
                                 expiration=NOW + 86400), 300)
    return sigs


def validator_failures(keys: Iterable[Key], p: KeyPolicy) -> list[str]:
    """Every cached combination the real validator does not find secure."""
    keys = list(keys)
    info = {k.id: (k.signs_dnskey, k.algorithm) for k in keys}
    out = []
    for (ds, dnskey, dnskey_signers, signers), t in combinations(keys, p).items():
        anchor = dns.rrset.RRset(ZONE, dns.rdataclass.IN, dns.rdatatype.DS)
        for key_id in sorted(ds):
            anchor.add(dns.dnssec.make_ds(ZONE, _dnskey(key_id, info), "SHA256"), 3600)
        keyset = dns.rrset.RRset(ZONE, dns.rdataclass.IN, dns.rdatatype.DNSKEY)
        for key_id in sorted(dnskey):
            keyset.add(_dnskey(key_id, info), 3600)
        data = dns.rrset.from_text(WWW, 300, "IN", "A", "192.0.2.1")
        answer = (data, _signed(data, signers, info)) if signers else (data,)
        keysigs = _signed(keyset, dnskey_signers, info)
        evidence = Evidence(Question(WWW, dns.rdatatype.A), answer=answer,
                            zones=(ZoneCut(ZONE, dnskey=(keyset, keysigs)),))
        verdict = validate(evidence, [anchor], NOW)
        if verdict.status is not Status.SECURE:
            out.append(f"{t}: DS {sorted(ds)} DNSKEY {sorted(dnskey)} signed by "
                       f"{sorted(dnskey_signers)}, data by {sorted(signers)}: {verdict.status.value}")
    return out
