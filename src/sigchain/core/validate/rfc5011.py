"""RFC 5011 trust-anchor maintenance (pure): one trust point's keys and their states (AddPend,
Valid, Missing, Revoked, Removed), moved only by observations of the zone's DNSKEY RRset at `now`.

A new key is accepted only from a DNSKEY RRset that validates under a currently trusted key, and
becomes trusted only when seen again after the add hold-down; a key is revoked by a DNSKEY
RRset it signs itself with the REVOKE bit set (RFC 5011 §2.1), as Unbound's autotrust does.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.DNSKEY
import dns.rdtypes.ANY.DS
import dns.rdtypes.ANY.RRSIG
import dns.rrset
from dns.rdatatype import RdataType

from sigchain.core.dnssec import algorithms, keyfile
from sigchain.core.dnssec.ds import ds_matches, key_tag
from sigchain.core.dnssec.policy import DEFAULT_POLICY, DnssecPolicy
from sigchain.core.dnssec.rrsig import header_of, serial_lt, signature_data, time_status
from sigchain.core.validate.validator import Evidence, Question, Status, Verdict, ZoneCut, validate
from sigchain.errors import InputError
from sigchain.model.keys import FLAG_REVOKE, FLAG_SEP, FLAG_ZONE

DNSKEY = dns.rdtypes.ANY.DNSKEY.DNSKEY
DS = dns.rdtypes.ANY.DS.DS
RRSIG = dns.rdtypes.ANY.RRSIG.RRSIG

HOUR = 3600
DAY = 24 * HOUR
SELF_SIGNATURES_TRIED = 4  # per revoked key: RRSIGs with its tag tried (KeyTrap-style cap)


class KeyState(enum.Enum):
    """RFC 5011 §4 key states; Start (not yet seen, or forgotten) is not stored."""

    ADDPEND = "addpend"
    VALID = "valid"
    MISSING = "missing"
    REVOKED = "revoked"
    REMOVED = "removed"


TRUSTED = (KeyState.VALID, KeyState.MISSING)


@dataclass(frozen=True)
class Timers:
    """RFC 5011 §2.3, §2.4: hold-downs and the bounds of the active refresh and retry."""

    add_holddown: int = 30 * DAY
    remove_holddown: int = 30 * DAY
    max_refresh: int = 15 * DAY
    max_retry: int = DAY
    min_interval: int = HOUR


TIMERS = Timers()


def material(rd: DNSKEY) -> tuple[int, int, bytes]:
    """What identifies a key whatever its flags: a revoked key is the same key (RFC 5011 §3)."""
    return rd.algorithm, rd.protocol, rd.key


@dataclass(frozen=True)
class TrackedKey:
    """A key of the trust point: its DNSKEY (REVOKE bit clear), state and when it entered it.
    `holddown` is the add hold-down in force while AddPend: max(30 days, the DNSKEY TTL)."""

    dnskey: DNSKEY
    state: KeyState
    since: int
    holddown: int = 0

    @property
    def tag(self) -> int:
        """The key tag as the zone shows it now: a revoked key's tag includes the REVOKE bit."""
        if self.state in (KeyState.REVOKED, KeyState.REMOVED):
            return key_tag(keyfile.revoked(self.dnskey))
        return key_tag(self.dnskey)

    def describe(self) -> str:
        return f"key {self.tag}/{self.dnskey.algorithm}"


@dataclass(frozen=True)
class TrustPoint:
    """One zone's managed anchors. `ds` holds initial DS anchors (as BIND's initial-ds) until
    a DNSKEY RRset validates through them and the keys they name become Valid."""

    zone: dns.name.Name
    keys: tuple[TrackedKey, ...] = ()
    ds: tuple[DS, ...] = ()
    last_attempt: int | None = None
    last_success: int | None = None
    next_refresh: int | None = None  # None: at once
    query_interval: int = HOUR
    retry_interval: int = HOUR
    failures: int = 0

    @property
    def trusted_keys(self) -> tuple[TrackedKey, ...]:
        return tuple(k for k in self.keys if k.state in TRUSTED)


@dataclass(frozen=True)
class Event:
    """Something a refresh did or refused, for the log: a stable code and one line."""

    code: str  # KEY_ADDPEND KEY_VALID KEY_MISSING KEY_PRESENT KEY_FORGOTTEN KEY_REVOKED
    # KEY_REMOVED LAST_KEY_REVOKED NOT_VALIDATED REFRESH_FAILED
    zone: dns.name.Name
    message: str
    tag: int | None = None

    def __str__(self) -> str:
        return f"trust anchor {self.zone}: {self.message}"


