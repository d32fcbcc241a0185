"""The NSEC and NSEC3 chains in canonical order, as entries the workers build the denial
records from (RFC 4034 §4, RFC 5155 §7.1)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from dns.rdatatype import RdataType

from sigchain.core.zone import nsec3hash
from sigchain.core.zone.records import Key, RRsetRec, b32hex, key_wire, name_of, type_bitmap
from sigchain.core.zone.shape import NodeKind, ZoneShape, nsec3_covered, nsec3_types, nsec_types
from sigchain.errors import UnsafeRefused


class Bitmaps:
    """The type bitmap (wire, text) of a name's NSEC or NSEC3 record. Bitmaps repeat (a few
    type combinations in the whole zone): each is computed once."""

    def __init__(self, kinds: Mapping[Key, NodeKind], types_at: Mapping[Key, tuple[int, ...]],
                 nsec3: bool) -> None:
        self.kinds, self.types_at, self.nsec3 = kinds, types_at, nsec3
        self.cache: dict[tuple[int, tuple[int, ...]], tuple[bytes, str]] = {}
        self.kind_codes = {kind: i for i, kind in enumerate(NodeKind)}

    def __call__(self, k: Key) -> tuple[bytes, str]:
        kind, types = self.kinds[k], self.types_at.get(k, ())
        code = self.kind_codes[kind]  # not keyed by the enum: its hash is slow
        got = self.cache.get((code, types))
        if got is None:
            wanted = nsec3_types(kind, types, True) if self.nsec3 else nsec_types(kind, types)
            got = self.cache[(code, types)] = type_bitmap(wanted)
        return got


def ring(items: list, i: int, j: int) -> list:  # type: ignore[type-arg]
    """items[i + 1 : j + 1], wrapping around to the first."""
    if j == i:
        return []
    return items[i + 1 : j + 1] if j < len(items) else items[i + 1 : j] + items[:1]


class Chain:
    """A denial chain: `items` in canonical order, `order(item)` its place among the data
    RRsets as (key, rdtype), `entries(i, j)` what the workers build items[i:j]'s records from."""

    items: list  # type: ignore[type-arg]

    def order(self, item: object) -> tuple[Key, int]:
        raise NotImplementedError

    def entries(self, i: int, j: int) -> list[tuple]:  # type: ignore[type-arg]
        raise NotImplementedError


class NsecChain(Chain):
    """Every authoritative name and delegation, in canonical order: entries are
    (key, owner text, next key, bitmap)."""

    def __init__(self, zshape: ZoneShape, data: Sequence[RRsetRec], bitmap: Bitmaps) -> None:
        kinds = zshape.kinds
        self.items = [
            k for k in zshape.order if kinds[k] in (NodeKind.APEX, NodeKind.AUTH, NodeKind.DELEGATION)
        ]
        self.owners = {r[0]: r[1] for r in data}
        self.bitmap = bitmap

    def order(self, item: object) -> tuple[Key, int]:
        return item, 1 << 16  # type: ignore[return-value]  # after the name's data RRsets

    def entries(self, i: int, j: int) -> list[tuple]:  # type: ignore[type-arg]
        chain = self.items
        here = chain[i:j]
        return list(zip(
            here, map(self.owners.__getitem__, here), ring(chain, i, j), map(self.bitmap, here), strict=True
        ))


class Nsec3Chain(Chain):
    """The hashed owner labels of the names NSEC3 covers, in order: entries are (hashed
    label, next hashed label, bitmap). Refuses hash collisions and real names that look
    like hashed owners."""

    def __init__(self, zshape: ZoneShape, types_at: Mapping[Key, tuple[int, ...]],
                 params: nsec3hash.Nsec3Params, okey: Key, bitmap: Bitmaps) -> None:
        self.okey = okey
        self.hashed = _hashed_owners(zshape, types_at, params, okey, bitmap)
        self.items = sorted(self.hashed)  # base32hex keeps the hashes' order

    def order(self, item: object) -> tuple[Key, int]:
        return self.okey + (item,), RdataType.NSEC3  # type: ignore[operator]

    def entries(self, i: int, j: int) -> list[tuple]:  # type: ignore[type-arg]
        chain = self.items
        here = chain[i:j]
        return list(zip(here, ring(chain, i, j), map(self.hashed.__getitem__, here), strict=True))


def _hashed_owners(zshape: ZoneShape, types_at: Mapping[Key, tuple[int, ...]],
                   p: nsec3hash.Nsec3Params, okey: Key, bitmap: Bitmaps) -> dict[bytes, tuple[bytes, str]]:
    """Hashed owner label → its type bitmap, for every name NSEC3 covers."""
    olen = len(okey)
    covered = nsec3_covered(zshape, types_at, p.opt_out)
    owire = key_wire(okey)
    salt, iterations = p.salt, p.iterations
    sha1 = hashlib.sha1

    def hashed_label(k: Key) -> bytes:
        if len(k) == olen + 1:  # most names: one label below the apex
            wire = bytes((len(k[-1]),)) + k[-1] + owire
        else:
            wire = key_wire(k)
        d = nsec3hash.nsec3_digest_wire(wire, salt, iterations) if iterations else sha1(wire + salt).digest()
        return b32hex(d).encode()

    hashed: dict[bytes, tuple[bytes, str]] = {}
    for k in covered:
        label = hashed_label(k)
        if label in hashed:
            other = next(o for o in covered if hashed_label(o) == label)
            raise UnsafeRefused(
                f"NSEC3 hash collision between {name_of(other)} and {name_of(k)}: choose another salt"
            )
        hashed[label] = bitmap(k)
    for k in types_at:  # a real name that looks like a hashed owner
        if len(k) == olen + 1 and k[-1] in hashed:
            raise UnsafeRefused(f"NSEC3 owner {name_of(k).to_text()} collides with a name in the zone")
    return hashed
