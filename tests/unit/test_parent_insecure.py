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
