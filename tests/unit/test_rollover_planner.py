"""The planner on a fake clock: initial key set, ZSK pre-publication, KSK double-DS and CSK
rolls. After each run an oracle replays the published history and checks, at every instant
something changes, every DS/DNSKEY/signature combination a resolver may have cached."""

from __future__ import annotations

import pytest

from sigchain.core.rollover import simulate, timings
from sigchain.core.rollover.planner import plan
from sigchain.core.rollover.policy import KeyPolicy, KeySpec, builtin
from sigchain.core.rollover.simulate import (
    T0,
    breakpoints,
    cached_versions,
    drive,
    failures,
    observations,
)
from sigchain.core.rollover.states import Key, State, gone_since, states

D = 86400


def state_model_disagreements(keys: tuple[Key, ...], p: KeyPolicy) -> list[str]:
    """The state model against the replayed history: hidden records are in no cache,
    omnipresent ones in every cache."""
    events = breakpoints(keys)
    w_key = p.zone_propagation_delay + p.dnskey_ttl
    w_ds = p.parent_propagation_delay + p.parent_ds_ttl
    out = []
    for t in sorted({e + d for e in events for d in (-1, 0, 1)}):
        dnskeys = [z.dnskey for z in cached_versions(list(keys), p, t, w_key, events)]
        dses = [z.ds for z in cached_versions(list(keys), p, t, w_ds, events)]
        for k in keys:
            s = states(k, p, t)
            for name, state, versions in (("DNSKEY", s.dnskey, dnskeys), ("DS", s.ds, dses)):
                cached = [k.id in v for v in versions]
                if state == State.HIDDEN and any(cached):
                    out.append(f"{t}: {k.id} {name} hidden but cached")
                if state == State.OMNIPRESENT and not all(cached):
                    out.append(f"{t}: {k.id} {name} omnipresent but missing from a cache")
    return out


def _safe(keys: tuple[Key, ...], p: KeyPolicy) -> None:
    assert [str(f) for f in failures(keys, p)] == []  # key-state rules and the real validator
    assert state_model_disagreements(keys, p) == []


def _by_role(keys: tuple[Key, ...], role: str) -> list[Key]:
    return sorted((k for k in keys if k.role == role), key=lambda k: k.created)


def test_initial_key_set_asks_for_the_ds_only_once_everything_is_cached() -> None:
    p = builtin("ksk-zsk")
    keys, log = drive(p, days=30)
    (ksk,), (zsk,) = _by_role(keys, "ksk"), _by_role(keys, "zsk")
    assert ksk.published == ksk.active == zsk.published == zsk.active == T0
    assert ksk.cds_published == T0 + timings.zrrsig_in(p).seconds  # ZRRSIG omnipresent
    assert ksk.ds_published == ksk.cds_published + 2 * D
    assert [a.kind for _, a in log if a.kind != "await-ds"] == [
        "create", "publish", "activate", "create", "publish", "activate", "publish-cds",
        "ds-seen"]
    _safe(keys, p)


def test_zsk_prepublication_roll_never_breaks_the_chain() -> None:
    p = builtin("ksk-zsk")
    keys, _ = drive(p, days=200)
    zsks = _by_role(keys, "zsk")
    assert len(zsks) == 3  # rolled at 90 and 180 days
    ipub, iret = timings.ipub(p).seconds, timings.iret_zsk(p).seconds
    for old, new in zip(zsks, zsks[1:], strict=False):
        assert new.predecessor == old.id
        assert old.active is not None and new.published is not None and new.active is not None
        assert new.active == old.retired == old.active + 90 * D  # RFC 7583: Tact(N+1)=Tret(N)
        assert new.active - new.published >= ipub  # Tpub(N+1) <= Tact(N) + Lzsk - Ipub
        assert old.removed is not None and old.removed - old.retired >= iret  # Trem >= Tret+Iret
    assert len(_by_role(keys, "ksk")) == 1
    _safe(keys, p)


