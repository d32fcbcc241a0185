"""The offline key manager (`sigchain keys`): load a zone's key state from its key directory,
adopt K-files found there, run the rollover planner for `now`, create keys, record the run in
one transaction and write BIND timing metadata into the K-files so signers select the right
keys; plus the status report and the operator's observations."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import dns.name

from sigchain.clock import SYSTEM, Clock
from sigchain.core.dnssec import algorithms, keyfile
from sigchain.core.rollover.planner import Action, Observation, Plan, apply, plan
from sigchain.core.rollover.policy import KeyPolicy, KeySpec, carried, in_effect
from sigchain.core.rollover.states import Key, signatures_everywhere
from sigchain.edge import keystore, pkcs11store
from sigchain.errors import InputError, OperationalError, UnsafeRefused
from sigchain.model.keys import KeyPair, KeyRole, KeyTiming
from sigchain.services import keystate
from sigchain.services.keystate import StoredKey


def create_key(spec: KeySpec, zone: dns.name.Name, directory: str, now: int,
               pending: bool = False, ttl: int | None = None) -> KeyPair:
    """Make one key of `spec` for `zone` in its store (the one place keys are created): BIND
    K-files in `directory`, with only a Created time until the plan schedules it (`pending`:
    under keystore.PENDING names until the run's state holds the key) and the DNSKEY TTL
    `ttl` (the policy's dnskey-ttl, which signers give the DNSKEY RRset, as BIND's do)."""
    store = None
    if spec.store not in (None, "file"):
        if not str(spec.store).startswith("pkcs11:"):
            raise InputError(f"key store {spec.store!r} is not supported (\"file\" or a "
                             "pkcs11: URI)")
        store = pkcs11store.key_uri(str(spec.store), f"{zone.to_text(omit_final_dot=True)}-"
                                    f"{spec.role}-{spec.algorithm}-{now}")
    alg = algorithms.get(spec.algorithm)
    kp = keystore.new_pair(zone, alg, KeyRole(spec.role), directory, KeyTiming(created=now),
                           ttl=ttl, store=store)
    base = keystore.write_new_pair(directory, kp, alg, pending)
    return replace(kp, source=os.path.join(directory, base))


def timing_of(k: Key, ahead: int | None = None) -> KeyTiming:
    """A key's timestamps as BIND timing metadata (what `dnssec-signzone -S` reads). A key
    signing before its DNSKEY is published (an algorithm roll's new key, RFC 6781 §4.1.4)
    gets the Publish time `ahead` the plan has for it (`publication_ahead`): BIND reads an
    Activate time with no Publish time as published at activation."""
    publish = k.published if k.published is not None or k.active is None else ahead
    return KeyTiming(created=k.created, publish=publish, activate=k.active,
                     revoke=k.revoked, inactive=k.retired, delete=k.removed,
                     sync_publish=k.cds_published, sync_delete=k.cds_withdrawn)


def timed_policy(state: keystate.ZoneState, policy: KeyPolicy, now: int) -> KeyPolicy:
    """`policy` as the plan times rolls at `now`: with each cache value a policy change
    lowered still assumed while copies made under the old one may be cached."""
    return in_effect(policy, carried(state.carried, None, policy, now))


def publication_ahead(keys: Sequence[Key], policy: KeyPolicy) -> int | None:
    """When the keys signing ahead of their DNSKEYs (an algorithm roll's) are to be
    published: together, once every signature they make is in every cache (as the plan's
    `algorithm_roll` does)."""
    times = [signatures_everywhere(k, policy) for k in keys
             if k.active is not None and k.published is None]
    return max((t for t in times if t is not None), default=None)


def _role_of(kp: KeyPair, policy: KeyPolicy) -> str:
    if not kp.is_sep:
        return "zsk"
    roles = {s.role for s in policy.keys if s.algorithm == kp.algorithm}
    return "csk" if "csk" in roles and "ksk" not in roles else "ksk"


def _spec_lifetime(policy: KeyPolicy, role: str, algorithm: int) -> int | None:
    return next((s.lifetime for s in policy.keys if (s.role, s.algorithm) == (role, algorithm)),
                None)


def adopt(kp: KeyPair, policy: KeyPolicy, taken: set[str], now: int) -> StoredKey:
    """A K-file the state does not know yet (made by keygen or another tool), with the times
    its metadata gives (no metadata: published and active since `now`)."""
    t = kp.timing
    role = _role_of(kp, policy)
    key_id = str(kp.key_tag) if str(kp.key_tag) not in taken else f"{kp.key_tag}-{kp.algorithm}"
    plain = t == KeyTiming()
    key = Key(key_id, role, kp.algorithm, _spec_lifetime(policy, role, kp.algorithm),
              t.created if t.created is not None else now,
              published=now if plain else (t.publish if t.publish is not None else t.activate),
              active=now if plain else t.activate, retired=t.inactive, removed=t.delete,
              cds_published=t.sync_publish, cds_withdrawn=t.sync_delete, revoked=t.revoke)
    return StoredKey(key, kp.key_tag, os.path.basename(kp.source))


@dataclass(frozen=True)
class RunResult:
    zone: str
    plan: Plan
    keys: tuple[StoredKey, ...]
    adopted: tuple[str, ...]  # key ids taken over from K-files
    created: tuple[str, ...]  # key ids made in this run
    written: tuple[str, ...]  # K-file bases whose metadata was rewritten


def _record_line(kfile: str) -> int | None:
    """The line of a `.key` file's DNSKEY record (the first that is not a comment)."""
    try:
        with open(kfile, encoding="utf-8", errors="replace") as f:
            return next((n for n, line in enumerate(f, 1)
                         if line.split(";", 1)[0].strip()), None)
    except OSError:
        return None


def _checked_pair(path: str, zone: dns.name.Name) -> KeyPair:
    """A K-file pair of the zone, every problem found before anything is written."""
    kp = keystore.load_pair(path)
    if kp.zone != zone:
        kfile = keystore.key_base(path) + ".key"
        raise InputError(f"key file is named for {zone} but its DNSKEY belongs to {kp.zone}",
                         file=kfile, line=_record_line(kfile))
    return kp


def unusable(policy: KeyPolicy) -> list[tuple[str, str]]:
    """What makes a policy one `keys run` cannot follow, as (key path, problem): no key to
    sign the DNSKEY RRset or the zone, an algorithm with only half its roles (as BIND refuses
    such a dnssec-policy), a key store URI that does not parse. Empty: it is usable."""
    from sigchain.core.rollover.timings import check

    out = []
    if not policy.insecure:
        out += [("keys", f"{problem.message} (`sigchain policy check` lists every problem)")
                for problem in check(policy)
                if problem.code in ("no-key-for-role", "algorithm-half-covered")]
    for i, spec in enumerate(policy.keys):
        if spec.store is not None and str(spec.store).startswith("pkcs11:"):
            try:
                pkcs11store.key_uri(str(spec.store), "check")
            except InputError as exc:
                out.append((f"keys[{i}].store", exc.message))
    return out


@dataclass(frozen=True)
class _Loaded:
    state: keystate.ZoneState
    stored: list[StoredKey]
    adopted: list[str]
    pairs: dict[str, KeyPair]  # each K-file as read, by base name


def _load(zone: dns.name.Name, directory: str, policy: KeyPolicy, now: int) -> _Loaded:
    """The stored state plus every K-file of the zone it does not know (adopted); every K-file
    is read and checked here, before anything is written."""
    state = keystate.load(directory, zone.to_text())
    known = {sk.base.lower() for sk in state.keys}
    pairs: dict[str, KeyPair] = {}
    for sk in state.keys:
        path = os.path.join(directory, sk.base)
        if sk.key.purged is None and not os.path.exists(path + ".key"):
            raise InputError(f"key {sk.key.id} of the key state has no key file",
                             file=path + ".key")
        if sk.key.purged is None:
            pairs[sk.base] = _checked_pair(path, zone)
    stored = list(state.keys)
    adopted = []
    if os.path.isdir(directory):
        for path in keystore.zone_key_paths(directory, zone):
            base = keystore.key_base(path)
            if os.path.basename(base).lower() in known:
                continue
            kp = _checked_pair(path, zone)
            sk = adopt(kp, policy, {s.key.id for s in stored}, now)
            pairs[sk.base] = kp
            stored.append(sk)
            adopted.append(sk.key.id)
    return _Loaded(state, stored, adopted, pairs)


def _execute(zone: dns.name.Name, directory: str, policy: KeyPolicy, stored: list[StoredKey],
             actions: tuple[Action, ...], now: int) -> tuple[tuple[Action, ...], list[StoredKey],
                                                              list[str]]:
    """Create the plan's new keys (renaming the planner's ids to their tags); purged keys'
    files are deleted by `run` once the state says so."""
    rename: dict[str, str] = {}
    info: dict[str, tuple[int, str]] = {}
    specs = {(s.role, s.algorithm): s for s in reversed(policy.keys)}
    try:
        for a in actions:
            if a.kind == "create":
                spec = specs.get((a.role, a.algorithm), KeySpec(a.role, a.algorithm,
                                                                a.lifetime))
                kp = create_key(spec, zone, directory, now, pending=True,
                                ttl=policy.dnskey_ttl)
                rename[a.key] = str(kp.key_tag)
                info[rename[a.key]] = kp.key_tag, os.path.basename(kp.source)
    except BaseException:
        for _, base in info.values():  # nothing half-done: no key of a run that failed
            keystore.drop_pending(os.path.join(directory, base))
        raise
    renamed = tuple(replace(a, key=rename.get(a.key, a.key),
                            predecessor=rename.get(a.predecessor or "", a.predecessor))
                    for a in actions)
    bases = {sk.key.id: (sk.tag, sk.base) for sk in stored} | info
    keys = apply([sk.key for sk in stored], renamed)
    return renamed, [StoredKey(k, *bases[k.id]) for k in keys], list(info)


def _write_metadata(directory: str, keys: list[StoredKey], policy: KeyPolicy,
                    loaded: _Loaded | None = None, ttl: int | None = None) -> list[str]:
    """Rewrite the timing metadata of every K-file whose metadata differs from the state (as
    `timing_of` with the `policy` in effect), and with `ttl` (the policy's dnskey-ttl) its
    DNSKEY TTL where that differs (`loaded`: the files as `_load` read them, so those are
    not read again)."""
    written = []
    ahead = publication_ahead([sk.key for sk in keys], policy)
    for sk in keys:
        if sk.key.purged is not None:
            continue
        base = os.path.join(directory, sk.base)
        kp = loaded.pairs.get(sk.base) if loaded is not None else None
        if kp is None:
            kp = keystore.load_pair(base)
        new_ttl = ttl if ttl is not None and kp.ttl != ttl else None
        timing = timing_of(sk.key, ahead)
        if kp.timing != timing or new_ttl is not None:
            keystore.write_timing(base, timing, new_ttl)
            written.append(sk.base)
    return written


def run(zone: dns.name.Name, policy: KeyPolicy, directory: str, now: int, *,
        dry_run: bool = False, clock: Clock = SYSTEM) -> RunResult:
    """`keys run`: plan for `now` and (unless `dry_run`, which writes nothing) carry it out."""
    for path, problem in unusable(policy)[:1]:
        raise InputError(f"policy {policy.name}: {path}: {problem}")
    _check_directory(directory, must_exist=False)
    if dry_run:
        ld = _load(zone, directory, policy, now)
        kept = carried(ld.state.carried, ld.state.policy, policy, now)
        p = plan([sk.key for sk in ld.stored], in_effect(policy, kept), ld.state.observations,
                 now, previous=ld.state.policy)
        return RunResult(zone.to_text(), p, tuple(ld.stored), tuple(ld.adopted), (), ())
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise OperationalError(f"cannot create key directory: {exc.strerror}",
                               file=directory) from None
    with keystate.locked(directory, clock):
        _settle_pending(zone, directory)
        ld = _load(zone, directory, policy, now)
        # a lowered TTL still holds for the copies cached under the old one (RFC 7583's TTLs
        # are the cached ones'): every rise and fall is timed with the larger until they expire
        kept = carried(ld.state.carried, ld.state.policy, policy, now)
        timed = in_effect(policy, kept)
        p = plan([sk.key for sk in ld.stored], timed, ld.state.observations, now,
                 previous=ld.state.policy)
        actions, keys, created = _execute(zone, directory, policy, ld.stored, p.actions, now)
        bases = {sk.key.id: sk.base for sk in keys}
        try:
            keystate.save(directory, zone.to_text(), tuple(keys), actions, policy, kept)
        except BaseException:
            for key_id in created:  # nothing half-done: keys the state does not hold are not kept
                keystore.drop_pending(os.path.join(directory, bases[key_id]))
            raise
        for key_id in created:  # K-files once the state holds the key: never one it lacks
            keystore.install_pending(os.path.join(directory, bases[key_id]))
        for a in actions:  # once the state says purged: a run killed before keeps the files
            if a.kind == "purge":
                keystore.delete_pair(os.path.join(directory, bases[a.key]))
        written = _write_metadata(directory, keys, timed, ld, policy.dnskey_ttl)
    return RunResult(zone.to_text(), replace(p, actions=actions), tuple(keys),
                     tuple(ld.adopted), tuple(created), tuple(written))


def _settle_pending(zone: dns.name.Name, directory: str) -> None:
    """New keys' files a run killed (or failed) between writing them and installing them
    left: installed when its state was saved (it holds the key), removed when it was not."""
    found = keystore.pending_bases(directory, zone)
    if not found:
        return
    held = {sk.base for sk in keystate.load(directory, zone.to_text()).keys
            if sk.key.purged is None}
    for base in found:
        if os.path.basename(base) in held:
            keystore.install_pending(base)
        else:
            keystore.drop_pending(base)


def _check_directory(directory: str, must_exist: bool) -> None:
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise InputError("not a directory", file=directory)
    if must_exist and not os.path.isdir(directory):
        raise InputError("key directory does not exist", file=directory)
    if os.path.isdir(directory):
        keystore.check_key_directory(directory)


def stored_zone(zone: dns.name.Name, directory: str) -> tuple[keystate.ZoneState, KeyPolicy]:
    """A zone's state for the commands that do not take a policy: it must have been run."""
    _check_directory(directory, must_exist=True)
    state = keystate.load(directory, zone.to_text())
    if state.policy is None:
        raise InputError(f"no key state for {zone} here: run `sigchain keys run {zone} "
                         "--policy ... --keys DIR` first", file=directory)
    return state, state.policy


def ds_keys(directory: str, state: keystate.ZoneState) -> list[tuple[StoredKey, object]]:
    """The zone's keys whose DS the parent may hold (KSK/CSK still in the key directory), each
    with its DNSKEY from its .key file."""
    return [(sk, keystore.load_public(os.path.join(directory, sk.base))[2])
            for sk in state.keys if sk.key.signs_dnskey and sk.key.purged is None]


def find_key(state: keystate.ZoneState, tag: str) -> StoredKey:
    found = [sk for sk in state.keys if sk.key.id == tag or str(sk.tag) == tag]
    if len(found) != 1:
        known = ", ".join(sk.key.id for sk in state.keys) or "none"
        what = "no" if not found else "more than one"
        raise InputError(f"{what} key {tag} in the key state (keys: {known})")
    return found[0]


def observe(zone: dns.name.Name, directory: str, tag: str, kind: str, now: int,
            clock: Clock = SYSTEM) -> StoredKey:
    """`keys ds-seen|ds-gone`: the operator's word that the parent publishes (or no longer
    publishes) the key's DS at every server since `now`; the next run acts on it."""
    with keystate.locked(directory, clock):
        state, _ = stored_zone(zone, directory)
        sk = find_key(state, tag)
        keystate.observe(directory, zone.to_text(), Observation(sk.key.id, kind, now))
    return sk


@dataclass(frozen=True)
class RollStart:
    stored: StoredKey
    earliest: int | None  # emergency: the earliest instant it can safely stop signing
    why: str
    deadline: int | None  # forced: out of use by then, safe or not


def start_roll(zone: dns.name.Name, directory: str, tag: str, now: int, *,
               emergency: bool = False, within: int | None = None, force: bool = False,
               clock: Clock = SYSTEM) -> RollStart:
    """`keys roll`: make the key's lifetime end so its successor starts at `now` (as `rndc
    dnssec -rollover`); the next run creates the successor. An emergency roll (a compromised
    key) retires it as soon as the TTLs allow; one that must be done `within` less than that
    is refused as unsafe unless `force`, which then takes the key out of use by then."""
    from sigchain.core.dnssec.timefmt import format_utc
    from sigchain.core.rollover.durations import render
    from sigchain.core.rollover.planner import emergency_earliest, lead_time

    with keystate.locked(directory, clock):
        state, policy = stored_zone(zone, directory)
        policy = timed_policy(state, policy, now)
        sk = find_key(state, tag)
        k = sk.key
        if k.active is None or k.retired is not None:
            raise InputError(f"key {k.id} is not signing (nothing to roll)")
        if k.revoked is not None:
            raise InputError(f"key {k.id} is revoked: it leaves the zone after the RFC 5011 "
                             "hold-down (nothing to roll)")
        if not emergency:
            if any(o.key.predecessor == k.id for o in state.keys):
                raise InputError(f"key {k.id} is already being rolled")
            lifetime = max(now + lead_time(policy, k.role) - k.active, 1)
            keystate.set_roll(directory, zone.to_text(), k.id, lifetime)
            return RollStart(sk, None, "", None)
        earliest, why = emergency_earliest(k, policy, now)
        deadline = None
        if within is not None and earliest > now + within:
            if not force:
                raise UnsafeRefused(
                    f"key {k.id} cannot stop signing before {format_utc(earliest)} without "
                    f"breaking validation ({why}); --within {render(within)} is shorter: "
                    "resolvers still holding the old records would fail to validate the zone "
                    "(--force takes it out of use by then anyway)")
            deadline = now + within
        keystate.set_roll(directory, zone.to_text(), k.id, max(now - k.active, 1), deadline)
    return RollStart(sk, earliest, why, deadline)


def revoke(zone: dns.name.Name, directory: str, tag: str, now: int,
           clock: Clock = SYSTEM) -> StoredKey:
    """`keys revoke`: revoke a trust point's KSK/CSK at `now` (RFC 5011, as `dnssec-settime -R`):
    stored in the key state and written as `Revoke:` into its K-files, so our signer and
    `dnssec-signzone -S` publish it with the REVOKE bit, self-signed, until the plan removes
    it after the hold-down. Refused (unsafe) while no other KSK is in every cache."""
    from sigchain.core.rollover.revoke import refusal

    with keystate.locked(directory, clock):
        state, policy = stored_zone(zone, directory)
        policy = timed_policy(state, policy, now)
        sk = find_key(state, tag)
        k = sk.key
        if not k.signs_dnskey:
            raise InputError(f"key {k.id} is a ZSK: only a KSK or CSK (a trust anchor) is "
                             "revoked (RFC 5011)")
        if k.revoked is not None:
            raise InputError(f"key {k.id} is already revoked")
        if k.active is None or k.retired is not None or k.removed is not None \
                or k.published is None or k.published > now:
            raise InputError(f"key {k.id} is not published and signing the DNSKEY RRset: a "
                             "revoked key must sign itself (RFC 5011 §2.1)")
        if any(o.key.predecessor == k.id and o.key.removed is None for o in state.keys):
            raise InputError(f"key {k.id} is being rolled: let the roll finish first")
        why = refusal([o.key for o in state.keys], k.id, policy, now)
        if why is not None:
            raise UnsafeRefused(f"not revoking: {why}")
        keystate.set_revoked(directory, zone.to_text(), k.id, now)
        done = replace(sk, key=k.replace(revoked=now))
        _write_metadata(directory, [done], policy)
    return done


@dataclass(frozen=True)
class KeyStatus:
    stored: StoredKey
    states: dict[str, str]
    goal: str  # omnipresent: the key is (to be) in use; hidden: it is on its way out
    next_at: int | None
    next_states: dict[str, str]  # the records whose state changes then, and to what
    revoked_tag: int | None = None  # revoked: its tag with the REVOKE bit (RFC 5011)
    leaves_at: int | None = None  # revoked: when the plan removes it (after the hold-down)
    retire_at: int | None = None  # when it is planned to stop signing (planner.planned_retire)


@dataclass(frozen=True)
class Status:
    zone: str
    now: int
    policy: KeyPolicy
    keys: tuple[KeyStatus, ...]
    plan: Plan  # what a run at `now` would do (await-* are what the roll waits for)
    waiting: tuple[str, ...]  # one line per thing the roll waits for


def _waiting_line(zone: str, a: Action, k: StoredKey) -> str:
    from sigchain.core.dnssec.timefmt import format_utc

    if a.kind == "await-ds":
        since = k.key.cds_published
        return (f"waiting for DS of key {k.tag} at the parent"
                + (f" since {format_utc(since)}" if since is not None else "")
                + f"; run `sigchain keys ds-seen {zone} --key {k.key.id}` when it is")
    since = k.key.cds_withdrawn
    why = " (going insecure: CDS/CDNSKEY delete form)" if a.reason.startswith("going insecure") \
        else ""
    return (f"waiting for the DS of key {k.tag} to leave the parent{why}"
            + (f" since {format_utc(since)}" if since is not None else "")
            + f"; run `sigchain keys ds-gone {zone} --key {k.key.id}` when it has")


def _revocation(directory: str, sk: StoredKey, policy: KeyPolicy
                ) -> tuple[int | None, int | None]:
    """A revoked key's tag with the REVOKE bit and when it leaves the zone (or Nones)."""
    import dns.dnssec

    from sigchain.core.rollover.revoke import removal_time

    k = sk.key
    if k.revoked is None:
        return None, None
    tag = None
    if k.purged is None:
        rd = keystore.load_public(os.path.join(directory, sk.base))[2]
        tag = dns.dnssec.key_id(keyfile.revoked(rd))
    return tag, k.removed if k.removed is not None else removal_time(k, policy)


def status(zone: dns.name.Name, directory: str, now: int) -> Status:
    """`keys status`: every key's record states at `now`, and what the roll waits for."""
    from sigchain.core.rollover.planner import planned_retire
    from sigchain.core.rollover.states import next_change, states

    state, policy = stored_zone(zone, directory)
    policy = timed_policy(state, policy, now)
    p = plan([sk.key for sk in state.keys], policy, state.observations, now)
    rows = []
    for sk in state.keys:
        st = states(sk.key, policy, now).as_dict()
        at = next_change(sk.key, policy, now)
        later = states(sk.key, policy, at).as_dict() if at is not None else {}
        # As BIND: a key on its way out (retired, removed, or its successor started) aims at
        # hidden, every other one at omnipresent.
        leaving = sk.key.retired is not None or sk.key.removed is not None or any(
            o.key.predecessor == sk.key.id for o in state.keys) or sk.key.revoked is not None
        goal = "hidden" if leaving else "omnipresent"
        rows.append(KeyStatus(sk, st, goal, at, {r: v for r, v in later.items() if st[r] != v},
                              *_revocation(directory, sk, policy),
                              planned_retire(sk.key, [o.key for o in state.keys], policy, now)))
    by_id = {sk.key.id: sk for sk in state.keys}
    waiting = tuple(_waiting_line(zone.to_text(), a, by_id[a.key]) for a in p.waiting
                    if a.key in by_id)
    return Status(zone.to_text(), now, policy, tuple(rows), p, waiting)


def key_json(sk: StoredKey) -> dict[str, Any]:
    """A key as the `--json` outputs show it (its stored timestamps, tag and file)."""
    k = sk.key
    return {"id": k.id, "tag": sk.tag, "role": k.role, "algorithm": k.algorithm,
            "base": sk.base, "lifetime": k.lifetime, "created": k.created,
            "published": k.published, "active": k.active, "retired": k.retired,
            "removed": k.removed, "cds_published": k.cds_published,
            "cds_withdrawn": k.cds_withdrawn, "ds_published": k.ds_published,
            "ds_withdrawn": k.ds_withdrawn, "predecessor": k.predecessor, "purged": k.purged,
            "revoked": k.revoked}


def status_rows(st: Status) -> list[dict[str, Any]]:
    """Each key of `status` as `keys status --json` (and `sigchain ctl status`) show it."""
    return [{**key_json(k.stored), "states": k.states, "goal": k.goal,
             "next": None if k.next_at is None else {"at": k.next_at, "states": k.next_states},
             "revoked_tag": k.revoked_tag, "leaves_at": k.leaves_at, "retire_at": k.retire_at}
            for k in st.keys]
