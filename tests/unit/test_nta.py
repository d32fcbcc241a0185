"""Negative trust anchors (core/validate/nta.py): coverage, expiry, re-check."""

from __future__ import annotations

import dns.name
import pytest

from sigchain.core.validate.nta import MAX_LIFETIME, RECHECK, NegativeAnchors
from sigchain.core.validate.verdict import Status
from sigchain.errors import InputError

N = dns.name.from_text
T = 1_780_000_000


def test_nta_covers_the_name_and_below_until_it_expires() -> None:
    ntas = NegativeAnchors().add(N("broken.test."), T, lifetime=3600)
    assert ntas.is_negative(N("broken.test."), T)
    assert ntas.is_negative(N("www.broken.test."), T + 3599)
    assert not ntas.is_negative(N("test."), T)
    assert not ntas.is_negative(N("notbroken.test."), T)
    assert not ntas.is_negative(N("www.broken.test."), T + 3600)
    kept, gone = ntas.expire(T + 3600)
    assert kept.entries == () and [e.name for e in gone] == [N("broken.test.")]


def test_deepest_nta_wins_and_renewing_replaces() -> None:
    ntas = NegativeAnchors().add(N("test."), T, 60).add(N("a.test."), T, 600)
    assert ntas.covering(N("x.a.test."), T).name == N("a.test.")  # type: ignore[union-attr]
    ntas = ntas.add(N("test."), T + 30, 3600)
    assert len(ntas.entries) == 2
    assert ntas.covering(N("b.test."), T + 120).expiry == T + 30 + 3600  # type: ignore[union-attr]


def test_lifetime_is_bounded_to_a_week() -> None:
    with pytest.raises(InputError, match="one week"):
        NegativeAnchors().add(N("x."), T, MAX_LIFETIME + 1)
    with pytest.raises(InputError):
        NegativeAnchors().add(N("x."), T, 0)


def test_recheck_drops_the_nta_once_the_zone_validates() -> None:
    ntas = NegativeAnchors().add(N("broken.test."), T, 3600)
    assert ntas.due(T) == ()
    assert ntas.due(T + RECHECK) == (N("broken.test."),)
    still, dropped = ntas.rechecked(N("broken.test."), Status.BOGUS, T + RECHECK)
    assert not dropped and still.is_negative(N("broken.test."), T + RECHECK)
    assert still.due(T + RECHECK) == () and still.due(T + 2 * RECHECK) == (N("broken.test."),)
    fixed, dropped = still.rechecked(N("broken.test."), Status.SECURE, T + 2 * RECHECK)
    assert dropped and not fixed.is_negative(N("broken.test."), T + 2 * RECHECK)
    unsigned, dropped = still.rechecked(N("broken.test."), Status.INSECURE, T + 2 * RECHECK)
    assert dropped and unsigned.entries == ()


def test_forced_nta_is_never_rechecked() -> None:
    ntas = NegativeAnchors().add(N("broken.test."), T, 3600, forced=True)
    assert ntas.due(T + 3000) == () and ntas.next_event() == T + 3600


def test_every_recheck_keeps_the_nta_s_own_interval() -> None:
    """nta-recheck set to 60 s: the re-check after a bogus one is 60 s later, not the default."""
    ntas = NegativeAnchors().add(N("broken.test."), T, 3600, recheck=60)
    assert ntas.due(T + 60) == (N("broken.test."),)
    still, _ = ntas.rechecked(N("broken.test."), Status.BOGUS, T + 60)
    assert still.due(T + 119) == () and still.due(T + 120) == (N("broken.test."),)
