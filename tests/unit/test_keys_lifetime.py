"""A policy's key lifetime changed after keys exist (as BIND's keymgr): the keys still in use
take the new lifetime at the next run, their retirement moves with it, a retirement moved into
the past starts the roll at once and still waits for the successor (no cached combination
fails), a roll started by hand keeps its own lifetime, and `keys status` shows it."""

from __future__ import annotations

import json
from pathlib import Path

from sigchain.core.rollover import timings
from sigchain.core.rollover.planner import plan, planned_retire
from sigchain.core.rollover.policy import KeyPolicy, KeySpec
from sigchain.core.rollover.simulate import T0, drive, failures
from sigchain.core.rollover.states import Key
from tests.conftest import sc
from tests.unit.test_keys_run import FAST, ZONE, _at, _kdir

D = 86400


def _zsk(lifetime: int | None) -> KeyPolicy:
    return KeyPolicy("p", keys=(KeySpec("ksk", 13, None), KeySpec("zsk", 13, lifetime)))


def _zsks(keys: tuple[Key, ...]) -> list[Key]:
    return sorted((k for k in keys if k.role == "zsk"), key=lambda k: k.created)


def test_a_shortened_zsk_lifetime_rolls_at_once_but_never_retires_early() -> None:
    before, after = _zsk(30 * D), _zsk(10 * D)
    keys, _ = drive(before, days=20, lag=3600)
    first = _zsks(keys)[0]
    assert first.lifetime == 30 * D and first.retired is None
    keys, log = drive(after, days=40, lag=3600, keys=keys, start=T0 + 20 * D, previous=before)
    changed = [(t, a.key, a.lifetime) for t, a in log if a.kind == "lifetime"]
    assert changed == [(T0 + 20 * D, first.id, 10 * D)]  # once, at the next run
    old, new = _zsks(keys)[:2]
    assert new.predecessor == old.id and new.created == new.published == T0 + 20 * D
    assert old.retired == new.active == T0 + 20 * D + timings.ipub(after).seconds
    assert [str(f) for f in failures(keys, after)] == []


def test_a_lengthened_zsk_lifetime_moves_the_roll_later() -> None:
    before, after = _zsk(10 * D), _zsk(30 * D)
    keys, _ = drive(before, days=5, lag=3600)
    keys, log = drive(after, days=35, lag=3600, keys=keys, start=T0 + 5 * D, previous=before)
    old, new = _zsks(keys)[:2]
    assert old.lifetime == 30 * D and old.active == T0
    assert new.published == T0 + 30 * D - timings.ipub(after).seconds
    assert old.retired == T0 + 30 * D
    assert [str(f) for f in failures(keys, after)] == []
    # Without the previous policy (as before this change) the key kept its old 10 days.
    stale, _ = drive(after, days=35, lag=3600, keys=drive(before, days=5, lag=3600)[0],
                     start=T0 + 5 * D)
    assert _zsks(stale)[0].retired == T0 + 10 * D


def test_a_roll_started_by_hand_and_unlimited_lifetimes() -> None:
    before, after = _zsk(30 * D), _zsk(10 * D)
    keys, _ = drive(before, days=2, lag=3600)
    zsk = _zsks(keys)[0]
    by_hand = tuple(k.replace(lifetime=2 * D + 3600) if k.id == zsk.id else k for k in keys)
    actions = plan(by_hand, after, [], T0 + 2 * D, previous=before).actions
    assert not [a for a in actions if a.kind == "lifetime"]
    # unlimited → 10 days: the key takes a lifetime; 10 days → unlimited: it never retires.
    forever = plan(keys, _zsk(None), [], T0 + 2 * D, previous=before)
    assert [(a.kind, a.lifetime) for a in forever.actions] == [("lifetime", None)]
    assert planned_retire(zsk.replace(lifetime=None), keys, after, T0 + 2 * D) is None
    # A retirement moved into the past is planned no earlier than a successor can be ready.
    now = T0 + 20 * D
    assert planned_retire(zsk.replace(lifetime=10 * D), keys, after, now) == \
        now + timings.ipub(after).seconds


def test_keys_run_applies_a_changed_lifetime_and_status_shows_it(tmp_path: Path) -> None:
    kdir = _kdir(tmp_path)
    policy = tmp_path / "p.toml"
    policy.write_text(FAST)  # zsk 10d
    sc("keys", "run", ZONE, "--policy", policy, "--keys", kdir, "--at", _at(T0), check=True)
    policy.write_text(FAST.replace('lifetime = "10d"', 'lifetime = "30d"'))
    out = sc("keys", "run", ZONE, "--policy", policy, "--keys", kdir, "--at", _at(T0 + D),
             check=True).stdout
    assert "the policy's zsk lifetime changed from 10d to 30d" in out
    status = json.loads(sc("keys", "status", ZONE, "--keys", kdir, "--at", _at(T0 + D),
                           "--json", check=True).stdout)
    zsk = next(k for k in status["keys"] if k["role"] == "zsk")
    assert (zsk["lifetime"], zsk["retire_at"]) == (30 * D, T0 + 30 * D)
    text = sc("keys", "status", ZONE, "--keys", kdir, "--at", _at(T0 + D), check=True).stdout
    assert "lifetime 30d: retires at " in text
    again = sc("keys", "run", ZONE, "--policy", policy, "--keys", kdir, "--at",
               _at(T0 + 2 * D), check=True).stdout
    assert "lifetime changed" not in again  # applied once
