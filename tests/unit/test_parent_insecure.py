"""Going insecure (policy `insecure = true`, RFC 8078 §4): the planner withdraws the CDS (the
signer then publishes the delete form), waits for the DS to leave every parent server and
every cache — never on time alone — and only then takes every key out at once."""

from __future__ import annotations

from sigchain.core.rollover.planner import Observation, apply, plan
from sigchain.core.rollover.policy import KeyPolicy, KeySpec
from sigchain.core.rollover.states import Key
from sigchain.core.sign.apex import CDNSKEY_DELETE, CDS_DELETE

DAY = 86400
T = 1_800_000_000
POLICY = KeyPolicy("off", keys=(KeySpec("ksk", 13), KeySpec("zsk", 13)), insecure=True)
KEYS = [Key("ksk", "ksk", 13, None, T - 30 * DAY, published=T - 30 * DAY,
            active=T - 30 * DAY, cds_published=T - 29 * DAY, ds_published=T - 28 * DAY),
        Key("zsk", "zsk", 13, None, T - 30 * DAY, published=T - 30 * DAY,
            active=T - 30 * DAY)]


def test_the_delete_form_is_rfc_8078s() -> None:
    assert CDS_DELETE.to_text() == "0 0 0 00" and CDNSKEY_DELETE.to_text() == "0 3 0 AA=="


def test_going_insecure_waits_for_the_parent_then_removes_every_key() -> None:
    first = plan(KEYS, POLICY, [], T)
    assert [(a.kind, a.key) for a in first.actions] == [("withdraw-cds", "ksk"),
                                                         ("await-ds-gone", "ksk")]
    keys = apply(KEYS, first.actions)
    later = plan(keys, POLICY, [], T + 365 * DAY)  # a year on: time alone moves nothing
    assert [(a.kind, a.key) for a in later.actions] == [("await-ds-gone", "ksk")]
    gone = [Observation("ksk", "ds-withdrawn", T + DAY)]
    soon = plan(keys, POLICY, gone, T + DAY)  # the DS may still be in caches
    assert [a.kind for a in soon.actions] == ["ds-gone"] and soon.wake_at is not None
    keys = apply(keys, soon.actions)
    out = plan(keys, POLICY, gone, soon.wake_at)
    assert sorted((a.kind, a.key) for a in out.actions) == [
        ("remove", "ksk"), ("remove", "zsk"), ("retire", "ksk"), ("retire", "zsk")]


def test_a_ds_asked_for_and_never_seen_is_waited_for_too() -> None:
    """The CDS was out but the DS never seen (no parent check yet, servers disagreeing, keys
    adopted from K-files): the parent may hold it all the same. Its absence must be seen, and
    the keys go a DS TTL after that, as if it had been there until then."""
    unseen = [KEYS[0].replace(ds_published=None), KEYS[1]]
    first = plan(unseen, POLICY, [], T)
    assert [(a.kind, a.key) for a in first.actions] == [("withdraw-cds", "ksk"),
                                                        ("await-ds-gone", "ksk")]
    keys = apply(unseen, first.actions)
    assert [a.kind for a in plan(keys, POLICY, [], T + 365 * DAY).actions] == ["await-ds-gone"]
    gone = [Observation("ksk", "ds-withdrawn", T + DAY)]
    soon = plan(keys, POLICY, gone, T + DAY)  # a DS there unseen may still be in caches
    assert [a.kind for a in soon.actions] == ["ds-gone"] and soon.wake_at is not None
    keys = apply(keys, soon.actions)
    assert soon.wake_at > T + DAY
    out = plan(keys, POLICY, gone, soon.wake_at)
    assert sorted((a.kind, a.key) for a in out.actions) == [
        ("remove", "ksk"), ("remove", "zsk"), ("retire", "ksk"), ("retire", "zsk")]


def test_a_key_whose_ds_was_never_asked_for_does_not_hold_it_up() -> None:
    """No CDS ever published, no DS ever seen: the parent cannot hold it; nothing to wait for."""
    never = [KEYS[0].replace(ds_published=None, cds_published=None), KEYS[1]]
    out = plan(never, POLICY, [], T)
    assert sorted((a.kind, a.key) for a in out.actions) == [
        ("remove", "ksk"), ("remove", "zsk"), ("retire", "ksk"), ("retire", "zsk")]


def test_an_old_ds_never_seen_can_be_seen_gone_in_an_algorithm_roll() -> None:
    """An algorithm roll waits for the old DS to leave the parent; for a key whose DS was
    asked for but never seen (adopted from K-files with SyncPublish), the observation that it
    is gone used to be ignored, and the roll waited for ever."""
    p = KeyPolicy("csk13", keys=(KeySpec("csk", 13),))
    old = Key("old", "csk", 8, None, T - 60 * DAY, published=T - 60 * DAY, active=T - 60 * DAY,
              cds_published=T - 59 * DAY, cds_withdrawn=T - DAY)
    new = Key("new", "csk", 13, None, T - 20 * DAY, published=T - 20 * DAY,
              active=T - 20 * DAY, cds_published=T - 10 * DAY, ds_published=T - 9 * DAY)
    waiting = plan([old, new], p, [], T)
    assert ("await-ds-gone", "old") in [(a.kind, a.key) for a in waiting.actions]
    seen = plan([old, new], p, [Observation("old", "ds-withdrawn", T)], T)
    assert ("ds-gone", "old") in [(a.kind, a.key) for a in seen.actions]
