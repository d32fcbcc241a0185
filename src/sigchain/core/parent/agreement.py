"""Whether a zone's parent servers agree about its DS RRset (pure): for each of the zone's keys,
the servers that show its DS and those that do not, and the observations this feeds the key
state ("DS for key T seen at every parent server since S", or withdrawn), as Knot's checkds
and BIND's parental-agents, but over DS RRsets each already validated."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import dns.name
import dns.rdtypes.ANY.DNSKEY
import dns.rdtypes.ANY.DS

from sigchain.core.dnssec import ds as ds_mod
from sigchain.core.rollover.planner import Observation, may_be_at_parent


@dataclass(frozen=True)
class ServerDs:
    """One parent server's DS RRset for the zone, validated from the trust anchor; `ds` is
    None when the server could not be asked or its answer did not validate (`error` says)."""

    server: str
    ds: tuple[dns.rdtypes.ANY.DS.DS, ...] | None
    error: str = ""

    def key_set(self) -> frozenset[tuple[int, int, int, bytes]]:
        return frozenset((d.key_tag, d.algorithm, d.digest_type, d.digest) for d in self.ds or ())


@dataclass(frozen=True)
class ZoneKey:
    """A key of the zone whose DS the parent may hold (a KSK or CSK) and what the key state
    already knows of its DS."""

    id: str
    tag: int
    dnskey: dns.rdtypes.ANY.DNSKEY.DNSKEY
    ds_published: int | None = None
    cds_withdrawn: int | None = None
    ds_withdrawn: int | None = None
    cds_published: int | None = None  # asked for: the DS may be at the parent unseen


@dataclass(frozen=True)
class KeyAtParent:
    key: ZoneKey
    present: tuple[str, ...]  # servers whose DS RRset names the key
    absent: tuple[str, ...]  # servers that answered, without it
    failed: tuple[str, ...]  # servers with no validated answer

    @property
    def state(self) -> str:
        """published (at every server) | withdrawn (at none) | disagree | unknown (a server
        failed, so "every" cannot be said)."""
        if self.failed:
            return "unknown"
        if self.present and self.absent:
            return "disagree"
        return "published" if self.present else "withdrawn"


@dataclass(frozen=True)
class Agreement:
    zone: dns.name.Name
    servers: tuple[ServerDs, ...]
    keys: tuple[KeyAtParent, ...]

    @property
    def failed(self) -> tuple[ServerDs, ...]:
        return tuple(s for s in self.servers if s.ds is None)

    @property
    def agree(self) -> bool:
        """Every server answered, validated, and all hold the same DS RRset."""
        return not self.failed and len({s.key_set() for s in self.servers}) <= 1


def judge(zone: dns.name.Name, servers: Sequence[ServerDs],
          keys: Iterable[ZoneKey]) -> Agreement:
    """Each key's DS at each server (a DS names a key when tag, algorithm and digest match)."""
    rows = []
    for k in keys:
        present, absent, failed = [], [], []
        for s in servers:
            if s.ds is None:
                failed.append(s.server)
            elif any(ds_mod.ds_matches(zone, d, k.dnskey) for d in s.ds):
                present.append(s.server)
            else:
                absent.append(s.server)
        rows.append(KeyAtParent(k, tuple(present), tuple(absent), tuple(failed)))
    return Agreement(zone, tuple(servers), tuple(rows))


@dataclass(frozen=True)
class Changes:
    record: tuple[Observation, ...]  # new observations (first seen now)
    forget: tuple[tuple[str, str], ...]  # (key, kind) of pending ones a disagreement resets


def observations(a: Agreement, existing: Iterable[Observation], now: int) -> Changes:
    """What the check tells the key state. A key's DS seen at every server is recorded as
    published since now unless an earlier check already saw it so (the first-seen time stays);
    gone from every server, withdrawn (only for a key whose DS was seen or asked for, and
    whose CDS is withdrawn). A check that cannot say "every server" resets a first-seen time
    the key state has not acted on yet, so the wait starts again when they agree."""
    have = {(o.key, o.kind) for o in existing}
    record: list[Observation] = []
    forget: list[tuple[str, str]] = []
    for row in a.keys:
        k = row.key
        pending_pub = k.ds_published is None
        # (a DS asked for and never seen counts: its absence is what a withdrawal waits for)
        pending_gone = may_be_at_parent(k) and k.cds_withdrawn is not None \
            and k.ds_withdrawn is None
        if row.state == "published" and pending_pub and (k.id, "ds-published") not in have:
            record.append(Observation(k.id, "ds-published", now))
        elif row.state == "withdrawn" and pending_gone and (k.id, "ds-withdrawn") not in have:
            record.append(Observation(k.id, "ds-withdrawn", now))
        if row.state != "published" and pending_pub and (k.id, "ds-published") in have:
            forget.append((k.id, "ds-published"))
        if row.state != "withdrawn" and pending_gone and (k.id, "ds-withdrawn") in have:
            forget.append((k.id, "ds-withdrawn"))
    return Changes(tuple(record), tuple(forget))


def disagreements(a: Agreement) -> list[str]:
    """One line per key the servers do not agree on (or could not be asked about), naming the
    zone, the key and the servers that still differ; and one for DS records of no known key."""
    lines = []
    zone = a.zone.to_text()
    for row in a.keys:
        tag = row.key.tag
        if row.state == "disagree":
            lines.append(f"zone {zone}: parent servers disagree on the DS of key {tag}: at "
                         f"{', '.join(row.present)}; not at {', '.join(row.absent)}")
        elif row.state == "unknown":
            lines.append(f"zone {zone}: DS of key {tag} unknown at "
                         f"{', '.join(row.failed)} (no validated answer)")
    known = {(r.key.tag, r.key.dnskey.algorithm) for r in a.keys}
    answered = [s for s in a.servers if s.ds is not None]
    others = {s.server: {(d.key_tag, d.algorithm) for d in s.ds or ()} - known for s in answered}
    if len({frozenset(v) for v in others.values()}) > 1:
        lines.append(f"zone {zone}: parent servers disagree on DS records of no key here: "
                     + "; ".join(f"{srv}: {', '.join(str(t) for t, _ in sorted(v)) or 'none'}"
                                 for srv, v in others.items()))
    return lines
