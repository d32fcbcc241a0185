"""RRsets served from their wire: a zone read as wire (`ZoneIndex.from_wire`) keeps each
RRset's owner and records as the bytes answers are assembled from, and makes dnspython
rdata and owner Names only when something asks for them (a transfer, the message path)."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.set

_ITEMS = dns.set.Set.items  # the base classes' slots, filled on first use
_NAME = dns.rrset.RRset.name
_IN = dns.rdataclass.IN
_TYPES: dict[int, dns.rdatatype.RdataType] = {}
_HEAD = struct.Struct("!HHIH")  # type, class, TTL, rdata length (what follows the owner)


def _rdtype(value: int) -> dns.rdatatype.RdataType:
    t = _TYPES.get(value)
    if t is None:
        t = _TYPES[value] = dns.rdatatype.RdataType.make(value)
    return t


def tails_of(rdtype: int, ttl: int, rdatas: Iterable[bytes], rdclass: int = 1) -> tuple[bytes, ...]:
    """Each record's wire after its owner: type, class (IN), TTL, length, rdata."""
    return tuple(_HEAD.pack(rdtype, rdclass, ttl, len(d)) + d for d in rdatas)


class ServedRRset(dns.rrset.RRset):
    """A read-only dnspython RRset whose records are kept as wire: `owner` (the zone's letter
    case) and `tails` (each record after the owner, uncompressed). Its rdata and Name are
    made on first use; `len` and equality with another ServedRRset need neither. Copies are
    plain RRsets."""

    __slots__ = ("owner", "tails")
    _clone_class = dns.rrset.RRset

    def __init__(self, owner: bytes, rdtype: int, covers: int, ttl: int,
                 tails: tuple[bytes, ...]) -> None:
        # No super().__init__: `items` and `name` stay unset until asked for.
        self.rdclass = _IN
        self.rdtype = _rdtype(rdtype)
        self.covers = _rdtype(covers)
        self.ttl = ttl
        self.deleting = None
        self.owner = owner
        self.tails = tails

    def _get_items(self) -> dict[Any, None]:
        try:
            return _ITEMS.__get__(self)  # type: ignore[no-any-return]
        except AttributeError:
            rdtype = self.rdtype
            items = {dns.rdata.from_wire(_IN, rdtype, t, 10, len(t) - 10): None for t in self.tails}
            _ITEMS.__set__(self, items)
            return items

    def _set_items(self, value: dict[Any, None]) -> None:
        _ITEMS.__set__(self, value)

    items = property(_get_items, _set_items)  # type: ignore[assignment]

    def _get_name(self) -> dns.name.Name:
        try:
            return _NAME.__get__(self)  # type: ignore[no-any-return]
        except AttributeError:
            name = dns.name.from_wire(self.owner, 0)[0]
            _NAME.__set__(self, name)
            return name

    def _set_name(self, value: dns.name.Name) -> None:
        _NAME.__set__(self, value)

    name = property(_get_name, _set_name)  # type: ignore[assignment]

    def __len__(self) -> int:
        return len(self.tails)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ServedRRset):
            return (self.rdtype == other.rdtype and self.covers == other.covers
                    and self.owner.lower() == other.owner.lower()
                    and {t[10:] for t in self.tails} == {t[10:] for t in other.tails})
        return super().__eq__(other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = None  # type: ignore[assignment]  # as dnspython's RRset

    def with_ttl(self, ttl: int) -> ServedRRset:
        """The same records with another TTL (the negative-answer SOA, RFC 2308 §3)."""
        return ServedRRset(self.owner, self.rdtype, self.covers, ttl,
                           tuple(t[:4] + ttl.to_bytes(4, "big") + t[8:] for t in self.tails))


def rdata_of(tail: bytes) -> bytes:
    """The rdata wire of one of `ServedRRset.tails`."""
    return tail[10:]


class NamedNodes(Mapping[dns.name.Name, Any]):
    """A view of a mapping keyed by lower-cased wire names as one keyed by dnspython Names
    (made as they are iterated: the index keeps none)."""

    def __init__(self, by_key: Mapping[bytes, Any]) -> None:
        self._by_key = by_key

    def __getitem__(self, name: dns.name.Name) -> Any:
        return self._by_key[name.canonicalize().to_wire()]

    def __iter__(self) -> Iterator[dns.name.Name]:
        return (dns.name.from_wire(k, 0)[0] for k in self._by_key)

    def __len__(self) -> int:
        return len(self._by_key)


class One(Mapping[int, Any]):
    """A read-only mapping of one key (a type) to one value (an RRset): most names own one
    RRset and one RRSIG set, and this is a fifth of a one-entry dict's size."""

    __slots__ = ("key", "value")

    def __init__(self, key: int, value: Any) -> None:
        self.key = key
        self.value = value

    def __getitem__(self, key: int) -> Any:
        if key == self.key:
            return self.value
        raise KeyError(key)

    def get(self, key: int, default: Any = None) -> Any:
        return self.value if key == self.key else default

    def __contains__(self, key: object) -> bool:
        return key == self.key

    def __iter__(self) -> Iterator[int]:
        return iter((self.key,))

    def __len__(self) -> int:
        return 1


_EMPTY: dict[int, Any] = {}  # shared by every node without RRSIGs (never mutated)


def compact(mapping: Mapping[int, Any] | None) -> Mapping[int, Any]:
    """`mapping` as small as it can be held: shared when empty, a `One` with one entry."""
    if not mapping:
        return _EMPTY
    if isinstance(mapping, One):
        return mapping
    if len(mapping) == 1:
        return One(*next(iter(mapping.items())))
    return mapping
