"""Signatures remembered as verified, by the identity of the objects checked: a resolver's
upstream replies share their rdata objects (core/resolve/replywire.py) and its cache hands
out the same RRsets again, so a signature checked once is a dict hit the next time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dns.name

from sigchain.core.zone.sharedname import lower_labels
from sigchain.memo import Kept


class Verified:
    """A bounded memo of signature checks that succeeded, keyed by the owner the signature
    covers (by value, its labels lower-cased: a wildcard's expansions share their source), the
    RRset's type and class, and by identity the RRSIG rdata, the DNSKEY rdata and each signed
    rdata. Each entry holds those objects, so no id is reused while it is remembered, and a
    hit is checked object by object: an unverified signature never counts as verified."""

    __slots__ = ("_kept",)

    def __init__(self, size: int):
        self._kept: Kept[tuple[Any, ...], tuple[Any, ...]] = Kept(size)

    @staticmethod
    def _key(owner: dns.name.Name, rdtype: int, rdclass: int, sig: Any, key: Any,
             rdatas: Sequence[Any]) -> tuple[Any, ...]:
        return (lower_labels(owner), rdtype, rdclass, id(sig), id(key), *map(id, rdatas))

    def holds(self, owner: dns.name.Name, rdtype: int, rdclass: int, sig: Any, key: Any,
              rdatas: Sequence[Any]) -> bool:
        """Whether exactly this signature by this key over exactly these rdata verified."""
        entry = self._kept.get(self._key(owner, rdtype, rdclass, sig, key, rdatas))
        if entry is None or entry[0] is not sig or entry[1] is not key or len(entry[2]) != len(rdatas):
            return False
        return all(a is b for a, b in zip(entry[2], rdatas, strict=True))

    def add(self, owner: dns.name.Name, rdtype: int, rdclass: int, sig: Any, key: Any,
            rdatas: Sequence[Any]) -> None:
        """Remember a signature that verified (call only after the crypto said so)."""
        self._kept.keep(self._key(owner, rdtype, rdclass, sig, key, rdatas), (sig, key, tuple(rdatas)))
