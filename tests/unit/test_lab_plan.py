"""`lab up`'s plan from hand-made states and observations (no processes, no files, no clock):
a fresh lab, an unchanged one, changed content, signatures past half validity, a dead
server, a busy port, a resolver switch, --fresh, and `lab down`."""

from __future__ import annotations

from dataclasses import replace

import pytest

from sigchain.clock import FakeClock
from sigchain.core.dnssec import algorithms, keyfile
from sigchain.core.lab import hierarchy
from sigchain.core.lab import plan as lp
from sigchain.core.lab.hierarchy import LabPaths, SigTimes
from sigchain.core.lab.state import LabState, ProcessRecord, ZoneRecord
from sigchain.errors import InputError
from sigchain.model.keys import KeyRole

NOW = 1_800_000_000
DAY = 86400
PATHS = LabPaths("/srv/lab")
REQUEST = lp.UpRequest(PATHS, "unbound", serve_program=("/usr/bin/python3", "-m", "sigchain"))
SIGNED = [z.name.to_text() for z in hierarchy.ZONES if z.signed]
SERVERS = {hierarchy.server_name(z): z for z in hierarchy.ZONES}
BUSY = "UDP port 53 on 127.53.0.4 is already in use (another DNS server?)"


def dnskey(role: KeyRole) -> object:
    alg = algorithms.get(hierarchy.ALGORITHM)
    return keyfile.make_dnskey(alg, algorithms.generate(alg), role.flags)


def key_sets() -> dict[str, tuple]:
    return {name: (dnskey(KeyRole.KSK), dnskey(KeyRole.ZSK)) for name in SIGNED}


def kinds(actions: tuple[lp.Action, ...]) -> list[str]:
    return [type(a).__name__ for a in actions]


def of(actions: tuple[lp.Action, ...], kind: type) -> list:
    return [a for a in actions if isinstance(a, kind)]


def converged(request: lp.UpRequest = REQUEST, now: int = NOW) -> tuple[LabState, lp.Observed]:
    """A lab that `up` built and started at `now`: the state and observation the executor
    would have after carrying out the plan (keys exist, every file is written, all runs)."""
    observed = lp.Observed(keys=key_sets(), decoy_keys={"dnssec-failed.test.": (dnskey(KeyRole.KSK),)})
    first = lp.plan_up(LabState(), observed, now, request)
    assert not first.needs_keys() and first.refusal is None
    zones = {w.zone: ZoneRecord(w.fingerprint, w.serial, now) for w in of(first.build, lp.WriteZone)}
    fresh = SigTimes(now - hierarchy.SIG_BACKDATE, now + hierarchy.SIG_VALIDITY - DAY, 100)
    procs = {}
    for a in first.run:
        if isinstance(a, lp.StartServer):
            procs[a.name] = ProcessRecord(1000 + len(procs), PATHS.served(SERVERS[a.name]), a.cmd,
                                          a.address, "server", "", PATHS.log(a.name), now)
        elif isinstance(a, lp.StartResolver):
            procs[a.kind] = ProcessRecord(2000, PATHS.path(f"{a.kind}.conf"), ("unbound",),
                                          a.address, "resolver", a.config or "", PATHS.log(a.kind), now)
    state = LabState(tuple(a.address for a in of(first.run, lp.AddAddress)), procs, zones,
                     request.resolver, first.anchor or ())
    observed = replace(
        observed, addresses=frozenset(state.added_addresses) | {"127.0.0.1"},
        alive=frozenset(procs),
        zone_files={z.name.to_text(): lp.ZoneFiles(True, True, fresh if z.signed else None)
                    for z in hierarchy.ZONES},
        files={f.name: lp.sha256(f.text) for f in of(first.build, lp.WriteFile) if f.text},
    )
    return state, observed


