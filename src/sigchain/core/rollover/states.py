"""Key record states (pure): a key's stored timestamps, the policy's TTLs and `now` give the
state of its DNSKEY, KRRSIG, ZRRSIG and DS records, as in Mekking's key-state model (BIND's
keymgr.c, Knot's kasp/keystate.c): hidden → rumoured → omnipresent → unretentive → hidden.

A record is rumoured from when it is introduced until it has had time to reach every cache
(propagation + TTL + publish-safety), omnipresent until it is withdrawn, unretentive until
every cached copy has expired (propagation + TTL + retire-safety), then hidden again.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum

from sigchain.core.rollover import timings
from sigchain.core.rollover.policy import KeyPolicy, RoleMixin


class State(StrEnum):
    HIDDEN = "hidden"
    RUMOURED = "rumoured"
    OMNIPRESENT = "omnipresent"
    UNRETENTIVE = "unretentive"


@dataclass(frozen=True)
class Key(RoleMixin):
    """One key's stored facts (epoch seconds; None = not yet). `published`/`removed` bound its
    DNSKEY in the zone, `active`/`retired` its signing (DNSKEY RRset for ksk/csk, zone data for
    zsk/csk), `ds_published`/`ds_withdrawn` the DS as observed at every parent server, and
    `cds_published`/`cds_withdrawn` the child's CDS/CDNSKEY request for it; `revoked` when
    the operator revoked it (RFC 5011)."""

    id: str
    role: str
    algorithm: int
    lifetime: int | None
    created: int
    published: int | None = None
    active: int | None = None
    retired: int | None = None
    removed: int | None = None
    cds_published: int | None = None
    cds_withdrawn: int | None = None
    ds_published: int | None = None
    ds_withdrawn: int | None = None
    predecessor: str | None = None
    purged: int | None = None  # its files deleted (purge-keys after it was gone everywhere)
    # An emergency roll forced (--force) to take it out of use by then, safe or not.
    deadline: int | None = None
    # Revoked (RFC 5011): published with the REVOKE bit and self-signed until removed.
    revoked: int | None = None

    def replace(self, **changes: object) -> Key:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class KeyStates:
    dnskey: State
    krrsig: State
    zrrsig: State
    ds: State

    def as_dict(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name).value for f in dataclasses.fields(self)}


@dataclass(frozen=True)
class _Record:
    """When one record of a key went in and out, and how long each takes to reach caches."""

    start: int | None
    end: int | None
    rise: int
    fall: int

    def state(self, now: int) -> State:
        if self.start is None or now < self.start:
            return State.HIDDEN
        if self.end is not None and now >= self.end:
            return State.UNRETENTIVE if now < self.end + self.fall else State.HIDDEN
        return State.RUMOURED if now < self.start + self.rise else State.OMNIPRESENT

    def changes(self) -> list[int]:
        """Every instant at which the state changes."""
        out = []
        if self.start is not None:
            out += [self.start, self.start + self.rise]
        if self.end is not None:
            out += [self.end, self.end + self.fall]
        return out


def _records(key: Key, p: KeyPolicy) -> tuple[_Record, _Record, _Record, _Record]:
    dnskey_in, dnskey_out = timings.ipub(p).seconds, timings.iret_child(p).seconds
    never = _Record(None, None, 0, 0)
    dnskey = _Record(key.published, key.removed, dnskey_in, dnskey_out)
    # The DNSKEY RRset's signatures travel with it: same TTL, same caches.
    sign_end = _first(key.retired, key.removed)
    krrsig = _Record(key.active, sign_end, dnskey_in, dnskey_out) if key.signs_dnskey else never
    zrrsig = (_Record(key.active, sign_end, timings.zrrsig_in(p).seconds,
                      timings.iret_zsk(p).seconds) if key.signs_zone else never)
    ds_in = key.ds_published
    if ds_in is None and key.ds_withdrawn is not None:
        # seen gone from the parent, never seen there: it may have been there (and cached)
        # since the CDS asked for it, so it is out of caches only a DS TTL after that
        ds_in = min(key.cds_published if key.cds_published is not None else key.ds_withdrawn,
                    key.ds_withdrawn)
    ds = _Record(ds_in, key.ds_withdrawn, timings.ipub_parent(p).seconds,
                 timings.iret_parent(p).seconds)
    return dnskey, krrsig, zrrsig, ds


def _first(*times: int | None) -> int | None:
    present = [t for t in times if t is not None]
    return min(present) if present else None


def states(key: Key, p: KeyPolicy, now: int) -> KeyStates:
    """The four record states of `key` at `now`."""
    return KeyStates(*(r.state(now) for r in _records(key, p)))


def next_change(key: Key, p: KeyPolicy, now: int) -> int | None:
    """The first instant after `now` at which one of the key's record states changes."""
    return _first(*(t for r in _records(key, p) for t in r.changes() if t > now))


def signatures_everywhere(key: Key, p: KeyPolicy) -> int | None:
    """When every signature the key makes is in every cache (its KRRSIG and ZRRSIG
    omnipresent), counted from its activation; None while it is not active."""
    if key.active is None:
        return None
    _, krrsig, zrrsig, _ = _records(key, p)
    return key.active + max(r.rise for r in (krrsig, zrrsig))


def gone_since(key: Key, p: KeyPolicy) -> int | None:
    """When every record of a removed key became hidden for good (None while any is still
    in use or cached, or if it was never removed)."""
    if key.removed is None:
        return None
    records = [r for r in _records(key, p) if r.start is not None]
    if any(r.end is None for r in records):
        return None
    return max((r.end + r.fall for r in records if r.end is not None), default=key.removed)
