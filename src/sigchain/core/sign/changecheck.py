"""The checks a change set passes before the incremental signer changes anything: every
name inside the zone, no signer-made records, an SOA left, DS only beside NS, and for NSEC3
no new name whose hash another has or that looks like a hashed owner."""

from __future__ import annotations

from typing import TYPE_CHECKING

import dns.name
import dns.rdatatype
from dns.rdatatype import RdataType

from sigchain.core.update.changes import ChangeSet
from sigchain.core.zone.records import Key
from sigchain.core.zone.wire import key_text
from sigchain.errors import InputError, UnsafeRefused

if TYPE_CHECKING:
    from sigchain.core.sign.incremental import SignedZone


def check_changes(zone: SignedZone, changes: ChangeSet) -> None:
    """Refuse, before anything changes, a change set whose result would be no zone: data
    outside it or made by the signer, no SOA, DS without NS, an NSEC3 clash."""
    olen, okey = len(zone.okey), zone.okey
    final: dict[Key, set[int]] = {}
    for r in (*changes.removed, *changes.added):
        if r.key[:olen] != okey:
            raise InputError(f"{r.owner} is outside the zone {zone.origin}")
        if r.rdtype in (RdataType.RRSIG, RdataType.NSEC, RdataType.NSEC3):
            raise InputError(f"{r.owner}: {dns.rdatatype.to_text(r.rdtype)} is the signer's")
        final.setdefault(r.key, set(zone.data.get(r.key, ())))
    for r in changes.removed:
        final[r.key].discard(r.rdtype)
    for r in changes.added:
        final[r.key].add(r.rdtype)
    if RdataType.SOA not in final.get(okey, {RdataType.SOA}):
        raise InputError(f"no SOA record at the zone apex {zone.origin}")
    for k, ts in final.items():
        if RdataType.DS in ts and RdataType.NS not in ts and k != okey:
            raise InputError(f"{key_text(k)}: DS record "
                             "without NS (a DS belongs at a delegation)")
    if zone.opts.nsec3 is not None:
        _check_hashes(zone, final)


def _check_hashes(zone: SignedZone, final: dict[Key, set[int]]) -> None:
    """NSEC3: a new name or empty non-terminal whose hash another name has, or a new name
    that looks like a hashed owner, is refused (as `signer.prepare` refuses them)."""
    olen = len(zone.okey)
    for k, ts in final.items():
        if ts and len(k) == olen + 1 and k in zone.unhashed:
            raise UnsafeRefused(f"NSEC3 owner {key_text(k)} collides with a name in the zone")
        n = k
        while len(n) > olen and n not in zone.hashed:
            owner = zone.nsec3_owner(n)
            other = zone.unhashed.get(owner)
            if other is not None and other != n:
                raise UnsafeRefused(f"NSEC3 hash collision between {key_text(other)} and "
                                    f"{key_text(n)}: choose another salt")
            if owner in zone.data:
                raise UnsafeRefused(f"NSEC3 owner {key_text(owner)} collides with a name in the zone")
            n = n[:-1]

