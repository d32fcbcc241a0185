"""The rollover planner (pure): plan(keys, policy, observations, now) → the actions due now and
when to run next. Rolls: the initial key set, ZSK pre-publication, KSK double-DS, CSK
(pre-publication + double-DS), and an algorithm or role change (RFC 6781 §4.1.4, which also
migrates between policies); every DS step waits for the parent's DS as observed, never for
elapsed time alone. `apply` records actions as key timestamps (what an executor stores).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from sigchain.core.rollover import revoke, timings
from sigchain.core.rollover.durations import render
from sigchain.core.rollover.policy import KeyPolicy, KeySpec
from sigchain.core.rollover.states import Key, State, gone_since, next_change, states

OMNI = State.OMNIPRESENT
HIDDEN = State.HIDDEN

# Which timestamp each action sets; await-* only report what the plan waits for.
_STAMPS = {"publish": "published", "activate": "active", "retire": "retired",
           "remove": "removed", "publish-cds": "cds_published", "withdraw-cds": "cds_withdrawn",
           "ds-seen": "ds_published", "ds-gone": "ds_withdrawn", "purge": "purged"}


@dataclass(frozen=True)
class Observation:
    """The parent, as checked: "DS for key `key` seen at every parent server since `since`"
    (`kind` "ds-published") or "gone from every parent server since" ("ds-withdrawn")."""

    key: str
    kind: str
    since: int


@dataclass(frozen=True)
class Action:
    kind: str  # create publish activate retire remove publish-cds withdraw-cds ds-seen
    key: str   # ds-gone purge await-ds await-ds-gone lifetime
    at: int
    reason: str
    role: str = ""
    algorithm: int = 0
    lifetime: int | None = None
    predecessor: str | None = None


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...]
    wake_at: int | None  # None: nothing is due by time alone (maybe awaiting the parent)

    @property
    def waiting(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.kind.startswith("await"))


def apply(keys: Iterable[Key], actions: Iterable[Action]) -> tuple[Key, ...]:
    """The key set after `actions`: new keys created, each action's timestamp stored."""
    out = {k.id: k for k in keys}
    for a in actions:
        if a.kind == "create":
            out[a.key] = Key(a.key, a.role, a.algorithm, a.lifetime, a.at,
                             predecessor=a.predecessor)
        elif a.kind == "lifetime":
            out[a.key] = out[a.key].replace(lifetime=a.lifetime)
        elif a.kind in _STAMPS and getattr(out[a.key], _STAMPS[a.kind]) is None:
            out[a.key] = out[a.key].replace(**{_STAMPS[a.kind]: a.at})
    return tuple(out.values())


class _Planner:
    def __init__(self, keys: Sequence[Key], p: KeyPolicy, now: int):
        self.keys, self.p, self.now = list(keys), p, now
        self.actions: list[Action] = []
        self.wakes: list[int] = []

    def do(self, kind: str, key: Key | str, reason: str) -> None:
        key_id = key if isinstance(key, str) else key.id
        self.actions.append(Action(kind, key_id, self.now, reason))
        if kind in _STAMPS or kind == "create":
            self.keys = list(apply(self.keys, self.actions[-1:]))

    def key(self, key_id: str) -> Key:
        return next(k for k in self.keys if k.id == key_id)

    def create(self, spec: KeySpec, predecessor: Key | None, reason: str) -> Key:
        key_id = f"{spec.role}-{spec.algorithm}-{len(self.keys) + 1}"
        self.actions.append(Action("create", key_id, self.now, reason, spec.role,
                                   spec.algorithm, spec.lifetime,
                                   predecessor.id if predecessor else None))
        self.keys = list(apply(self.keys, self.actions[-1:]))
        return self.key(key_id)

    def all_signing_omnipresent(self) -> bool:
        """Every published key's DNSKEY and every active key's signatures in every cache."""
        for k in self.keys:
            s = states(k, self.p, self.now)
            if k.published is not None and k.removed is None and s.dnskey != OMNI:
                return False
            if k.active is not None and k.retired is None and (
                    (k.signs_dnskey and s.krrsig != OMNI) or (k.signs_zone and s.zrrsig != OMNI)):
                return False
        return True

    def lead(self, role: str) -> int:
        return lead_time(self.p, role)


