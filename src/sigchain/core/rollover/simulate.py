"""The rollover simulator (pure): a model parent that publishes DS records a lag after the
child asks, a fake-clock driver for the real planner, and an oracle that replays the published
history and judges every DS/DNSKEY/signature combination a resolver may have cached at any
instant — by the key-state rules and by the real validator (judge) — independent of the
planner's own state model. The world's TTLs may differ from what the policy declares."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from sigchain.core.rollover import timings
from sigchain.core.rollover.judge import Combination, insecure_verdicts
from sigchain.core.rollover.planner import Action, Observation, apply, plan
from sigchain.core.rollover.policy import KeyPolicy
from sigchain.core.rollover.states import Key
from sigchain.errors import OperationalError

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
          start: int = T0, previous: KeyPolicy | None = None
          ) -> tuple[tuple[Key, ...], list[tuple[int, Action]]]:
    """Run the planner on a fake clock: plan, apply, jump to the next wake-up or parent event
    (`previous`: the policy `keys` were run with before, as `keys run` passes it)."""
    now, end, log = start, start + days * 86400, []
    for _ in range(10_000):
        result = plan(keys, policy, observations(keys, lag, now), now, previous=previous)
        keys = apply(keys, result.actions)
        log += [(now, a) for a in result.actions]
        pending = [t for k in keys for t in (
            k.cds_published + lag if k.cds_published is not None and k.ds_published is None
            else None,
            k.cds_withdrawn + lag if k.cds_withdrawn is not None and k.ds_withdrawn is None
            else None) if t is not None]
        # A parent event due now (lag 0) is seen by planning again at the same instant.
        following = min([t for t in [result.wake_at, *pending] if t is not None and t >= now],
                        default=None)
        if following is None or following > end:
            return keys, log
        now = following
    raise OperationalError("the planner did not settle (10000 steps without reaching the end)")


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


def cached_versions(keys: list[Key], p: KeyPolicy, t: int, window: int, times: list[int]) -> list[Zone]:
    """Every version a cache may hold at t: any published in [t - window, t]."""
    return [zone_at(keys, p, u) for u in {t - window, t, *(e for e in times
                                                          if t - window < e <= t)}]


def breakpoints(keys: Iterable[Key]) -> list[int]:
    return sorted({v for k in keys for v in (k.published, k.active, k.retired, k.removed,
                                             k.ds_published, k.ds_withdrawn) if v is not None})




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
        ds_sets = {z.ds for z in cached_versions(keys, p, t, w_ds, events)} - {frozenset()}  # insecure
        key_sets = {(z.dnskey, z.dnskey_signers) for z in cached_versions(keys, p, t, w_key, events)}
        signers = {z.data_signers for z in cached_versions(keys, p, t, w_sig, events)}
        for ds in ds_sets:
            for dnskey, dnskey_signers in key_sets:
                for signer in signers:
                    out.setdefault((ds, dnskey, dnskey_signers, signer), t)
    return out


@dataclass(frozen=True)
class Failure:
    """One instant at which some cache would not validate: what it held and why."""

    at: int
    ds: tuple[str, ...]
    dnskey: tuple[str, ...]
    dnskey_signers: tuple[str, ...]
    data_signers: tuple[str, ...]
    cause: str

    def __str__(self) -> str:
        return (f"{self.at}: cached DS {list(self.ds)}, DNSKEY {list(self.dnskey)} signed by "
                f"{list(self.dnskey_signers)}, data signed by {list(self.data_signers)}: "
                f"{self.cause}")


def _failure(at: int, c: Combination, cause: str) -> Failure:
    ds, dnskey, signers, data = (tuple(sorted(x)) for x in c)
    return Failure(at, ds, dnskey, signers, data, cause)


def failures(keys: Iterable[Key], p: KeyPolicy, validator: bool = True) -> list[Failure]:
    """Every cached combination that does not validate, earliest first: by the key-state
    rules (a DS must match a key in the cached DNSKEY RRset that signs it; one of the data's
    signers must be in it) and, with `validator`, by core/validate on synthetic RRsets."""
    keys = list(keys)
    return judge(keys, combinations(keys, p), validator)


def judge(keys: list[Key], combos: dict[Combination, int], validator: bool) -> list[Failure]:
    out = []
    for c, t in combos.items():
        ds, dnskey, dnskey_signers, signers = c
        if not ds & dnskey_signers & dnskey:
            out.append(_failure(t, c, "no DS matches a key that signs the DNSKEY RRset"))
        elif not signers & dnskey:
            out.append(_failure(t, c, "the data's signing keys are not in the DNSKEY RRset"))
    if validator:
        out += [_failure(combos[c], c, f"the validator says {status}")
                for c, status in insecure_verdicts(keys, combos).items()]
    return sorted(out, key=lambda f: f.at)


@dataclass(frozen=True)
class Simulation:
    keys: tuple[Key, ...]
    log: tuple[tuple[int, Action], ...]
    combinations: int  # distinct cached combinations judged
    failures: tuple[Failure, ...]


def world_of(p: KeyPolicy, parent_ds_ttl: int | None, max_zone_ttl: int | None) -> KeyPolicy:
    """The TTLs the world really has (the policy may have declared them wrong)."""
    return dataclasses.replace(
        p, parent_ds_ttl=p.parent_ds_ttl if parent_ds_ttl is None else parent_ds_ttl,
        max_zone_ttl=p.max_zone_ttl if max_zone_ttl is None else max_zone_ttl)


def as_the_parent_acted(keys: Iterable[Key], lag: int) -> tuple[Key, ...]:
    """The keys with the DS times the parent really had: in (out) `lag` after the child asked."""
    return tuple(k.replace(
        ds_published=k.ds_published if k.cds_published is None else k.cds_published + lag,
        ds_withdrawn=k.ds_withdrawn if k.cds_withdrawn is None else k.cds_withdrawn + lag)
        for k in keys)


def run(p: KeyPolicy, days: int, lag: int, world: KeyPolicy, start: int = T0,
        gated: bool = True) -> Simulation:
    """The planner run under `p` for `days` against a parent with `lag`, judged in `world`.
    Not `gated`: an engine that trusts elapsed time instead of the DS observation, modelled by
    telling the planner the DS is in (out) the moment it asks; the caches are then judged with
    the DS times the parent really had."""
    keys, log = drive(p, days, lag if gated else 0, start=start)
    if not gated:
        keys = as_the_parent_acted(keys, lag)
    combos = combinations(keys, world)
    return Simulation(keys, tuple(log), len(combos), tuple(judge(list(keys), combos, True)))
