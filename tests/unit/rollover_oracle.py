"""Test helpers for rollovers: a fake parent, a fake-clock driver for the planner, and an
oracle that replays the published history and checks every combination of DS, DNSKEY and
data signatures a resolver may have cached at any instant (independent of the state model)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sigchain.core.rollover import timings
from sigchain.core.rollover.planner import Action, Observation, apply, plan
from sigchain.core.rollover.policy import KeyPolicy
from sigchain.core.rollover.states import Key, State, states

T0 = 1_800_000_000
NEVER = 10**12


def observations(keys: Iterable[Key], lag: int, now: int) -> list[Observation]:
    """A parent that publishes (removes) a DS `lag` after the child asks (CDS in or out)."""
    out = []
    for k in keys:
        if k.cds_published is not None and k.cds_published + lag <= now:
            out.append(Observation(k.id, "ds-published", k.cds_published + lag))
        if k.cds_withdrawn is not None and k.cds_withdrawn + lag <= now:
            out.append(Observation(k.id, "ds-withdrawn", k.cds_withdrawn + lag))
    return out


def drive(policy: KeyPolicy, days: int, lag: int = 2 * 86400, keys: tuple[Key, ...] = (),
          start: int = T0) -> tuple[tuple[Key, ...], list[tuple[int, Action]]]:
    """Run the planner on a fake clock: plan, apply, jump to the next wake-up or parent event."""
    now, end, log = start, start + days * 86400, []
    for _ in range(10_000):
        result = plan(keys, policy, observations(keys, lag, now), now)
        keys = apply(keys, result.actions)
        log += [(now, a) for a in result.actions]
        pending = [t for k in keys for t in (
            k.cds_published + lag if k.cds_published is not None and k.ds_published is None
            else None,
            k.cds_withdrawn + lag if k.cds_withdrawn is not None and k.ds_withdrawn is None
            else None) if t is not None and t > now]
        following = min([t for t in [result.wake_at, *pending] if t is not None], default=None)
        if following is None or following > end:
            return keys, log
        assert following > now
        now = following
    raise AssertionError("the planner never settled")


@dataclass(frozen=True)
class Zone:
    dnskey: frozenset[str]
    dnskey_signers: frozenset[str]
    data_signers: frozenset[str]
    ds: frozenset[str]


def zone_at(keys: Iterable[Key], p: KeyPolicy, u: int) -> Zone:
    """What the child's primary and the parent published at instant u."""
    def live(start: int | None, end: int | None, extra: int = 0) -> bool:
        return start is not None and start <= u < (NEVER if end is None else end + extra)

    keys = list(keys)
    dnskey = frozenset(k.id for k in keys if live(k.published, k.removed))
    return Zone(
        dnskey,
        frozenset(k.id for k in keys if k.signs_dnskey and live(k.active, k.retired)),
        frozenset(k.id for k in keys if k.signs_zone and live(k.active, k.retired)),
        frozenset(k.id for k in keys if live(k.ds_published, k.ds_withdrawn)),
    )


def _cached(keys: list[Key], p: KeyPolicy, t: int, window: int, times: list[int]) -> list[Zone]:
    """Every version a cache may hold at t: any published in [t - window, t]."""
    return [zone_at(keys, p, u) for u in {t - window, t, *(e for e in times
                                                          if t - window < e <= t)}]


def breakpoints(keys: Iterable[Key]) -> list[int]:
    return sorted({v for k in keys for v in (k.published, k.active, k.retired, k.removed,
                                             k.ds_published, k.ds_withdrawn) if v is not None})


Combination = tuple[frozenset[str], frozenset[str], frozenset[str], frozenset[str]]


def combinations(keys: Iterable[Key], p: KeyPolicy) -> dict[Combination, int]:
    """Every (cached DS, DNSKEY, DNSKEY signers, data signer) a resolver may hold under a
    DS, with the first instant it can happen (a cache holds any version published within
    propagation + TTL of the instant asked about)."""
    keys = list(keys)
    events = breakpoints(keys)
    w_key = p.zone_propagation_delay + p.dnskey_ttl
    w_ds = p.parent_propagation_delay + p.parent_ds_ttl
    # Signatures are refreshed RRset by RRset: one may carry what the keys active at any
    # moment of the last Dsgn made, and be cached for propagation + TTL after that.
    w_sig = p.zone_propagation_delay + p.max_zone_ttl + timings.sign_delay(p)
    checks = sorted({e + w + d for e in events for w in (0, w_key, w_ds, w_sig) for d in (-1, 0)})
    out: dict[Combination, int] = {}
    for t in checks:
        ds_sets = {z.ds for z in _cached(keys, p, t, w_ds, events)} - {frozenset()}  # insecure
        key_sets = {(z.dnskey, z.dnskey_signers) for z in _cached(keys, p, t, w_key, events)}
        signers = {z.data_signers for z in _cached(keys, p, t, w_sig, events)}
        for ds in ds_sets:
            for dnskey, dnskey_signers in key_sets:
                for signer in signers:
                    out.setdefault((ds, dnskey, dnskey_signers, signer), t)
    return out


def failures(keys: Iterable[Key], p: KeyPolicy) -> list[str]:
    """Every cached combination that breaks the key-state model's rules: a DS must match a
    key in the cached DNSKEY RRset that signs it, and one of the data's signers must be in it."""
    out = []
    for (ds, dnskey, dnskey_signers, signers), t in combinations(keys, p).items():
        if not ds & dnskey_signers & dnskey:
            out.append(f"{t}: DS {sorted(ds)} matches no signer of DNSKEY {sorted(dnskey)}")
        elif not signers & dnskey:
            out.append(f"{t}: data signed by {sorted(signers)} not in DNSKEY {sorted(dnskey)}")
    return out


def state_model_disagreements(keys: Iterable[Key], p: KeyPolicy) -> list[str]:
    """Hidden records must be in no cache, omnipresent ones in every cache."""
    keys = list(keys)
    events = breakpoints(keys)
    w_key = p.zone_propagation_delay + p.dnskey_ttl
    w_ds = p.parent_propagation_delay + p.parent_ds_ttl
    out = []
    for t in sorted({e + d for e in events for d in (-1, 0, 1)}):
        dnskeys = [z.dnskey for z in _cached(keys, p, t, w_key, events)]
        dses = [z.ds for z in _cached(keys, p, t, w_ds, events)]
        for k in keys:
            s = states(k, p, t)
            for name, state, versions in (("DNSKEY", s.dnskey, dnskeys), ("DS", s.ds, dses)):
                cached = [k.id in v for v in versions]
                if state == State.HIDDEN and any(cached):
                    out.append(f"{t}: {k.id} {name} hidden but cached")
                if state == State.OMNIPRESENT and not all(cached):
                    out.append(f"{t}: {k.id} {name} omnipresent but missing from a cache")
    return out