class _DsTimes(Protocol):
    @property
    def ds_published(self) -> int | None: ...

    @property
    def cds_published(self) -> int | None: ...


def may_be_at_parent(k: _DsTimes) -> bool:
    """Whether the parent may hold `k`'s DS (a Key, or the parent check's view of one):
    seen there, or asked for (its CDS published; a parent may have taken it without our
    seeing it yet, or between two checks)."""
    return k.ds_published is not None or k.cds_published is not None


def lead_time(p: KeyPolicy, role: str) -> int:
    """How long before a key's retirement its successor must start (RFC 7583)."""
    ipub, ipubp = timings.ipub(p).seconds, timings.ipub_parent(p).seconds
    return {"zsk": ipub, "ksk": ipubp, "csk": max(ipub, ipubp)}[role]


def plan(keys: Sequence[Key], p: KeyPolicy, observations: Iterable[Observation],
         now: int, previous: KeyPolicy | None = None) -> Plan:
    """What to do at `now` so that every cached DS/DNSKEY/RRSIG combination keeps validating,
    and when to look again. `previous` is the policy the keys were last run with: a lifetime
    it gave that `p` changes is applied to the keys still in use (new_lifetimes)."""
    pl = _Planner(keys, p, now)
    known = {k.id for k in keys}
    for ob in observations:
        if ob.key in known and ob.since <= now:
            k = pl.key(ob.key)
            if ob.kind == "ds-published" and k.ds_published is None:
                pl.actions.append(Action("ds-seen", k.id, ob.since, "DS seen at the parent"))
            elif ob.kind == "ds-withdrawn" and may_be_at_parent(k) \
                    and k.ds_withdrawn is None and k.cds_withdrawn is not None:
                pl.actions.append(Action("ds-gone", k.id, ob.since, "DS gone from the parent"))
            pl.keys = list(apply(pl.keys, pl.actions[-1:]))
    if p.insecure:
        go_insecure(pl)
    else:
        new_lifetimes(pl, p, previous)
        _follow_policy(pl, p)
        for k in [k for k in pl.keys if revoke.is_revoked(k, now)]:
            revoke.follow(pl, k)
    _purge(pl)
    for k in list(pl.keys):
        pl.wakes += [t for t in [next_change(pl.key(k.id), p, now)] if t is not None]
    wake = min((t for t in pl.wakes if t > now), default=None)
    return Plan(tuple(pl.actions), wake)


def new_lifetimes(pl: _Planner, p: KeyPolicy, previous: KeyPolicy | None) -> None:
    """A policy whose key lifetime changed after keys exist, as BIND's keymgr does: every key
    of that role and algorithm still in use (not retiring: no successor, not retired, removed
    or revoked) takes the new lifetime, so its retirement moves with it. A key whose lifetime
    is not the old policy's (a roll started by hand) keeps its own. A retirement that moves
    into the past starts the roll at once; the key still retires only when its successor is
    in every cache (_roll), never before."""
    if previous is None:
        return
    old = {}
    for spec in previous.keys:
        old.setdefault((spec.role, spec.algorithm), spec.lifetime)
    done: set[tuple[str, int]] = set()
    for spec in p.keys:
        line = (spec.role, spec.algorithm)
        if line in done or line not in old or old[line] == spec.lifetime:
            continue
        done.add(line)
        for k in list(pl.keys):
            if (k.role, k.algorithm) != line or k.lifetime != old[line] or k.retired is not None \
                    or k.removed is not None or k.revoked is not None \
                    or any(o.predecessor == k.id for o in pl.keys):
                continue
            was = "unlimited" if old[line] is None else render(old[line])
            new = "unlimited" if spec.lifetime is None else render(spec.lifetime)
            pl.actions.append(Action("lifetime", k.id, pl.now, f"the policy's {spec.role} "
                                     f"lifetime changed from {was} to {new}", k.role,
                                     k.algorithm, spec.lifetime))
            pl.keys = list(apply(pl.keys, pl.actions[-1:]))