def test_a_fresh_lab_makes_keys_first_then_everything_in_order() -> None:
    p = lp.plan_up(LabState(), lp.Observed(), NOW, REQUEST)
    assert p.refusal is None and p.needs_keys() and p.anchor is None and p.anchor_changed
    keys = of(p.build, lp.GenerateKey)
    assert {(k.zone, k.role, k.decoy) for k in keys} == (
        {(z, r, False) for z in SIGNED for r in ("ksk", "zsk")} | {("dnssec-failed.test.", "ksk", True)})
    k = kinds(p.actions)
    assert k.index("WriteZone") > max(i for i, n in enumerate(k) if n == "GenerateKey")
    writes = of(p.build, lp.WriteZone)
    assert [w.zone for w in writes] == [z.name.to_text() for z in hierarchy.bottom_up()]
    assert {w.because for w in writes} == {"new"} and {w.serial for w in writes} == {NOW}
    # zone texts wait for the keys, except those of unsigned zones with no signed child
    assert {w.zone for w in writes if w.text is not None} == {"insecure.test.", "unsigned.optout.test."}
    assert [s.zone for s in of(p.build, lp.SignZone)] == [w.zone for w in writes if w.zone in SIGNED]
    assert {f.name: f.text is None for f in of(p.build, lp.WriteFile)} == {
        "anchor.ds": True, "anchor.conf": True, "root.hints": False, "unbound.conf": False,
        "named.conf": True, "sigchain-resolver.toml": False}
    assert kinds(p.run) == (["AddAddress"] * 10 + ["StartServer"] * 8 + ["WaitServing"] * 8
                            + ["StartResolver"] * 2)
    assert [a.address for a in of(p.run, lp.AddAddress)] == [*hierarchy.server_addresses(), "127.53.1.1",
                                                             "127.53.1.3"]
    assert [(a.kind, a.address) for a in of(p.run, lp.StartResolver)] == [
        ("unbound", "127.53.1.1"), ("sigchain-resolver", "127.53.1.3")]
    assert of(p.run, lp.StartServer)[2].cmd == (
        "/usr/bin/python3", "-m", "sigchain", "serve", "--listen", "127.53.0.3#53",
        "--zone", "example.test.=/srv/lab/zones/example.test.signed")


def test_with_keys_every_text_is_known_and_the_plan_is_a_function_of_its_inputs() -> None:
    observed = lp.Observed(keys=key_sets(), decoy_keys={"dnssec-failed.test.": (dnskey(KeyRole.KSK),)})
    p = lp.plan_up(LabState(), observed, NOW, REQUEST)
    assert not p.needs_keys() and p.anchor is not None and len(p.anchor) == 1
    assert all(w.text is not None and w.fingerprint for w in of(p.build, lp.WriteZone))
    assert all(f.text is not None for f in of(p.build, lp.WriteFile))
    assert lp.plan_up(LabState(), observed, NOW, REQUEST) == p
    root = next(w for w in of(p.build, lp.WriteZone) if w.zone == ".")
    assert " IN DS " in root.text and "test. IN NS ns1.test." in root.text


def test_an_unchanged_lab_only_checks_its_servers() -> None:
    state, observed = converged()
    p = lp.plan_up(state, observed, NOW + 3600, REQUEST)
    assert p.build == () and not p.anchor_changed
    assert kinds(p.run) == ["WaitServing"] * 8
    serials = {w.zone: w.serial for w in of(p.run, lp.WaitServing)}
    assert serials == {name: rec.serial for name, rec in state.zones.items()}


def test_a_zone_whose_content_changed_is_rebuilt_and_reloaded() -> None:
    state, observed = converged()
    new_ksk = dnskey(KeyRole.KSK)  # nsec.test. has another KSK: its keys and its DS change
    observed = replace(observed, keys={**observed.keys, "nsec.test.": (new_ksk, observed.keys["nsec.test."][1])})
    p = lp.plan_up(state, observed, NOW + 60, REQUEST)
    writes = of(p.build, lp.WriteZone)
    assert [(w.zone, w.because) for w in writes] == [("nsec.test.", "changed"), ("test.", "changed")]
    assert writes[0].serial == NOW + 60 and f"{lp.ds.make_ds(hierarchy.N('nsec.test.'), new_ksk, 2).to_text()}" in writes[1].text
    assert [s.zone for s in of(p.build, lp.SignZone)] == ["nsec.test.", "test."]
    assert [(r.name, r.zone) for r in of(p.run, lp.ReloadServer)] == [
        ("serve-127.53.0.2", "test."), ("serve-127.53.0.4", "nsec.test.")]
    assert kinds(p.run)[-1] == "FlushResolver" and not of(p.run, lp.StartServer)
    assert not p.anchor_changed and not of(p.build, lp.WriteFile)


def test_signatures_past_half_their_validity_are_renewed() -> None:
    state, observed = converged()
    old = SigTimes(NOW - 20 * DAY, NOW + 10 * DAY, 50)
    observed = replace(observed, zone_files={**observed.zone_files, "nsec.test.": lp.ZoneFiles(True, True, old)})
    p = lp.plan_up(state, observed, NOW, REQUEST)
    assert [(w.zone, w.because) for w in of(p.build, lp.WriteZone)] == [("nsec.test.", "past half validity")]
    assert of(p.build, lp.SignZone)[0].describe() == "sign nsec.test. (past half validity)"
    assert [r.zone for r in of(p.run, lp.ReloadServer)] == ["nsec.test."]
    assert [a.kind for a in of(p.run, lp.FlushResolver)] == ["unbound", "sigchain-resolver"]
    unreadable = replace(observed, zone_files={**observed.zone_files, "nsec.test.": lp.ZoneFiles(True, True, None)})
    assert [w.because for w in of(lp.plan_up(state, unreadable, NOW, REQUEST).build, lp.WriteZone)] == ["unreadable"]


