"""A zone's RRsets as the update and the incremental signer see them (`ZoneData`), and the
change set an update makes (`ChangeSet`: RRsets removed and added, whole)."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Protocol

from sigchain.core.zone.records import Key, RRsetRec


class ZoneData(Protocol):
    """Read access to a zone's unsigned RRsets (no RRSIG, NSEC or NSEC3)."""

    @property
    def okey(self) -> Key: ...

    def rrset(self, key: Key, rdtype: int) -> RRsetRec | None: ...

    def types(self, key: Key) -> Collection[int]: ...


@dataclass(frozen=True)
class ChangeSet:
    """RRsets as they were (`removed`) and as they are (`added`): an RRset that changed is in
    both; one that went only in `removed`, a new one only in `added`."""

    removed: tuple[RRsetRec, ...] = ()
    added: tuple[RRsetRec, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.removed and not self.added

    def touched(self) -> set[tuple[Key, int]]:
        """The (owner, type) of every RRset that changed."""
        return {(r.key, r.rdtype) for r in self.removed} | {(r.key, r.rdtype) for r in self.added}


class DictZone:
    """A `ZoneData` over a dict (owner → type → RRset), changed in place by `apply`: the
    simple holder for tests and for a zone loaded from a file."""

    def __init__(self, okey: Key, rrsets: Iterator[RRsetRec] | list[RRsetRec]) -> None:
        self.okey = okey
        self.nodes: dict[Key, dict[int, RRsetRec]] = {}
        for r in rrsets:
            self.nodes.setdefault(r.key, {})[r.rdtype] = r

    def rrset(self, key: Key, rdtype: int) -> RRsetRec | None:
        node = self.nodes.get(key)
        return None if node is None else node.get(rdtype)

    def types(self, key: Key) -> Collection[int]:
        return self.nodes.get(key, {}).keys()

    def apply(self, changes: ChangeSet) -> None:
        for r in changes.removed:
            node = self.nodes.get(r.key, {})
            node.pop(r.rdtype, None)
            if not node:
                self.nodes.pop(r.key, None)
        for r in changes.added:
            self.nodes.setdefault(r.key, {})[r.rdtype] = r

    def all(self) -> list[RRsetRec]:
        return [r for node in self.nodes.values() for r in node.values()]
