"""SharedName: a dnspython `Name` that keeps its lower-cased labels and its hash, for the names
the resolver meets again and again (the owners of upstream records, their zones and parents).
dnspython hashes a name and compares two names label by label, lower-casing each time, and
that was the largest part of validating a cold name; here both are tuple operations. Equality
stays case-insensitive (RFC 4343) and equal to dnspython's, and the hash is dnspython's own,
so shared and plain names mix as dict keys."""

from __future__ import annotations

from typing import Any

import dns.name

from sigchain.memo import Kept

MAX_SHARED = 10_000  # names kept for `shared` (all dropped when full)


class SharedName(dns.name.Name):
    """An absolute name with `key`, its labels lower-cased (root label included), and its
    hash computed once. Made by `shared`; methods dnspython implements by building a new
    name (split, concatenate, relativize…) return plain Names; `parent` returns a shared one.
Its presentation text is made once too."""

    __slots__ = ("key", "_hash", "_text")

    def __init__(self, labels: Any):
        super().__init__(labels)  # dnspython's checks: label and name lengths
        if not self.is_absolute():
            raise ValueError("a SharedName is absolute")
        object.__setattr__(self, "key", tuple(x.lower() for x in self.labels))
        object.__setattr__(self, "_hash", None)
        object.__setattr__(self, "_text", None)

    def __reduce__(self) -> tuple[Any, ...]:
        return (shared, (self.labels,))

    def __hash__(self) -> int:
        h = self._hash
        if h is None:  # dnspython's hash, so that an equal plain Name hashes the same
            h = 0
            for label in self.key:
                for c in label:
                    h += (h << 3) + c
            object.__setattr__(self, "_hash", h)
        return h

    def to_text(self, omit_final_dot: bool = False, style: Any = None) -> str:
        """dnspython's text; the usual form (final dot, default style) made once: the
        validator's links and proofs name the same zones and records for every name."""
        if omit_final_dot or style is not None:
            return super().to_text(omit_final_dot, style)
        text = self._text
        if text is None:
            text = super().to_text()
            object.__setattr__(self, "_text", text)
        return text

    def __eq__(self, other: object) -> bool:
        if other.__class__ is SharedName:
            return self is other or self.key == other.key  # type: ignore[attr-defined]
        return super().__eq__(other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def is_subdomain(self, other: dns.name.Name) -> bool:
        if other.__class__ is SharedName:
            mine, theirs = self.key, other.key  # type: ignore[attr-defined]
            n = len(theirs)
            return n <= len(mine) and mine[len(mine) - n:] == theirs
        return super().is_subdomain(other)

    def is_superdomain(self, other: dns.name.Name) -> bool:
        if other.__class__ is SharedName:
            return other.is_subdomain(self)
        return super().is_superdomain(other)

    def parent(self) -> dns.name.Name:
        if len(self.labels) == 1:
            raise dns.name.NoParent
        return shared(self.labels[1:])


_shared: Kept[tuple[bytes, ...], SharedName] = Kept(MAX_SHARED)


def shared(labels: tuple[bytes, ...]) -> dns.name.Name:
    """The SharedName for absolute `labels` (root label included), one object per spelling
    while remembered (a plain Name for relative labels); raises as dnspython does for a bad
    name (NameTooLong, LabelTooLong)."""
    name = _shared.get(labels)
    if name is None:
        if not labels or labels[-1] != b"":
            return dns.name.Name(labels)
        name = _shared.keep(labels, SharedName(labels))
    return name


def share(name: dns.name.Name) -> dns.name.Name:
    """`name` as a SharedName when it is absolute (relative names stay as they are)."""
    return name if name.__class__ is SharedName else shared(name.labels)


def lower_labels(name: dns.name.Name) -> tuple[bytes, ...]:
    """`name`'s labels lower-cased: a SharedName's kept tuple, else made now."""
    if name.__class__ is SharedName:
        return name.key  # type: ignore[attr-defined, no-any-return]
    return tuple(label.lower() for label in name.labels)