def initial(zone: dns.name.Name, anchors: Iterable[dns.rdata.Rdata], now: int) -> TrustPoint:
    """A trust point from configured anchors: DNSKEYs are Valid at once, DS records wait for
    the first DNSKEY RRset they validate."""
    keys: list[TrackedKey] = []
    ds: list[DS] = []
    for rd in anchors:
        if rd.rdtype == RdataType.DS:
            ds.append(rd)  # type: ignore[arg-type]
        elif rd.rdtype == RdataType.DNSKEY:
            if rd.flags & FLAG_REVOKE:  # type: ignore[attr-defined]
                raise InputError(f"trust anchor for {zone}: DNSKEY {key_tag(rd)} has the REVOKE "  # type: ignore[arg-type]
                                 "bit set")
            keys.append(TrackedKey(rd, KeyState.VALID, now))  # type: ignore[arg-type]
    return TrustPoint(zone, tuple(keys), tuple(ds))


def from_anchors(rrsets: Iterable[dns.rrset.RRset], now: int) -> dict[dns.name.Name, TrustPoint]:
    """Trust points by zone from anchor RRsets (anchors.parse_anchors or the IANA root's)."""
    by_zone: dict[dns.name.Name, list[dns.rdata.Rdata]] = {}
    for rrset in rrsets:
        by_zone.setdefault(rrset.name, []).extend(rrset)
    return {zone: initial(zone, rds, now) for zone, rds in by_zone.items()}


def trusted(state: TrustPoint) -> list[dns.rrset.RRset]:
    """The anchors to validate with: the Valid and Missing keys as a DNSKEY RRset, and the
    initial DS records while no DNSKEY RRset has yet validated through them. A trust point
    whose every key its owner revoked keeps those keys as anchors with the REVOKE bit set:
    no validator uses a revoked key (RFC 5011 §2.1), so everything under it is bogus — it
    fails closed, where dropping the trust point would make the zone insecure."""
    out = []
    keys = state.trusted_keys
    if keys:
        out.append(dns.rrset.from_rdata_list(state.zone, 0, [k.dnskey for k in keys]))
    if state.ds:
        out.append(dns.rrset.from_rdata_list(state.zone, 0, list(state.ds)))
    if not out:
        dead = [k.dnskey.replace(flags=k.dnskey.flags | FLAG_REVOKE) for k in state.keys  # type: ignore[attr-defined]
                if k.state in (KeyState.REVOKED, KeyState.REMOVED)]
        if dead:
            out.append(dns.rrset.from_rdata_list(state.zone, 0, dead))
    return out


def next_refresh(state: TrustPoint, now: int) -> int:
    """When the trust point should next be refreshed; a time at or before `now` means now —
    and so does one further ahead than an interval, which only a clock that went back (set
    wrong, then right) leaves: RFC 5011 §2.3 asks for a query at least every interval."""
    if state.next_refresh is None:
        return now
    if state.next_refresh - now > max(state.query_interval, state.retry_interval):
        return now
    return state.next_refresh


def _sigs(rrsigs: dns.rrset.RRset | Sequence[RRSIG] | None, zone: dns.name.Name) -> tuple[RRSIG, ...]:
    return tuple(s for s in (rrsigs or ()) if s.rdtype == RdataType.RRSIG  # type: ignore[attr-defined]
                 and s.type_covered == RdataType.DNSKEY and s.signer == zone)  # type: ignore[attr-defined]


def observe(state: TrustPoint, dnskey: dns.rrset.RRset | None,
            rrsigs: dns.rrset.RRset | Sequence[RRSIG] | None, now: int, timers: Timers = TIMERS,
            policy: DnssecPolicy = DEFAULT_POLICY, failure: str = "") -> tuple[TrustPoint, tuple[Event, ...]]:
    """One refresh: the zone's DNSKEY RRset and its RRSIGs as fetched at `now` (None when the
    fetch failed, `failure` saying why) → the new state and what changed."""
    zone = state.zone
    if dnskey is None or dnskey.name != zone or dnskey.rdtype != RdataType.DNSKEY:
        why = failure or f"no DNSKEY RRset for {zone}"
        return _failed(state, now), (Event("REFRESH_FAILED", zone, f"refresh failed: {why}"),)
    sigs = _sigs(rrsigs, zone)
    keys, events = _revocations(state, dnskey, sigs, now, policy)
    state = replace(state, keys=keys)
    verdict = _validate(state, dnskey, sigs, now, policy)
    if verdict.status is not Status.SECURE:
        why = "; ".join(f.message for f in verdict.findings) or verdict.status.value
        events.append(Event("NOT_VALIDATED", zone, "DNSKEY RRset not validated by a trusted key, "
                            f"nothing learned from it: {why}"))
        return _failed(state, now), tuple(events)
    state, changed = _update(state, dnskey, now, timers, policy, _original_ttl(dnskey, sigs))
    return _succeeded(state, dnskey, sigs, now, timers), tuple(events + changed)