def planned_retire(key: Key, keys: Sequence[Key], p: KeyPolicy, now: int) -> int | None:
    """When `key` is planned to stop signing (None: never, or not until the parent's DS is
    seen): its lifetime's end, but never before its successor can be in every cache."""
    if key.retired is not None or key.lifetime is None or key.active is None:
        return key.retired
    due = key.active + key.lifetime
    successor = next((k for k in keys if k.predecessor == key.id), None)
    if successor is None:
        return max(due, now + lead_time(p, key.role))
    ready = []
    if key.role != "ksk":
        if successor.published is None:
            return None
        ready.append(successor.published + timings.ipub(p).seconds)
    if key.role != "zsk":
        if successor.ds_published is None:
            return None
        ready.append(successor.ds_published + timings.ipub_parent(p).seconds)
    return max(due, *ready)


def _follow_policy(pl: _Planner, p: KeyPolicy) -> None:
    orphans = [k for k in pl.keys if not revoke.is_revoked(k, pl.now) and not any(
        (k.role, k.algorithm) == (spec.role, spec.algorithm) for spec in p.keys)]
    # One line of succession per role and algorithm (a second identical entry adds nothing;
    # policy check warns about it).
    specs: dict[tuple[str, int], KeySpec] = {}
    for spec in p.keys:
        specs.setdefault((spec.role, spec.algorithm), spec)
    for spec in specs.values():
        _lineage(pl, spec, migrating=any(k.retired is None for k in orphans))
    if orphans:
        algorithm_roll(pl, [k.id for k in orphans])


def go_insecure(pl: _Planner) -> None:
    """The policy says go unsigned (RFC 8078 §4, as BIND's `insecure` policy): ask the parent
    to delete the DS (the signer publishes the CDS/CDNSKEY delete form while the keys' CDS is
    withdrawn), wait until every parent server has dropped it and it is out of every cache,
    then take every key out at once (no cached chain can fail: without a DS the zone is
    insecure). No key is made or rolled meanwhile."""
    live = [k for k in pl.keys if k.removed is None or k.retired is None]
    for k in live:
        if k.signs_dnskey and k.cds_published is not None and k.cds_withdrawn is None:
            pl.do("withdraw-cds", k, "going insecure: the CDS/CDNSKEY delete form asks the "
                                     "parent to remove the DS")
    waiting = [pl.key(k.id) for k in live if k.signs_dnskey]
    # a DS asked for (CDS published) but never seen may be at the parent all the same: its
    # absence must be seen too, before the keys go
    waiting = [k for k in waiting if may_be_at_parent(k) and k.ds_withdrawn is None]
    for k in waiting:
        pl.do("await-ds-gone", k, "going insecure: waiting for the DS to leave every parent "
                                  "server (CDS delete form published)")
    if waiting or any(states(pl.key(k.id), pl.p, pl.now).ds != HIDDEN for k in live):
        return
    for k in live:
        if k.active is not None and k.retired is None:
            pl.do("retire", k, "going insecure: no DS in any cache, stop signing")
        if k.removed is None:
            pl.do("remove", k, "going insecure: no DS in any cache, the DNSKEY goes")


def _lineage(pl: _Planner, spec: KeySpec, migrating: bool) -> None:
    """Plan one policy key's line of succession: start, roll, retire and clean up. While
    keys of another algorithm (or role) are still in use, a new line starts by signing only:
    RFC 6781 §4.1.4, new RRSIGs before the new DNSKEY (algorithm_roll publishes it)."""
    line = [k for k in pl.keys if k.role == spec.role and k.algorithm == spec.algorithm
            and not revoke.is_revoked(k, pl.now)]  # it leaves its line (revoke.follow)
    signing = [k for k in line if k.active is not None and k.retired is None]
    # Two sign at once only mid-roll (BIND activates a ZSK successor as it makes it; `keys
    # import-bind` takes that over): the current key is the one the other succeeds.
    current = next((k for k in reversed(signing)
                    if not any(k.predecessor == o.id for o in signing)), None)
    if current is None and not any(k.retired is None for k in line):
        key = pl.create(spec, None, f"the policy wants a {spec.role}")
        if not migrating:
            pl.do("publish", key, "initial key: publish its DNSKEY")
        pl.do("activate", key, "new algorithm: sign with it first" if migrating
              else "initial key: sign with it")
        current = pl.key(key.id)
    if current is not None:
        if not migrating:
            _initial_ds(pl, current)
        _roll(pl, spec, pl.key(current.id))  # as _initial_ds left it (CDS asked for now)
    for k in line:
        if k.retired is not None:
            _clean_up(pl, pl.key(k.id))


