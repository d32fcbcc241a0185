"""The lab's keys and signatures: new keys with a tag no key of the zone uses (revoked or
not), the DNSKEYs of a key directory, and each zone signed as `sigchain sign` does."""

from __future__ import annotations

import os
from typing import Any

import dns.name

from sigchain.core.dnssec import algorithms
from sigchain.core.lab import hierarchy
from sigchain.core.lab.hierarchy import Denial, LabPaths, LabZone
from sigchain.core.sign.denial import DenialRequest
from sigchain.edge import keystore
from sigchain.errors import OperationalError, SigchainError
from sigchain.model.keys import KeyRole, KeyTiming
from sigchain.services import signing


def generate(directory: str, origin: dns.name.Name, role: KeyRole, now: int,
             beside: str | None = None) -> None:
    """A new key for `origin` written to `directory`, its tag (and its revoked tag) unused
    there and by the zone's keys in `beside` (a broken-DS zone's keys and its decoy: the DS
    then matches no key of the zone even by tag)."""
    alg = algorithms.get(hierarchy.ALGORITHM)
    os.makedirs(os.path.dirname(directory), mode=0o700, exist_ok=True)
    timing = KeyTiming(created=now, publish=now, activate=now)
    avoid = frozenset(keystore.existing_tags(beside, origin)) if beside else frozenset()
    keystore.write_pair(directory, keystore.new_pair(origin, alg, role, directory, timing,
                                                     avoid=avoid), alg)


def dnskeys(directory: str, origin: dns.name.Name) -> tuple[Any, ...]:
    """The DNSKEYs of the key files for `origin` in `directory` (none if it does not exist)."""
    if not os.path.isdir(directory):
        return ()
    return tuple(keystore.load_public(p)[2] for p in keystore.zone_key_paths(directory, origin))


def denial(z: LabZone) -> DenialRequest:
    """The zone's denial of existence as the lab signs it (NSEC3: no iterations, no salt)."""
    if z.denial is Denial.NSEC:
        return DenialRequest("nsec")
    return DenialRequest("nsec3", iterations=0, salt=b"", opt_out=z.denial is Denial.NSEC3_OPTOUT)


def sign_all(paths: LabPaths, zones: list[LabZone], now: int) -> None:
    """Sign each zone as `sigchain sign` does (verified before it is written: never
    publish bogus); the signer keeps the serial the zone text carries."""
    failed = []
    for z in zones:
        try:
            signing.sign_file(
                paths.unsigned(z), paths.keys(z), now=now,
                inception=now - hierarchy.SIG_BACKDATE, validity=hierarchy.SIG_VALIDITY,
                jitter=hierarchy.SIG_JITTER, origin=z.name.to_text(),
                output=paths.served(z), denial=denial(z), serial="keep",
            )
        except signing.VerifyRefused as exc:
            failed.append(f"{z.name}: {exc} ({', '.join(f.code for f in exc.findings)})")
        except SigchainError as exc:
            failed.append(f"{z.name}: {exc}")
    if failed:
        raise OperationalError("signing the lab zones failed: " + "; ".join(failed))