def _failed(state: TrustPoint, now: int) -> TrustPoint:
    """RFC 5011 §2.3: a failed refresh is retried after the retry interval."""
    return replace(state, last_attempt=now, failures=state.failures + 1,
                   next_refresh=now + state.retry_interval)


def _original_ttl(dnskey: dns.rrset.RRset, sigs: Sequence[RRSIG]) -> int:
    """The RRset's Original TTL: the smallest its RRSIGs give. Not the largest: a garbage
    RRSIG beside the one that verifies could then stretch the add hold-down (30 days or the
    TTL, whichever is longer) and the query interval without end; a smaller one than the
    truth only makes the refreshes more frequent."""
    return min((s.original_ttl for s in sigs), default=dnskey.ttl)


def _succeeded(state: TrustPoint, dnskey: dns.rrset.RRset, sigs: Sequence[RRSIG], now: int,
               timers: Timers) -> TrustPoint:
    """RFC 5011 §2.3: active refresh max(1 h, min(15 days, TTL/2, expiry/2)); retry
    max(1 h, min(1 day, TTL/10, expiry/10)); expiry is the time left on the RRSIGs."""
    ttl = _original_ttl(dnskey, sigs)
    left = [(s.expiration - now) % (1 << 32) for s in sigs if serial_lt(now, s.expiration)]
    expiry = min(left, default=2 * timers.max_refresh)
    query = max(timers.min_interval, min(timers.max_refresh, ttl // 2, expiry // 2))
    retry = max(timers.min_interval, min(timers.max_retry, ttl // 10, expiry // 10))
    return replace(state, last_attempt=now, last_success=now, failures=0, next_refresh=now + query,
                   query_interval=query, retry_interval=retry)


def _validate(state: TrustPoint, dnskey: dns.rrset.RRset, sigs: Sequence[RRSIG], now: int,
              policy: DnssecPolicy) -> Verdict:
    """The DNSKEY RRset's verdict under the trusted keys alone (the core validator)."""
    signed: tuple[dns.rrset.RRset, ...] = (dnskey,)
    if sigs:
        signed += (dns.rrset.from_rdata_list(state.zone, dnskey.ttl, list(sigs)),)
    evidence = Evidence(Question(state.zone, RdataType.DNSKEY), answer=signed,
                        zones=(ZoneCut(state.zone, dnskey=signed),))
    return validate(evidence, trusted(state), now, policy)


def self_signed(zone: dns.name.Name, revoked: DNSKEY, dnskey: dns.rrset.RRset,
                sigs: Sequence[RRSIG], now: int, policy: DnssecPolicy = DEFAULT_POLICY) -> bool:
    """Whether the revoked key signs the DNSKEY RRset itself, under its revoked tag, with a
    signature valid at `now` (RFC 5011 §2.1)."""
    if not policy.may_validate(revoked.algorithm):
        return False
    tag = key_tag(revoked)
    mine = [s for s in sigs if s.key_tag == tag and s.algorithm == revoked.algorithm]
    skew = policy.limits.clock_skew
    try:
        alg = algorithms.get(revoked.algorithm)
        public = algorithms.public_key_from_dnskey(alg, revoked.key)
    except InputError:
        return False
    for sig in mine[:SELF_SIGNATURES_TRIED]:
        if time_status(sig.inception - skew, sig.expiration + skew, now) != "ok":
            continue
        data = signature_data(zone, RdataType.DNSKEY, dns.rdataclass.IN, sig.original_ttl,
                              list(dnskey), header_of(sig))
        if algorithms.verify(alg, public, sig.signature, data):
            return True
    return False


def _revocations(state: TrustPoint, dnskey: dns.rrset.RRset, sigs: Sequence[RRSIG], now: int,
                 policy: DnssecPolicy) -> tuple[tuple[TrackedKey, ...], list[Event]]:
    """Trusted keys the RRset shows self-signed with the REVOKE bit become Revoked, even the
    last ones: a key revoked (compromised, perhaps) must not validate anything again, not an
    old DNSKEY RRset replayed nor one forged with it (RFC 5011 §2.1). With none left the trust
    point fails closed (`trusted`), and it is said."""
    zone = state.zone
    trusted_by_material = {material(k.dnskey): k for k in state.trusted_keys}
    revoked = {material(rd) for rd in dnskey
               if rd.flags & FLAG_REVOKE and material(rd) in trusted_by_material  # type: ignore[attr-defined]
               and self_signed(zone, rd, dnskey, sigs, now, policy)}  # type: ignore[arg-type]
    if not revoked:
        return state.keys, []
    keys, events = [], []
    if revoked == set(trusted_by_material) and not state.ds:
        events.append(Event("LAST_KEY_REVOKED", zone, f"every trusted key of {zone} is revoked by "
                            "its owner and no other is trusted: nothing under it validates any "
                            "more (fail closed) until a new anchor is configured"))
    for k in state.keys:
        if material(k.dnskey) in revoked:
            k = TrackedKey(k.dnskey, KeyState.REVOKED, now)
            events.append(Event("KEY_REVOKED", zone, f"{k.describe()} revoked (self-signed with "
                                f"the REVOKE bit); no longer trusted", k.tag))
        keys.append(k)
    return tuple(keys), events


def _update(state: TrustPoint, dnskey: dns.rrset.RRset, now: int, timers: Timers,
            policy: DnssecPolicy, ttl: int) -> tuple[TrustPoint, list[Event]]:
    """RFC 5011 §4.2 for a validated RRset: NewKey, KeyPres, KeyRem, AddTime, RemTime."""
    zone = state.zone
    seen = {material(rd): rd for rd in dnskey if not rd.flags & FLAG_REVOKE}  # type: ignore[attr-defined]
    keys: list[TrackedKey] = []
    events: list[Event] = []

    def event(code: str, k: TrackedKey, what: str) -> None:
        events.append(Event(code, zone, f"{k.describe()} {what}", k.tag))

    for k in state.keys:
        present = material(k.dnskey) in seen
        if k.state is KeyState.ADDPEND and not present:
            event("KEY_FORGOTTEN", k, "left the DNSKEY RRset before its add hold-down ended; forgotten")
            continue
        if k.state is KeyState.ADDPEND and now - k.since >= k.holddown:
            k = TrackedKey(k.dnskey, KeyState.VALID, now)
            event("KEY_VALID", k, "seen after the add hold-down: now trusted")
        elif k.state is KeyState.VALID and not present:
            k = TrackedKey(k.dnskey, KeyState.MISSING, now)
            event("KEY_MISSING", k, "missing from the DNSKEY RRset (still trusted)")
        elif k.state is KeyState.MISSING and present:
            k = TrackedKey(k.dnskey, KeyState.VALID, now)
            event("KEY_PRESENT", k, "back in the DNSKEY RRset")
        elif k.state is KeyState.REVOKED and now - k.since >= timers.remove_holddown:
            k = TrackedKey(k.dnskey, KeyState.REMOVED, now)
            event("KEY_REMOVED", k, "remove hold-down over: removed")
        keys.append(k)
    known = {material(k.dnskey) for k in state.keys}
    primed = False
    for mat, rd in seen.items():
        if mat in known:
            continue
        if any(ds_matches(zone, d, rd, policy) for d in state.ds):  # type: ignore[arg-type]
            k = TrackedKey(rd, KeyState.VALID, now)  # type: ignore[arg-type]
            event("KEY_VALID", k, "matches the initial DS anchor: trusted")
            primed = True
        elif rd.flags & FLAG_SEP and rd.flags & FLAG_ZONE and rd.protocol == 3 \
                and policy.may_validate(rd.algorithm):  # type: ignore[attr-defined]
            k = TrackedKey(rd, KeyState.ADDPEND, now, max(timers.add_holddown, ttl))  # type: ignore[arg-type]
            event("KEY_ADDPEND", k, f"new: add hold-down until {now + k.holddown}")
        else:
            continue
        keys.append(k)
    return replace(state, keys=tuple(keys), ds=() if primed else state.ds), events
