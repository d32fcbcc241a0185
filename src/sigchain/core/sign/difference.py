"""The difference one incremental change makes to a signed zone, as IXFR carries it: the
RRsets each change touched, as they were and as they are."""

from __future__ import annotations

from dataclasses import dataclass

from sigchain.core.zone.records import Key, RRsetRec

Ident = tuple[Key, int, int]  # owner, type, type covered (RRSIG) or 0
Record = tuple[Key, int, int, bytes]  # owner, TTL, type, rdata (canonical wire)


@dataclass(frozen=True)
class Diff:
    """One change to the signed zone as IXFR carries it (RFC 1995): RRsets removed (the old
    SOA first) and added (the new SOA first). An RRset that changed is in both."""

    removed: tuple[RRsetRec, ...]
    added: tuple[RRsetRec, ...]
    old_serial: int
    new_serial: int

    @property
    def empty(self) -> bool:
        return not self.removed and not self.added

    def records(self) -> tuple[frozenset[Record], frozenset[Record]]:
        """Record by record, as an IXFR body carries them (SOA included): deleted and added
        (owner, TTL, type, rdata wire); a record in both, TTL included, is left out."""
        old = {(r.key, r.ttl, r.rdtype, w) for r in self.removed for w in r.wires}
        new = {(r.key, r.ttl, r.rdtype, w) for r in self.added for w in r.wires}
        return frozenset(old - new), frozenset(new - old)


class Changes:
    """RRsets as they were before this change and as they are now, by identity."""

    def __init__(self) -> None:
        self.before: dict[Ident, RRsetRec | None] = {}
        self.after: dict[Ident, RRsetRec | None] = {}

    def note(self, ident: Ident, old: RRsetRec | None, new: RRsetRec | None) -> None:
        self.before.setdefault(ident, old)
        self.after[ident] = new

    def diff(self, old_serial: int, new_serial: int, soa: Ident) -> Diff:
        removed, added = [], []
        for ident, old in self.before.items():
            new = self.after[ident]
            if old == new:
                continue
            first = ident == soa
            if old is not None:
                removed.insert(0, old) if first else removed.append(old)
            if new is not None:
                added.insert(0, new) if first else added.append(new)
        return Diff(tuple(removed), tuple(added), old_serial, new_serial)


def put(store: dict[Key, dict[int, RRsetRec]], key: Key, rdtype: int,
         r: RRsetRec | None) -> RRsetRec | None:
    """Set or remove (None) one RRset of a by-owner store; gives the one it replaces."""
    node = store.get(key)
    old = None if node is None else node.get(rdtype)
    if r is not None:
        store.setdefault(key, {})[rdtype] = r
    elif node is not None:
        node.pop(rdtype, None)
        if not node:
            del store[key]
    return old


def same(a: RRsetRec | None, b: RRsetRec | None) -> bool:
    """The same records (the presentation text may differ: case, a reader's spelling)."""
    return a is b or (a is not None and b is not None and (a.ttl, a.wires) == (b.ttl, b.wires))


def soa_serial(soa: RRsetRec) -> int:
    return int(soa.texts[0].split()[2])