def test_the_plan_says_when_to_plan_again_the_first_zone_due_for_re_signing() -> None:
    state, observed = converged()
    fresh = observed.zone_files["nsec.test."].sig_times
    assert fresh is not None
    unchanged = lp.plan_up(state, observed, NOW + 3600, REQUEST)
    assert unchanged.wake_at == hierarchy.resign_time(fresh)
    older = SigTimes(NOW - 10 * DAY, NOW + 12 * DAY, 50)  # due at NOW + 1 day, before the rest
    observed = replace(observed, zone_files={**observed.zone_files, "nsec.test.": lp.ZoneFiles(True, True, older)})
    assert lp.plan_up(state, observed, NOW + 3600, REQUEST).wake_at == NOW + DAY
    # Once past due, the zone is signed in this plan: the wake-up counts it as signed now,
    # with the shortest validity the lab's jitter allows.
    later = NOW + 2 * DAY
    p = lp.plan_up(state, observed, later, REQUEST)
    assert [w.zone for w in of(p.build, lp.WriteZone)] == ["nsec.test."]
    assert p.wake_at == min(hierarchy.resign_time(fresh), hierarchy.resign_time(hierarchy.fresh_signature_times(later)))
    assert later < p.wake_at


def test_the_serial_follows_the_signers_unixtime_rule() -> None:
    state, observed = converged()
    ahead = replace(state, zones={**state.zones, "nsec.test.": ZoneRecord("other", NOW + 5, NOW)})
    p = lp.plan_up(ahead, observed, NOW, REQUEST)
    assert [(w.zone, w.serial) for w in of(p.build, lp.WriteZone)] == [("nsec.test.", NOW + 6)]
    assert of(p.run, lp.WaitServing)[3].serial == NOW + 6


def test_a_dead_server_is_started_again_and_nothing_else_changes() -> None:
    state, observed = converged()
    observed = replace(observed, alive=observed.alive - {"serve-127.53.0.4"})
    p = lp.plan_up(state, observed, NOW, REQUEST)
    assert p.build == ()
    assert [a.describe() for a in p.run[:2]] == [
        "stop serve-127.53.0.4 (not running)", "start serve-127.53.0.4 serving nsec.test. (restart)"]
    assert kinds(p.run[2:]) == ["WaitServing"] * 8


def test_a_port_in_use_is_a_refusal_unless_the_lab_holds_it() -> None:
    p = lp.plan_up(LabState(), lp.Observed(port_problems={"127.53.0.4": BUSY}), NOW, REQUEST)
    assert p.refusal == f"cannot bring the lab up: {BUSY}" and p.actions == ()
    state, observed = converged()
    assert lp.plan_up(state, replace(observed, port_problems={"127.53.0.4": BUSY}), NOW, REQUEST).refusal is None
    dead = replace(observed, port_problems={"127.53.0.4": BUSY}, alive=observed.alive - {"serve-127.53.0.4"})
    assert lp.plan_up(state, dead, NOW, REQUEST).refusal == f"cannot bring the lab up: {BUSY}"


def test_switching_the_resolver_retires_the_old_one() -> None:
    state, observed = converged()
    p = lp.plan_up(state, observed, NOW, replace(REQUEST, resolver="named"))
    assert kinds(p.run) == ["AddAddress"] + ["WaitServing"] * 8 + ["RetireResolver", "StartResolver"]
    assert of(p.run, lp.AddAddress)[0].address == "127.53.1.2"
    start = of(p.run, lp.StartResolver)[0]
    assert (start.kind, start.address) == ("named", "127.53.1.2") and start.config
    none = lp.plan_up(state, observed, NOW, replace(REQUEST, resolver="none"))
    assert [a.describe() for a in of(none.run, lp.RetireResolver)] == [
        "stop resolver unbound (the lab's resolver is now none)",
        "stop resolver sigchain-resolver (the lab's resolver is now none)"]