def _ksk_policy(lifetime: int) -> KeyPolicy:
    return KeyPolicy("t", keys=(KeySpec("ksk", 13, lifetime), KeySpec("zsk", 13, None)))


@pytest.mark.parametrize("lag", [0, 60, 10 * D])  # instant, fast parent, slow registry
def test_ksk_double_ds_roll_waits_for_the_observed_ds(lag: int) -> None:
    p = _ksk_policy(60 * D)
    keys, log = drive(p, days=150, lag=lag)
    ksks = _by_role(keys, "ksk")
    assert len(ksks) == 3
    ipubp = timings.ipub_parent(p).seconds
    for old, new in zip(ksks, ksks[1:], strict=False):
        assert new.cds_published is not None and new.ds_published is not None
        assert new.ds_published == new.cds_published + lag
        # double-DS: the DNSKEY swap happens only once the new DS is in every cache
        assert new.published == new.active == old.removed == old.retired
        assert new.published >= new.ds_published + ipubp
        assert old.cds_withdrawn is not None
        assert old.cds_withdrawn >= old.removed + timings.iret_child(p).seconds
    assert any(a.kind == "await-ds" for _, a in log)
    for k in ksks:  # asked for once each, as each is made (not again as the roll goes on)
        assert [a.kind for _, a in log if a.key == k.id].count("publish-cds") == 1
    _safe(keys, p)


def test_a_successor_ksk_taken_over_without_its_cds_gets_one_and_the_roll_completes() -> None:
    """A BIND KSK roll taken over (`keys import-bind`) before the successor's PublishCDS
    time: the successor has no CDS yet. The plan asks for its DS (as for a successor it
    made itself) and the roll goes on; before, it waited for that DS for ever."""
    p = _ksk_policy(60 * D)
    keys, _ = drive(p, days=20)  # the first KSK's DS is seen
    (first,) = _by_role(keys, "ksk")
    now = T0 + 61 * D
    taken = Key("bind-successor", "ksk", 13, 60 * D, now - D, published=now - D,
                predecessor=first.id)
    first = first.replace(lifetime=60 * D)
    keys = tuple(first if k.id == first.id else k for k in keys) + (taken,)
    assert "publish-cds" in {(a.kind) for a in plan(keys, p, (), now).actions if a.key == taken.id}
    keys, _ = drive(p, days=60, lag=3600, keys=keys, start=now)
    new = next(k for k in keys if k.id == taken.id)
    assert new.cds_published is not None and new.ds_published is not None and new.active is not None
    _safe(keys, p)


def test_ksk_roll_never_swaps_without_the_ds_observation() -> None:
    p = _ksk_policy(30 * D)
    keys, _ = drive(p, days=20)  # the first DS is published and seen
    (first,) = _by_role(keys, "ksk")
    assert first.ds_published is not None
    keys, _ = drive(p, days=100, lag=10**9, keys=keys, start=T0 + 20 * D)  # parent goes quiet
    (old, new) = _by_role(keys, "ksk")
    assert new.cds_published is not None and new.published is None
    assert old.retired is None and old.removed is None  # kept past its lifetime
    now = T0 + 120 * D
    result = plan(keys, p, observations(keys, 10**9, now), now)
    assert [(a.kind, a.key) for a in result.actions] == [("await-ds", new.id)]
    _safe(keys, p)


def test_without_the_ds_gate_a_parent_slower_than_publish_safety_breaks_the_swap() -> None:
    # The simulator's model of an engine that trusts elapsed time: told the DS is in the
    # moment it asks, it swaps IpubP later; the caches are judged with the parent's real times.
    p = _ksk_policy(60 * D)
    assert simulate.run(p, 100, p.publish_safety, p, gated=False).failures == ()
    late = simulate.run(p, 100, p.publish_safety + 1, p, gated=False)
    old, new = _by_role(late.keys, "ksk")[:2]
    assert new.cds_published is not None
    assert new.ds_published == new.cds_published + p.publish_safety + 1  # the parent's time
    assert new.published == old.removed == new.cds_published + timings.ipub_parent(p).seconds
    assert late.failures and late.failures[0].at == new.published  # at the DNSKEY swap
    assert late.failures[0].cause == "no DS matches a key that signs the DNSKEY RRset"
    assert simulate.run(p, 100, 30 * D, p).failures == ()  # gated: the slow parent is awaited