def _purge(pl: _Planner) -> None:
    """BIND's purge-keys: delete a key `purge-keys` after its last record left every cache
    (0: keep keys for ever)."""
    if pl.p.purge_keys <= 0:
        return
    for k in pl.keys:
        gone = gone_since(k, pl.p)
        if k.purged is None and gone is not None:
            if pl.now >= gone + pl.p.purge_keys:
                pl.do("purge", k, "gone from every cache for purge-keys: delete its files")
            else:
                pl.wakes.append(gone + pl.p.purge_keys)


def _initial_ds(pl: _Planner, k: Key) -> None:
    if not k.signs_dnskey or k.predecessor is not None:
        return
    if k.cds_published is None and pl.all_signing_omnipresent():
        pl.do("publish-cds", k, "DNSKEY and signatures are in every cache: ask for the DS")
    if pl.key(k.id).cds_published is not None and pl.key(k.id).ds_published is None:
        pl.do("await-ds", k, "waiting for the DS at every parent server")


def _roll(pl: _Planner, spec: KeySpec, current: Key) -> None:
    if current.lifetime is None or current.active is None:
        return
    due = current.active + current.lifetime
    successor = next((k for k in pl.keys if k.predecessor == current.id), None)
    if successor is None:
        start = due - pl.lead(spec.role)
        if pl.now < start:
            pl.wakes.append(start)
            return
        st = states(current, pl.p, pl.now)
        if spec.role != "zsk" and current.cds_published is not None and st.ds != OMNI:
            return  # the current key's own DS is not in every cache yet: roll after it is
        if spec.role != "zsk" and current.cds_published is None:
            return  # not even asked for yet (the zone is still being signed for the first time)
        successor = pl.create(spec, current, f"{current.id} retires at {due}: roll")
        if spec.role in ("zsk", "csk"):
            pl.do("publish", successor, "pre-publish the successor's DNSKEY")
        if spec.role in ("ksk", "csk"):
            pl.do("publish-cds", successor, "ask the parent for the successor's DS")
    if spec.role in ("ksk", "csk") and pl.key(successor.id).cds_published is None:
        # a successor this planner did not make (taken over from BIND mid-roll, before its
        # PublishCDS time): ask for its DS too, or the roll waits for it for ever
        pl.do("publish-cds", successor, "ask the parent for the successor's DS")
    s = pl.key(successor.id)
    if current.deadline is not None and pl.now >= current.deadline:
        _forced_swap(pl, current, s)
        return
    if current.deadline is not None:
        pl.wakes.append(current.deadline)
    if spec.role in ("ksk", "csk") and s.ds_published is None:
        pl.do("await-ds", s, "the roll waits for the successor's DS at every parent server")
        return
    st = states(s, pl.p, pl.now)
    ready = (st.dnskey == OMNI if spec.role != "ksk" else True) and (
        st.ds == OMNI if spec.role != "zsk" else True)
    if not ready or pl.now < due:
        pl.wakes.append(due)
        return
    if spec.role == "ksk":  # double-DS: both DS in every cache, so swap the DNSKEY at once
        pl.do("publish", s, "both DS in every cache: swap in the new KSK")
        pl.do("remove", current, "both DS in every cache: swap out the old KSK")
    pl.do("activate", s, "the successor's records are in every cache: sign with it")
    pl.do("retire", current, "replaced by its successor")


def _forced_swap(pl: _Planner, current: Key, s: Key) -> None:
    """An emergency roll forced past what the TTLs allow: the successor takes over now and
    the compromised key leaves at once; caches holding the old records fail to validate."""
    why = "forced emergency roll: taken out of use now, before caches could follow"
    if s.published is None:
        pl.do("publish", s, why)
    pl.do("activate", s, why)
    pl.do("retire", current, why)
    pl.do("remove", current, why)
    if current.signs_dnskey and current.cds_published is not None and current.cds_withdrawn is None:
        pl.do("withdraw-cds", current, why)  # the compromised key's DS goes from the parent now


