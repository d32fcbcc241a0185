"""Live rollovers end to end (issue 15, acceptance): `example.test.` is an inline zone of
`sigchain serve` with a fast policy, its parent `test.` an inline zone taking the DS by
UPDATE with TSIG, under a root of its own; a validating Unbound and a validating named are
asked several times a second for a signed name and a non-existent one while `sigchain ctl
roll` drives a ZSK roll, a KSK roll (double-DS, the DS pushed and confirmed by the parent
check) and an algorithm roll. Never a SERVFAIL, never an answer without AD; `delv` through
Unbound says `; fully validated` at the end. Everything binds in 127.64.0.0/16 (this file's
range), on port 53 (the resolvers find the servers from root hints)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import need, run
from tests.interop.livelab import (
    PRIMARY,
    RESOLVERS,
    UNBOUND,
    ZONE,
    Lab,
    Querier,
    ask,
    fast_policy,
    wait,
)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    for tool in ("unbound", "named", "delv", "ip"):
        need(tool)
    the_lab = Lab(tmp_path)
    try:
        yield the_lab
    finally:
        texts = the_lab.stop()
        assert not any("Traceback" in t for t in texts), "\n".join(texts)[-3000:]


class Transitions:
    """Every key state `ctl status --json` showed, in order: (tag, role, states, goal)."""

    def __init__(self, lab: Lab):
        self.lab, self.seen = lab, []  # type: ignore[var-annotated]
        self.zone: dict = {}  # type: ignore[type-arg]

    def poll(self) -> dict:  # type: ignore[type-arg]
        self.zone = self.lab.status()
        for k in self.zone["signing"]["keys"]:
            row = (k["tag"], k["role"], k["algorithm"], tuple(sorted(k["states"].items())),
                   k["goal"])
            if row not in self.seen:
                self.seen.append(row)
        return self.zone

    def keys(self) -> list[dict]:  # type: ignore[type-arg]
        return self.zone["signing"]["keys"]  # type: ignore[no-any-return]

    def states_of(self, tag: int) -> set[tuple[str, str]]:
        """Each (record, state) the key `tag` went through."""
        return {s for row in self.seen if row[0] == tag for s in row[3]}


SIGNS = {"zsk": ("dnskey", "zrrsig"), "ksk": ("dnskey", "krrsig", "ds")}


def _live(k: dict) -> bool:  # type: ignore[type-arg]
    return any(v != "hidden" for v in k["states"].values())


def _done(t: Transitions, role: str, old: set[tuple[int, int]], algorithm: int) -> bool:
    """The roll of `role` is over: the old keys (tag, algorithm: a new key of another algorithm
    may have an old key's tag) are hidden everywhere, and one key of `algorithm` (not an old
    one) is omnipresent in all its role's records."""
    t.poll()
    if any((k["tag"], k["algorithm"]) in old and _live(k) for k in t.keys()):
        return False
    return any(k["role"] == role and (k["tag"], k["algorithm"]) not in old
               and k["algorithm"] == algorithm
               and all(k["states"][r] == "omnipresent" for r in SIGNS[role]) for k in t.keys())


def _current(t: Transitions, role: str) -> dict:  # type: ignore[type-arg]
    t.poll()
    return next(k for k in t.keys() if k["role"] == role and k["goal"] == "omnipresent")


def _roll(lab: Lab, t: Transitions, role: str, timeout: float) -> tuple[int, int, float]:
    """`ctl roll` of the role's current key, polled to its end: (old tag, new tag, seconds)."""
    old = _current(t, role)
    start = time.monotonic()
    assert f"roll of key {old['tag']} started" in lab.ctl("roll", ZONE, "--key", str(old["tag"]))
    wait(f"the {role} roll of {old['tag']}",
         lambda: _done(t, role, {(old["tag"], old["algorithm"])}, old["algorithm"]), timeout)
    new = _current(t, role)
    return old["tag"], new["tag"], time.monotonic() - start


def _secure(lab: Lab) -> None:
    """Until both resolvers validate the zone (the first DS is at the parent from the start)."""
    for addr in RESOLVERS.values():
        wait(f"{addr} to validate {ZONE}", lambda a=addr: (
            (r := ask(a, f"www.{ZONE}", "A")) is not None and r.flags & 0x20), 30)


def _delv(lab: Lab) -> str:
    proc = run([need("delv"), f"@{UNBOUND}", "-a", str(lab.tmp / "anchor.conf"), "+root=.",
                f"www.{ZONE}", "A"])
    return proc.stdout + proc.stderr


def _algorithm_roll(lab: Lab, t: Transitions) -> float:
    """P-256 -> Ed25519: the policy file changed and `ctl reload` (SIGHUP's reload) makes the
    running server re-read it, as `rndc reconfig` does with a changed dnssec-policy."""
    old = {(k["tag"], k["algorithm"]) for k in t.poll()["signing"]["keys"] if _live(k)}
    start = time.monotonic()
    (lab.tmp / "fast.toml").write_text(fast_policy("ed25519"))
    assert lab.ctl("reload", ZONE).strip() == f"zone {ZONE}: policy re-read"
    wait("the algorithm roll", lambda: _done(t, "ksk", old, 15) and _done(t, "zsk", old, 15), 60)
    return time.monotonic() - start