@pytest.mark.parametrize("old_first", [True, False])
def test_a_successor_already_signing_does_not_stall_the_roll(old_first: bool) -> None:
    """BIND 9.18 makes a ZSK successor active as it creates it (its ZRRSIG rumoured beside the
    old key's), so `keys import-bind` can bring two signing ZSKs of one line: the old one is
    still the line's current key and its roll goes on, whatever order the store lists them.
    Before, the key listed last was taken as current: with the old key first, it was never
    retired nor removed."""
    p = KeyPolicy("t", keys=(KeySpec("ksk", 13, None), KeySpec("zsk", 13, 30 * D)))
    ipub = timings.ipub(p).seconds
    start = T0 + 30 * D - ipub  # BIND's rollover: successor published and signing
    ksk = Key("k", "ksk", 13, None, T0, published=T0, active=T0, cds_published=T0 + 20 * D,
              ds_published=T0 + 20 * D)
    old = Key("a", "zsk", 13, 30 * D, T0, published=T0, active=T0)
    new = Key("b", "zsk", 13, 30 * D, start, published=start, active=start, predecessor="a")
    keys = (ksk, old, new) if old_first else (ksk, new, old)
    assert plan(keys, p, (), start + ipub - 1).actions == ()
    kinds = [(a.kind, a.key) for a in plan(keys, p, (), start + ipub).actions]
    assert ("retire", "a") in kinds and not any(k == "create" for k, _ in kinds)
    keys, _ = drive(p, days=20, keys=keys, start=start)
    (old,) = (k for k in keys if k.id == "a")
    assert old.retired == start + ipub and old.removed is not None
    assert len(_by_role(keys, "zsk")) == 2
    _safe(keys, p)


def test_no_roll_before_the_current_ds_is_everywhere() -> None:
    # Lifetimes shorter than the rolls (policy check calls this unsafe) still never break
    # the chain: a KSK is not rolled before its own DS is in every cache.
    p = KeyPolicy("t", keys=(KeySpec("ksk", 13, 3 * D), KeySpec("zsk", 13, 20 * D)))
    keys, _ = drive(p, days=120)
    ksks = _by_role(keys, "ksk")
    assert len(ksks) > 3
    for old, new in zip(ksks, ksks[1:], strict=False):
        assert old.ds_published is not None and new.cds_published is not None
        assert new.cds_published >= old.ds_published + timings.ipub_parent(p).seconds
    _safe(keys, p)


def test_csk_roll() -> None:
    p = KeyPolicy("t", keys=(KeySpec("csk", 13, 30 * D),))
    keys, _ = drive(p, days=100, lag=60)
    csks = _by_role(keys, "csk")
    assert len(csks) == 4
    for old, new in zip(csks, csks[1:], strict=False):
        assert new.published is not None and new.active is not None
        assert new.ds_published is not None and old.retired == new.active
        assert new.active - new.published >= timings.ipub(p).seconds
        assert new.active >= new.ds_published + timings.ipub_parent(p).seconds
    first = csks[0]
    assert first.ds_withdrawn is not None
    assert states(first, p, T0 + 100 * D).dnskey == State.HIDDEN
    _safe(keys, p)


def test_builtins_over_three_years() -> None:
    for name in ("default", "ksk-zsk"):
        p = builtin(name)
        keys, _ = drive(p, days=3 * 365)
        _safe(keys, p)
    assert len(_by_role(keys, "ksk")) == 3 and len(_by_role(keys, "zsk")) >= 12


