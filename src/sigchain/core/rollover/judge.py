"""The real validator as the rollover simulator's judge: each cached combination becomes small
synthetic RRsets (a DS anchor, the DNSKEY RRset and its RRSIGs, a signed A RRset) made with
real keys of each key's algorithm, and core/validate decides."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

import dns.dnssec
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from sigchain.core.dnssec import algorithms
from sigchain.core.rollover.states import Key
from sigchain.core.validate.validator import validate
from sigchain.core.validate.verdict import Evidence, Question, Status, ZoneCut

Combination = tuple[frozenset[str], frozenset[str], frozenset[str], frozenset[str]]

ZONE = dns.name.from_text("roll.test.")
WWW = dns.name.from_text("www.roll.test.")
NOW = 1_900_000_000
Info = dict[str, tuple[bool, int]]  # key id → (signs the DNSKEY RRset, algorithm)


@cache
def _private(key_id: str, algorithm: int) -> algorithms.PrivateKey:
    return algorithms.generate(algorithms.get(algorithm))


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


def insecure_verdicts(keys: Iterable[Key], combos: Iterable[Combination]) -> dict[Combination, str]:
    """The combinations (DS, DNSKEY, DNSKEY signers, data signers) that do not validate as
    secure, with the validator's status."""
    info = {k.id: (k.signs_dnskey, k.algorithm) for k in keys}
    out = {}
    for combo in combos:
        ds, dnskey, dnskey_signers, signers = combo
        anchor = dns.rrset.RRset(ZONE, dns.rdataclass.IN, dns.rdatatype.DS)
        for key_id in sorted(ds):
            anchor.add(dns.dnssec.make_ds(ZONE, _dnskey(key_id, info), "SHA256"), 3600)
        keyset = dns.rrset.RRset(ZONE, dns.rdataclass.IN, dns.rdatatype.DNSKEY)
        for key_id in sorted(dnskey):
            keyset.add(_dnskey(key_id, info), 3600)
        data = dns.rrset.from_text(WWW, 300, "IN", "A", "192.0.2.1")
        answer = (data, _signed(data, signers, info)) if signers else (data,)
        evidence = Evidence(Question(WWW, dns.rdatatype.A), answer=answer, zones=(
            ZoneCut(ZONE, dnskey=(keyset, _signed(keyset, dnskey_signers, info))),))
        verdict = validate(evidence, [anchor], NOW)
        if verdict.status is not Status.SECURE:
            out[combo] = verdict.status.value
    return out