def test_changed_zones_restart_named_rather_than_flush_it() -> None:
    named = replace(REQUEST, resolver="named")
    state, observed = converged(named)
    old = SigTimes(NOW - 20 * DAY, NOW + 10 * DAY, 50)
    observed = replace(observed, zone_files={**observed.zone_files, "test.": lp.ZoneFiles(True, True, old)})
    p = lp.plan_up(state, observed, NOW, named)
    assert kinds(p.run)[-3:] == ["StopProcess", "StartResolver", "FlushResolver"]
    assert [a.kind for a in of(p.run, lp.FlushResolver)] == ["sigchain-resolver"]


def test_fresh_removes_keys_and_zones_and_rebuilds_all() -> None:
    state, observed = converged()
    p = lp.plan_up(state, observed, NOW + 60, replace(REQUEST, fresh=True))
    assert kinds(p.build)[0] == "RemoveKeysAndZones" and p.needs_keys() and p.anchor_changed
    assert {w.because for w in of(p.build, lp.WriteZone)} == {"new"}
    assert {w.serial for w in of(p.build, lp.WriteZone)} == {NOW + 60}
    # the configs that do not hold the anchor are unchanged, so not written again
    assert {f.name for f in of(p.build, lp.WriteFile)} == {"anchor.ds", "anchor.conf", "named.conf"}
    assert kinds(p.run)[-2:] == ["StopProcess", "StartResolver"]  # a new anchor: a new config


def test_down_stops_every_process_then_removes_its_addresses() -> None:
    state, observed = converged()
    state = state.with_address("127.53.9.9")  # added once, gone from lo since
    actions = lp.plan_down(state, observed)
    assert [a.name for a in of(actions, lp.StopProcess)] == list(state.processes)
    removes = of(actions, lp.RemoveAddress)
    assert kinds(actions) == ["StopProcess"] * 10 + ["RemoveAddress"] * 11
    assert [a.describe() for a in removes[-3:]] == [
        "remove 127.53.1.1/32 from lo (lab down)", "remove 127.53.1.3/32 from lo (lab down)",
        "forget 127.53.9.9 (lab down)"]


def test_actions_as_json_leave_the_texts_out() -> None:
    p = lp.plan_up(LabState(), lp.Observed(), NOW, REQUEST)
    objs = [a.to_json() for a in p.actions]
    assert objs[0] == {"action": "GenerateKey", "because": "the zone has no keys", "zone": ".",
                       "role": "ksk", "decoy": False}
    assert all("text" not in o for o in objs)
    write = next(o for o in objs if o["action"] == "WriteZone" and o["zone"] == "insecure.test.")
    assert write == {"action": "WriteZone", "because": "new", "zone": "insecure.test.",
                     "serial": NOW, "fingerprint": write["fingerprint"]}


@pytest.mark.parametrize("resolver", ["unbound", "named", "none"])
def test_state_round_trips_through_the_lab_json_format(resolver: str) -> None:
    state, _ = converged(replace(REQUEST, resolver=resolver))
    data = state.to_json()
    assert data["version"] == 1 and data["resolver"] == resolver
    assert set(data) == {"version", "added_addresses", "processes", "zones", "resolver", "anchor"}
    assert set(data["processes"]["serve-127.53.0.1"]) == {
        "pid", "marker", "cmd", "address", "kind", "config", "log", "started"}
    assert LabState.from_json(data) == state


def test_a_lab_json_written_before_the_typed_state_still_reads() -> None:
    data = {"version": 1, "added_addresses": ["127.53.0.1"], "resolver": "unbound",
            "processes": {"unbound": {"pid": 42, "marker": "/srv/lab/unbound.conf",
                                      "cmd": ["unbound", "-d"], "address": "127.53.1.1",
                                      "kind": "resolver", "config": "ab", "log": "/srv/lab/logs/u",
                                      "started": NOW}},
            "zones": {"test.": {"fingerprint": None, "serial": 7, "built": NOW}}}
    state = LabState.from_json(data)
    assert state.processes["unbound"].cmd == ("unbound", "-d") and state.anchor == ()
    assert state.zones["test."] == ZoneRecord(None, 7, NOW)
    assert state.to_json() == {**data, "anchor": []}
    with pytest.raises(InputError, match="unknown version"):
        LabState.from_json({"version": 2})
    with pytest.raises(InputError, match="unreadable lab state"):
        LabState.from_json({"version": 1, "zones": {"x.": {"serial": "seven"}}})


def test_the_fake_clock_sleeps_without_waiting() -> None:
    clock = FakeClock(NOW)
    clock.sleep(0.25)
    clock.sleep(0.25)
    assert clock.monotonic() == 0.5 and clock.now() == NOW
    clock.advance(10)
    assert clock.monotonic() == 10.5 and clock.now() == NOW + 10