def test_the_oracle_catches_an_unsafe_history() -> None:
    p = builtin("ksk-zsk")
    keys, _ = drive(p, days=30)
    zsk = _by_role(keys, "zsk")[0]
    now = T0 + 20 * D
    hasty = Key("zsk-new", "zsk", 13, None, now, published=now, active=now, predecessor=zsk.id)
    unsafe = tuple(k.replace(retired=now, removed=now) if k.id == zsk.id else k
                   for k in keys) + (hasty,)
    causes = {f.cause for f in failures(unsafe, p)}
    assert "the data's signing keys are not in the DNSKEY RRset" in causes
    assert "the validator says bogus" in causes
    no_wait = tuple(k.replace(ds_withdrawn=now) if k.role == "ksk" else k for k in keys)
    no_wait += (Key("ksk-new", "ksk", 13, None, now, published=now, active=now,
                    ds_published=now),)
    no_wait = tuple(k.replace(removed=now, retired=now) if k.id == _by_role(keys, "ksk")[0].id
                    else k for k in no_wait)
    causes = {f.cause for f in failures(no_wait, p)}
    assert "no DS matches a key that signs the DNSKEY RRset" in causes
    assert "the validator says bogus" in causes


@pytest.mark.parametrize(("before", "after"), [
    (builtin("ksk-zsk"), KeyPolicy("ed", keys=(KeySpec("ksk", 15, None),
                                               KeySpec("zsk", 15, 90 * D)))),
    (builtin("default"), builtin("ksk-zsk")),  # a migration between policies: CSK → KSK + ZSK
    (builtin("default"), KeyPolicy("p384", keys=(KeySpec("csk", 14, None),))),
])
def test_algorithm_roll_follows_rfc6781_order(before: KeyPolicy, after: KeyPolicy) -> None:
    keys, _ = drive(before, days=40, lag=3600)
    old_ids = {k.id for k in keys}
    keys, _ = drive(after, days=80, lag=3600, keys=keys, start=T0 + 40 * D)
    old = [k for k in keys if k.id in old_ids]
    new = [k for k in keys if k.id not in old_ids]
    assert {(k.role, k.algorithm) for k in new} == {(s.role, s.algorithm) for s in after.keys}
    swap = max(k.cds_published or 0 for k in new)
    assert len({k.published for k in new}) == 1  # the new algorithm's DNSKEYs go in together
    for k in new:  # RFC 6781 §4.1.4: new RRSIGs, then new DNSKEY, then the DS swap
        assert k.active is not None and k.published is not None
        for o in new:  # every new signature in every cache first, the data's and the keys'
            sigs_in = timings.zrrsig_in(after) if k.signs_zone else timings.ipub(after)
            assert o.published - k.active >= sigs_in.seconds  # type: ignore[operator]
        assert swap - k.published >= timings.ipub(after).seconds
    for k in old:  # then the old DNSKEY, then the old RRSIGs
        assert k.removed is not None and k.retired is not None
        if k.signs_dnskey:
            assert k.cds_withdrawn == swap and k.ds_withdrawn is not None
            assert k.removed >= k.ds_withdrawn + timings.iret_parent(after).seconds
        assert k.retired - k.removed >= timings.iret_child(after).seconds
    _safe(keys, after)