def _running(lab: Lab, allow_update: bool, hidden: bool = False) -> tuple[Transitions, Querier]:
    """The lab up and validating, the querier asking both resolvers."""
    lab.start(allow_update=allow_update, hidden=hidden)
    _secure(lab)
    querier = Querier()
    querier.start()
    t = Transitions(lab)  # a roll asked for before the first keys settle is not started
    wait("the first keys to settle", lambda: all(
        k["states"][r] == "omnipresent" for k in t.poll()["signing"]["keys"]
        for r in SIGNS[k["role"]]), 30)
    return t, querier


def test_zsk_ksk_and_algorithm_rolls_under_live_validating_resolvers(lab: Lab) -> None:
    began = time.monotonic()
    t, querier = _running(lab, allow_update=True)
    try:
        zsk = _roll(lab, t, "zsk", 40)
        ksk = _roll(lab, t, "ksk", 60)
        child = lab.servers["child"].text()
        assert "DS set submitted by UPDATE to 127.64.0.2 (zone test.)" in child
        assert f"key {ksk[1]} DS published at every parent server" in child
        assert f"key {ksk[0]} DS withdrawn at every parent server" in child
        algo = _algorithm_roll(lab, t)
    finally:
        querier.stop()
    print(f"\nZSK roll {zsk[0]} -> {zsk[1]} in {zsk[2]:.1f} s; KSK roll {ksk[0]} -> {ksk[1]} in "
          f"{ksk[2]:.1f} s; algorithm roll 13 -> 15 in {algo:.1f} s; {querier.asked} queries, {len(querier.timeouts)} timeouts; whole "
          f"test {time.monotonic() - began:.1f} s")
    assert querier.bad == [], querier.bad[:20]
    for tag, role in ((zsk[0], "zsk"), (ksk[0], "ksk")):  # each went all the way down
        assert ("dnskey", "unretentive") in t.states_of(tag) or \
            ("dnskey", "hidden") in t.states_of(tag), (role, t.states_of(tag))
    assert ("ds", "rumoured") in t.states_of(ksk[1]) and ("ds", "omnipresent") in \
        t.states_of(ksk[1]), t.states_of(ksk[1])
    assert "; fully validated" in _delv(lab), _delv(lab)



def test_ksk_roll_holds_at_the_ds_step_while_the_parent_refuses_the_update(lab: Lab) -> None:
    """test.'s (hidden) primary REFUSEs the DS UPDATE: the KSK roll stops at its DS step
    (`ctl status` says it waits for the new key's DS and that the submission was refused), the
    old KSK and its DS stay, the resolvers keep validating; once the primary takes UPDATEs
    (restarted with allow-update, while NSD keeps serving test.) the roll ends."""
    t, querier = _running(lab, allow_update=False, hidden=True)
    try:
        old = _current(t, "ksk")
        lab.ctl("roll", ZONE, "--key", str(old["tag"]))
        wait("the successor to wait for its DS", lambda: t.poll()["signing"]["waiting"], 30)
        new = next(k for k in t.keys() if k["predecessor"] == old["id"])
        refused = f"answered the UPDATE of {ZONE} DS in test. with REFUSED"
        wait("the refused submission", lambda: any(
            refused in w for w in t.poll().get("parent", {}).get("warnings", [])), 15)
        time.sleep(3)  # the roll does not move on time alone
        zone = t.poll()
        assert f"waiting for DS of key {new['tag']} at the parent" in zone["signing"]["waiting"][0]
        text = lab.ctl("status", ZONE)
        assert refused in text and f"waiting for DS of key {new['tag']}" in text, text
        still = next(k for k in t.keys() if k["tag"] == old["tag"])
        assert {still["states"][r] for r in SIGNS["ksk"]} == {"omnipresent"}, still
        assert next(k for k in t.keys() if k["tag"] == new["tag"])["states"]["ds"] == "hidden"
        held = time.monotonic()
        lab.start_tld(allow_update=True)
        wait("the KSK roll to finish", lambda: _done(t, "ksk", {(old["tag"], old["algorithm"])}, old["algorithm"]),
             40)
    finally:
        querier.stop()
    print(f"\nKSK roll {old['tag']} -> {new['tag']} held at the DS step, finished "
          f"{time.monotonic() - held:.1f} s after the parent took UPDATEs; {querier.asked} "
          f"queries, {len(querier.timeouts)} timeouts {querier.timeouts[:5]}")
    assert querier.bad == [], querier.bad[:20]
    assert f"DS set submitted by UPDATE to {PRIMARY} (zone test.)" in lab.servers["child"].text()
    assert "; fully validated" in _delv(lab), _delv(lab)
