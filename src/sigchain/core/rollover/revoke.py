"""RFC 5011 revocation of a trust point's KSK/CSK (pure): when the operator may revoke a key
without breaking any chain, and what the plan does with a revoked key until it is removed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sigchain.core.rollover import timings
from sigchain.core.rollover.policy import KeyPolicy
from sigchain.core.rollover.states import Key, State, states

if TYPE_CHECKING:
    from sigchain.core.rollover.planner import _Planner

OMNI = State.OMNIPRESENT
# RFC 5011 §2.4.1: resolvers hold a trust point's keys in their states for 30 days (the
# hold-down); a revoked key stays published and self-signed that long after it is in every
# cache, so every resolver doing active refresh (§2.3, at most every 15 days) sees it.
HOLD_DOWN = 30 * 86400


def is_revoked(k: Key, now: int) -> bool:
    return k.revoked is not None and k.revoked <= now


def refusal(keys: Sequence[Key], key_id: str, p: KeyPolicy, now: int) -> str | None:
    """Why revoking `key_id` at `now` would break validation (None: it is safe): another
    unrevoked key must sign the DNSKEY RRset with its DNSKEY and signatures in every cache
    (and its DS there too while the revoked key's DS may be cached); for a CSK, another key's
    zone signatures must be in every cache as well."""
    k = next(k for k in keys if k.id == key_id)
    mine = states(k, p, now)
    others = [o for o in keys if o.id != k.id and o.revoked is None and o.removed is None
              and o.active is not None and o.retired is None]

    def sound(o: Key) -> bool:
        s = states(o, p, now)
        return o.signs_dnskey and s.dnskey == OMNI and s.krrsig == OMNI and (
            mine.ds == State.HIDDEN or s.ds == OMNI)

    if not any(sound(o) for o in others):
        return (f"key {k.id} is the only {'KSK' if k.role == 'ksk' else 'CSK'} the zone's "
                "chain rests on: no other key signing the DNSKEY RRset has its DNSKEY, "
                "signatures" + ("" if mine.ds == State.HIDDEN else " and DS")
                + " in every cache; revoking it would make the zone bogus for every resolver "
                  "(add another KSK and wait until it is omnipresent)")
    if k.signs_zone and not any(o.signs_zone and states(o, p, now).zrrsig == OMNI
                                for o in others):
        return (f"key {k.id} is a CSK and no other key's zone signatures are in every cache: "
                "a revoked key signs nothing but the DNSKEY RRset")
    return None


def removal_time(k: Key, p: KeyPolicy) -> int:
    """When a revoked key leaves the zone: its revoked DNSKEY in every cache (Ipub), then the
    RFC 5011 hold-down."""
    assert k.revoked is not None
    return k.revoked + timings.ipub(p).seconds + HOLD_DOWN


def follow(pl: _Planner, k: Key) -> None:
    """A revoked key: its CDS/CDNSKEY go at once (its DS matches no published key any more),
    it stays published and self-signed for the hold-down, then leaves the zone."""
    if k.cds_published is not None and k.cds_withdrawn is None:
        pl.do("withdraw-cds", k, "revoked: its DS goes from the parent")
        k = pl.key(k.id)
    if k.ds_published is not None and k.ds_withdrawn is None:
        pl.do("await-ds-gone", k, "revoked: waiting for its DS to leave every parent server")
    if k.removed is not None:
        return
    out = removal_time(k, pl.p)
    if pl.now < out:
        pl.wakes.append(out)
        return
    if k.retired is None:
        pl.do("retire", k, "revoked and seen by every resolver (RFC 5011 hold-down): it "
                           "stops signing")
    pl.do("remove", k, "revoked and seen by every resolver (RFC 5011 hold-down): its "
                       "DNSKEY goes")