def test_an_algorithm_rolls_new_keys_sign_before_their_dnskeys_are_out() -> None:
    """What the signer makes of the plan (the K-file metadata `timing_of` writes): from its
    activation a new algorithm's key signs (the DNSKEY RRset too), its DNSKEY out of the zone
    and no CDS for it, until its signatures are in every cache. Before, a key activated with
    no Publish time was published at activation, as BIND reads one, so the new DNSKEY came
    with its signatures and the roll's first wait protected nothing (RFC 6781 §4.1.4)."""
    import dns.dnssec
    import dns.name
    import dns.rdata
    from dns.rdatatype import RdataType

    from sigchain.core.dnssec import algorithms
    from sigchain.core.dnssec.rrsig import SigWindow
    from sigchain.core.sign.apex import rdataset, set_apex
    from sigchain.core.sign.keyset import plan_keys
    from sigchain.core.sign.signer import SignOptions
    from sigchain.model.keys import KeyPair
    from sigchain.services.keymanager import publication_ahead, timing_of

    before = builtin("ksk-zsk")
    after = KeyPolicy("ed", keys=(KeySpec("ksk", 15, None), KeySpec("zsk", 15, 90 * D)))
    keys, _ = drive(before, days=40, lag=3600)
    old_ids = {k.id for k in keys}
    keys, _ = drive(after, days=80, lag=3600, keys=keys, start=T0 + 40 * D)
    origin = dns.name.from_text("example.")
    new = [k for k in keys if k.id not in old_ids]
    # the new keys as the engine left them when it activated them, not yet published
    signing = [k.replace(published=None, cds_published=None) for k in new]
    at = max(k.active for k in signing) + 1  # type: ignore[type-var]
    until = publication_ahead(signing, after)
    assert until is not None
    old = [k for k in keys if k.id in old_ids and k.published is not None and k.published < at
           and (k.removed is None or k.removed > until)]  # type: ignore[operator]
    assert {k.role for k in old} == {"ksk", "zsk"} and {k.algorithm for k in old} == {13}

    def pair(k: Key) -> KeyPair:
        private = algorithms.generate(algorithms.get(k.algorithm))
        dnskey = dns.dnssec.make_dnskey(private.public_key(), k.algorithm,
                                        flags=256 if k.role == "zsk" else 257)
        return KeyPair(origin, k.algorithm, dnskey, private, timing_of(k, until), 3600)

    pairs = [pair(k) for k in (*old, *signing)]
    for k, kp in zip(signing, pairs[len(old):], strict=True):
        assert kp.timing.publish is not None and kp.timing.activate == k.active
        real = next(n for n in new if n.id == k.id)
        assert real.published is not None and kp.timing.publish == real.published
    assert at < until
    for t in (at, until - 1, until):
        plan = plan_keys(pairs, origin, t, False)
        signers = {id(k) for ks in (*plan.ksk_signers.values(), *plan.zsk_signers.values())
                   for k in ks}
        out = {id(k) for k in plan.published}
        assert all(id(kp) in signers for kp in pairs[len(old):])
        assert all((id(kp) in out) == (t >= until) for kp in pairs[len(old):])
        apex = {RdataType.SOA: rdataset(RdataType.SOA, 3600, [
            dns.rdata.from_text("IN", "SOA", ". . 1 2 3 4 5")])}
        set_apex(apex, origin, pairs, plan, SignOptions(SigWindow(t - 3600, 86400, 0)),
                 t, [])
        assert {rd.algorithm for rd in apex[RdataType.DNSKEY]} == ({13, 15} if t >= until else {13})  # type: ignore[attr-defined]
        # the DS swap waits for the new DNSKEYs in every cache (as the inline signer: CDS by
        # the SyncPublish windows only)
        assert {rd.algorithm for rd in apex.get(RdataType.CDS, ())} == {13}  # type: ignore[attr-defined]


def test_purge_keys_deletes_a_key_only_after_it_left_every_cache() -> None:
    p = builtin("ksk-zsk")  # purge-keys 90d
    keys, _ = drive(p, days=400)
    purged = [k for k in keys if k.purged is not None]
    assert purged and all(k.role == "zsk" for k in purged)  # the first KSK is not gone yet
    for k in purged:
        gone = gone_since(k, p)
        assert gone is not None and k.purged == gone + 90 * D
        assert states(k, p, gone) == states(k, p, k.purged)  # all hidden
        assert set(states(k, p, gone).as_dict().values()) == {"hidden"}
    never = KeyPolicy("keep", keys=p.keys, purge_keys=0)
    assert not any(k.purged for k in drive(never, days=400)[0])


