"""Key record states derived from stored timestamps, TTLs and `now` (Mekking's model)."""

from __future__ import annotations

from sigchain.core.rollover import timings
from sigchain.core.rollover.policy import builtin
from sigchain.core.rollover.states import Key, State, next_change, states

H, D = 3600, 86400
P = builtin("ksk-zsk")
IPUB = timings.ipub(P).seconds  # 5m + 1h + 1h
IRET_C = timings.iret_child(P).seconds
IRET = timings.iret_zsk(P).seconds


def test_zsk_goes_through_every_state() -> None:
    k = Key("z", "zsk", 13, 90 * D, created=0, published=0, active=10 * D, retired=30 * D,
            removed=50 * D)
    assert states(k, P, -1).dnskey == State.HIDDEN
    assert states(k, P, 0).dnskey == State.RUMOURED
    assert states(k, P, IPUB - 1).dnskey == State.RUMOURED
    assert states(k, P, IPUB).dnskey == State.OMNIPRESENT
    assert states(k, P, 10 * D - 1).zrrsig == State.HIDDEN
    assert states(k, P, 10 * D).zrrsig == State.RUMOURED
    assert states(k, P, 10 * D + timings.zrrsig_in(P).seconds).zrrsig == State.OMNIPRESENT
    assert states(k, P, 30 * D).zrrsig == State.UNRETENTIVE
    assert states(k, P, 30 * D + IRET - 1).zrrsig == State.UNRETENTIVE
    assert states(k, P, 30 * D + IRET).zrrsig == State.HIDDEN
    assert states(k, P, 50 * D).dnskey == State.UNRETENTIVE
    assert states(k, P, 50 * D + IRET_C).dnskey == State.HIDDEN
    s = states(k, P, 21 * D)
    assert (s.krrsig, s.ds) == (State.HIDDEN, State.HIDDEN)  # a ZSK has neither
    assert next_change(k, P, 21 * D) == 30 * D
    assert next_change(k, P, 50 * D + IRET_C) is None


def test_ksk_ds_follows_the_observed_parent() -> None:
    k = Key("k", "ksk", 13, None, created=0, published=0, active=0, cds_published=D)
    assert states(k, P, 5 * D).ds == State.HIDDEN  # asked for, never seen: still hidden
    seen = k.replace(ds_published=3 * D)
    assert states(seen, P, 3 * D).ds == State.RUMOURED
    ipubp = timings.ipub_parent(P).seconds  # parent-propagation 1h + DS TTL 1d + safety 1h
    assert ipubp == D + 2 * H
    assert states(seen, P, 3 * D + ipubp).ds == State.OMNIPRESENT
    gone = seen.replace(ds_withdrawn=10 * D)
    assert states(gone, P, 10 * D).ds == State.UNRETENTIVE
    assert states(gone, P, 10 * D + timings.iret_parent(P).seconds).ds == State.HIDDEN
    assert states(seen, P, 4 * D).krrsig == State.OMNIPRESENT
    assert states(seen, P, 4 * D).zrrsig == State.HIDDEN


def test_withdrawn_before_fully_introduced_is_unretentive() -> None:
    k = Key("z", "zsk", 13, None, created=0, published=0, removed=60)
    assert states(k, P, 60).dnskey == State.UNRETENTIVE
    assert states(k, P, 60 + IRET_C).dnskey == State.HIDDEN