def emergency_earliest(key: Key, p: KeyPolicy, now: int) -> tuple[int, str]:
    """The earliest instant an emergency roll started at `now` can take `key` out of signing
    without breaking any cached chain, and the arithmetic: a ZSK's successor must be in every
    cached DNSKEY RRset first (Ipub); a KSK's successor DS must be seen at the parent and be
    in every cache (IpubP after the parent publishes it: this is the earliest, if at once)."""
    ipub, ipubp = timings.ipub(p), timings.ipub_parent(p)
    if key.role == "zsk":
        return now + ipub.seconds, ipub.text()
    if key.role == "ksk":
        return now + ipubp.seconds, f"{ipubp.text()}, after the parent publishes the new DS"
    wait = max(ipub, ipubp, key=lambda i: i.seconds)
    return now + wait.seconds, f"{wait.text()} (the longer of Ipub and IpubP; IpubP after " \
                               "the parent publishes the new DS)"


def _clean_up(pl: _Planner, k: Key) -> None:
    st = states(k, pl.p, pl.now)
    if k.removed is None and (not k.signs_zone or st.zrrsig == HIDDEN) and (
            not k.signs_dnskey or st.krrsig == HIDDEN):
        pl.do("remove", k, "its signatures are out of every cache")
        k, st = pl.key(k.id), states(pl.key(k.id), pl.p, pl.now)
    if k.signs_dnskey and k.cds_withdrawn is None and k.removed is not None \
            and st.dnskey == HIDDEN and k.ds_published is not None:
        pl.do("withdraw-cds", k, "its DNSKEY is out of every cache: withdraw its DS")
        k = pl.key(k.id)
    if k.cds_withdrawn is not None and k.ds_withdrawn is None:
        pl.do("await-ds-gone", k, "waiting for its DS to leave every parent server")


def algorithm_roll(pl: _Planner, old_ids: list[str]) -> None:
    """RFC 6781 §4.1.4 (conservative): new RRSIGs, then new DNSKEYs, then the DS swap (gated
    on the parent as observed), then old DNSKEYs out, then old RRSIGs out."""
    old = [pl.key(i) for i in old_ids]
    new = [k for k in pl.keys if k.id not in old_ids and k.retired is None]
    st = {k.id: states(k, pl.p, pl.now) for k in pl.keys}
    # One new DNSKEY brings its algorithm into the key set, and with it a validator's
    # expectation (RFC 4035 §2.2) that every RRset cached carries a signature of it: the
    # new keys go in together, once every new signature (data and DNSKEY RRset) is cached.
    signed = all((not k.signs_zone or st[k.id].zrrsig == OMNI) and (
        not k.signs_dnskey or st[k.id].krrsig == OMNI) for k in new)
    for k in new:
        if k.published is None and k.active is not None and signed:
            pl.do("publish", k, "the new algorithm's signatures are in every cache: publish "
                                "its DNSKEY")
    if any(pl.key(k.id).published is None or st[k.id].dnskey != OMNI for k in new):
        return
    new_ksks = [k for k in new if k.signs_dnskey]
    if any(k.cds_published is None for k in new_ksks):
        for k in new_ksks:
            pl.do("publish-cds", k, "new DNSKEYs in every cache: swap the DS to the new keys")
        for k in old:
            if k.signs_dnskey and k.cds_published is not None:
                pl.do("withdraw-cds", k, "DS swap: the old algorithm's DS goes")
    new_ksks = [pl.key(k.id) for k in new_ksks]
    waiting = [k for k in new_ksks if k.ds_published is None]
    for k in waiting:
        pl.do("await-ds", k, "the algorithm roll waits for the new DS at every parent server")
    gone = [k for k in old if k.cds_withdrawn is not None and k.ds_withdrawn is None]
    for k in gone:
        pl.do("await-ds-gone", k, "the algorithm roll waits for the old DS to leave the parent")
    if waiting or gone or any(st[k.id].ds != OMNI for k in new_ksks) or any(
            st[k.id].ds != HIDDEN for k in old):
        return
    for k in old:
        if k.removed is None:
            pl.do("remove", k, "the DS swap is in every cache: the old DNSKEY goes")
        elif k.retired is None and st[k.id].dnskey == HIDDEN:
            pl.do("retire", k, "the old DNSKEY is out of every cache: its RRSIGs go")
