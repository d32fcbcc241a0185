"""Signature refresh planning with a fake clock: signatures are replaced before they expire,
in bounded batches, and their expirations spread over the jitter window, so a zone signed in
one moment never comes due all at once again; the zone verifies after cycles of refreshes."""

from __future__ import annotations

import collections
import random

import pytest

from sigchain.clock import FakeClock
from sigchain.core.dnssec.rrsig import SigWindow
from sigchain.core.sign import signer
from sigchain.core.sign.incremental import SignedZone
from sigchain.core.sign.refresh import RefreshPolicy, RefreshQueue
from sigchain.core.zone.nsec3hash import Nsec3Params
from tests.unit.test_incremental import NOW, ORIGIN, make_keys, make_zone, verify_clean

DAY = 86400


def _zone(jitter: int, nsec3: Nsec3Params | None = None) -> SignedZone:
    opts = signer.SignOptions(SigWindow(NOW - 3600, 14 * DAY, jitter, b"first"), nsec3,
                              serial="increment")
    zone, _ = SignedZone.sign(make_zone(300, random.Random(5)), ORIGIN, make_keys(), opts, NOW)
    return zone


def _run(zone: SignedZone, policy: RefreshPolicy, clock: FakeClock, until: int) -> list[int]:
    """Refresh as a server would: plan, re-sign the batch, follow the change, sleep until the
    plan's wake-up (a minute at least between batches, answering queries meanwhile). The
    number of RRsets of each batch."""
    queue = RefreshQueue(zone.expirations())
    batches = []
    while clock.now() < until:
        now = clock.now()
        earliest = min(exp for _, _, exp in zone.expirations())
        assert earliest > now, "a signature expired before it was refreshed"
        plan = queue.plan(now, policy, b"seed")
        if plan.due:
            diff = zone.resign(plan.due, plan.window, now)
            queue.track(diff)
            batches.append(len(plan.due))
        assert len(queue) == sum(len(n) for n in zone.sigs.values())
        wake = plan.wake if plan.wake is not None else until
        clock.set(max(wake, now + 60))
    return batches


@pytest.mark.parametrize("nsec3", [None, Nsec3Params()], ids=["nsec", "nsec3"])
def test_refresh_keeps_the_zone_valid_in_bounded_spread_batches(nsec3: Nsec3Params | None) -> None:
    zone = _zone(jitter=0, nsec3=nsec3)  # signed all at once: every signature expires together
    total = sum(len(n) for n in zone.sigs.values())
    policy = RefreshPolicy(validity=14 * DAY, refresh=5 * DAY, jitter=4 * DAY, batch=100,
                           interval=6 * 3600)
    clock = FakeClock(NOW)
    batches = _run(zone, policy, clock, NOW + 45 * DAY)
    assert max(batches) <= 100 < total  # never the whole zone in one go
    # After the first cycle the expirations are spread over the jitter window: no day holds
    # much more than its share (4 days of jitter: about a quarter each).
    per_day = collections.Counter((exp - NOW) // DAY for _, _, exp in zone.expirations())
    assert max(per_day.values()) <= total * 0.45, per_day
    assert len(per_day) >= 4
    verify_clean(zone, clock.now())


def test_nothing_due_means_nothing_signed_and_a_wake_up_at_the_first_due() -> None:
    zone = _zone(jitter=DAY)
    policy = RefreshPolicy(validity=14 * DAY, refresh=5 * DAY, jitter=DAY, batch=50)
    queue = RefreshQueue(zone.expirations())
    plan = queue.plan(NOW, policy)
    earliest = min(exp for _, _, exp in zone.expirations())
    assert plan.due == () and plan.wake == max(earliest - 5 * DAY, NOW + 3600)
    later = queue.plan(earliest - 5 * DAY, policy)
    assert 1 <= len(later.due) <= 50
    # Unless re-signed, what was due stays due: planning twice gives the same batch.
    assert queue.plan(earliest - 5 * DAY, policy).due == later.due
    diff = zone.resign(later.due, later.window, earliest - 5 * DAY)
    queue.track(diff)
    again = queue.plan(earliest - 5 * DAY, policy)
    assert not set(again.due) & set(later.due)


def test_refresh_policy_is_checked() -> None:
    with pytest.raises(ValueError):
        RefreshPolicy(validity=DAY, refresh=DAY)
    with pytest.raises(ValueError):
        RefreshPolicy(validity=10 * DAY, refresh=5 * DAY, jitter=6 * DAY)


def test_an_rrset_whose_expiration_was_set_again_is_due_once() -> None:
    """A change that removes and re-adds an RRSIG with the same expiration (or sets the same
    one twice) left two live heap entries: the batch listed the RRset twice ("77 of 71")."""
    policy = RefreshPolicy(validity=14 * DAY, refresh=5 * DAY, batch=50)
    www, mail = (b"test", b"example", b"www"), (b"test", b"example", b"mail")
    queue = RefreshQueue([(www, 1, NOW + DAY), (mail, 1, NOW + 2 * DAY)])
    queue.set(www, 1, None)
    queue.set(www, 1, NOW + DAY)
    queue.set(mail, 1, NOW + 2 * DAY)
    plan = queue.plan(NOW, policy)
    assert sorted(plan.due) == sorted([(www, 1), (mail, 1)])
    assert queue.plan(NOW, policy).due == plan.due  # planning again: the same batch