def test_a_repeated_key_entry_is_one_line_of_succession() -> None:
    p = KeyPolicy("d", keys=(KeySpec("ksk", 13, None), KeySpec("zsk", 13, 30 * D),
                             KeySpec("zsk", 13, 30 * D)))
    assert [x.code for x in timings.check(p)] == ["duplicate-key"]
    keys, log = drive(p, days=100)
    assert len(_by_role(keys, "zsk")) == 4  # 0, 30, 60, 90 days
    assert len([a for _, a in log if a.kind == "activate"]) == len(keys)  # none twice
    _safe(keys, p)


def test_a_roll_due_when_the_first_ds_is_asked_for_starts_in_the_same_run() -> None:
    """The parent had the KSK's DS before the child asked (a DS placed by hand, as a lab or a
    registrar transfer does) and the roll is due (`ctl roll` right after the start): the run
    that asks for the DS also starts the roll. Before, it asked only and planned no wake-up,
    so the roll stayed unstarted until something else woke the key engine."""
    p = _ksk_policy(30 * D)
    ksk = Key("k", "ksk", 13, 30 * D, T0, published=T0, active=T0, ds_published=T0)
    zsk = Key("z", "zsk", 13, None, T0, published=T0, active=T0)
    now = T0 + 30 * D
    result = plan((ksk, zsk), p, (), now)
    kinds = [(a.kind, a.key if a.key in ("k", "z") else "new") for a in result.actions]
    assert kinds[:3] == [("publish-cds", "k"), ("create", "new"), ("publish-cds", "new")], kinds


def test_cds_follows_the_sync_window_through_a_double_ds_roll() -> None:
    """What the signer publishes as CDS (core/sign/apex.py) from the planner's key times:
    the successor's from the roll's start, before its DNSKEY is out, and the predecessor's
    after its DNSKEY left, until IretC — RFC 7583 §3.3.2: a CDS-following parent keeps both
    DS while caches may still hold the old key set."""
    import dns.dnssec
    import dns.name
    import dns.rdata
    from dns.rdatatype import RdataType

    from sigchain.core.dnssec import algorithms
    from sigchain.core.dnssec.rrsig import SigWindow
    from sigchain.core.sign.apex import rdataset, set_apex
    from sigchain.core.sign.keyset import plan_keys
    from sigchain.core.sign.signer import SignOptions
    from sigchain.model.keys import KeyPair
    from sigchain.services.keymanager import timing_of

    p = _ksk_policy(60 * D)
    keys, _ = drive(p, days=90, lag=D)
    old, new = _by_role(keys, "ksk")[:2]
    zsk = _by_role(keys, "zsk")[0]
    assert new.cds_published is not None and old.removed is not None and old.cds_withdrawn is not None
    assert new.published is not None and new.cds_published < new.published
    origin = dns.name.from_text("example.")

    def pair(k: Key) -> KeyPair:
        private = algorithms.generate(algorithms.get(13))
        dnskey = dns.dnssec.make_dnskey(private.public_key(), 13, flags=256 if k.role == "zsk" else 257)
        return KeyPair(origin, 13, dnskey, private, timing_of(k), 3600)

    pairs = {k.id: pair(k) for k in (old, new, zsk)}
    tags = {pairs[k].key_tag: k for k in pairs}

    def cds(t: int) -> set[str]:
        kps = list(pairs.values())
        apex = {RdataType.SOA: rdataset(RdataType.SOA, 3600, [dns.rdata.from_text("IN", "SOA", ". . 1 2 3 4 5")])}
        opts = SignOptions(SigWindow(t - 3600, 86400, 0))
        set_apex(apex, origin, kps, plan_keys(kps, origin, t, False), opts, t, [])
        return {tags[rd.key_tag] for rd in apex.get(RdataType.CDS, ())}  # type: ignore[attr-defined]

    assert cds(new.cds_published + 1) == {old.id, new.id}  # its DNSKEY not out yet
    assert cds(old.removed + 1) == {old.id, new.id}  # DNSKEY swapped, the old DS still wanted
    assert cds(old.cds_withdrawn - 1) == {old.id, new.id}
    assert cds(old.cds_withdrawn + 1) == {new.id}
