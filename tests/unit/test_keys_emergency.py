"""Emergency rolls of a compromised key: as fast as the TTLs allow with no cached chain broken
(judged by the simulator's oracle and the validator); a deadline shorter than that is refused
(exit 4) unless --force, which takes the key out at once and does break cached chains."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from sigchain.core.dnssec import timefmt
from sigchain.core.rollover import policy as pol
from sigchain.core.rollover import timings
from sigchain.core.rollover.planner import emergency_earliest
from sigchain.core.rollover.simulate import T0, drive, failures
from sigchain.core.rollover.states import Key
from tests.conftest import sc

DAY = 86400
P = pol.builtin("ksk-zsk")


def _settled() -> tuple[tuple[Key, ...], int]:
    """The built-in ksk-zsk policy run for 20 days: keys in use, the DS at the parent."""
    keys, _ = drive(P, 20)
    assert any(k.ds_published is not None for k in keys)
    return keys, T0 + 20 * DAY


def _compromise(keys: tuple[Key, ...], role: str, now: int, deadline: int | None = None
                ) -> tuple[tuple[Key, ...], Key]:
    """What `keys roll --emergency` stores: the key's lifetime ends now (and a forced deadline)."""
    victim = next(k for k in keys if k.role == role and k.retired is None)
    assert victim.active is not None
    changed = replace(victim, lifetime=now - victim.active, deadline=deadline)
    return tuple(changed if k.id == victim.id else k for k in keys), victim


def test_emergency_zsk_roll_is_as_fast_as_ipub_and_breaks_nothing() -> None:
    keys, now = _settled()
    keys, victim = _compromise(keys, "zsk", now)
    earliest, why = emergency_earliest(victim, P, now)
    assert earliest == now + timings.ipub(P).seconds and why.startswith("Ipub = ")
    keys, log = drive(P, 30, keys=keys, start=now)
    retired = next(k for k in keys if k.id == victim.id).retired
    assert retired == earliest  # not a second later than the TTLs allow
    assert failures(keys, P) == []


def test_emergency_ksk_roll_waits_for_the_ds_and_breaks_nothing() -> None:
    keys, now = _settled()
    keys, victim = _compromise(keys, "ksk", now)
    earliest, _ = emergency_earliest(victim, P, now)
    keys, _ = drive(P, 30, lag=DAY, keys=keys, start=now)
    retired = next(k for k in keys if k.id == victim.id).retired
    assert retired == earliest + DAY  # IpubP after the parent's day of lag
    assert failures(keys, P) == []


def test_forced_emergency_roll_takes_the_key_out_at_the_deadline_and_breaks_caches() -> None:
    keys, now = _settled()
    keys, victim = _compromise(keys, "zsk", now, deadline=now + 600)
    keys, _ = drive(P, 30, keys=keys, start=now)
    old = next(k for k in keys if k.id == victim.id)
    assert old.retired == old.removed == now + 600
    assert failures(keys, P, validator=False)  # the price of --force, as refused without it


def test_cli_refuses_a_deadline_the_ttls_do_not_allow_unless_forced(tmp_path: Path) -> None:
    tmp_path.chmod(0o700)
    kdir, t0 = tmp_path / "keys", timefmt.parse_timestamp14("20260101000000")
    at = timefmt.format_timestamp14
    sc("keys", "run", "example.test.", "--policy", "ksk-zsk", "--keys", kdir, "--at", at(t0),
       check=True)
    status = sc("keys", "status", "example.test.", "--keys", kdir, "--json", "--at",
                at(t0 + DAY), check=True).stdout
    zsk = next(k for k in json.loads(status)["keys"] if k["role"] == "zsk")
    args = ("keys", "roll", "example.test.", "--key", zsk["tag"], "--keys", kdir, "--at",
            at(t0 + DAY), "--emergency")
    refused = sc(*args, "--within", "10m")
    assert refused.returncode == 4
    assert (f"key {zsk['id']} cannot stop signing before 2026-01-02 02:05:00 UTC without "
            "breaking validation (Ipub = zone-propagation-delay 5m + dnskey-ttl 1h + "
            "publish-safety 1h = 2h5m)") in refused.stderr
    ok = sc(*args, check=True)
    assert "it can stop signing at the earliest at 2026-01-02 02:05:00 UTC" in ok.stdout
    forced = sc(*args, "--within", "10m", "--force", check=True)
    assert "forced: key" in forced.stderr
    sc("keys", "run", "example.test.", "--policy", "ksk-zsk", "--keys", kdir, "--at",
       at(t0 + DAY), check=True)
    out = sc("keys", "run", "example.test.", "--policy", "ksk-zsk", "--keys", kdir, "--at",
             at(t0 + DAY + 600), "--json", check=True).stdout
    kinds = [(a["kind"], a["key"]) for a in json.loads(out)["actions"]]
    assert ("retire", zsk["id"]) in kinds and ("remove", zsk["id"]) in kinds


def test_forced_ksk_roll_withdraws_the_compromised_keys_ds_at_once() -> None:
    """--force: the compromised KSK leaves at the deadline, and so does its CDS — the parent
    is asked to drop its DS now, not once caches have forgotten the key."""
    keys, now = _settled()
    keys, victim = _compromise(keys, "ksk", now, deadline=now + 600)
    keys, _ = drive(P, 30, lag=DAY, keys=keys, start=now)
    old = next(k for k in keys if k.id == victim.id)
    assert old.removed == old.cds_withdrawn == now + 600
