"""The zone index: each served zone indexed once per load (`ZoneIndex.build`, `from_wire`),
its records' wire made once (`RecordWires`), and the set of zones one listener serves
(`ZoneSet`).

The index maps owner names → RRsets and their RRSIGs, holds the zone shape (delegations,
DNAMEs, empty non-terminals), the sorted NSEC owner list and the sorted NSEC3 hash list
(covering records found by bisection). Names are handled as keys: lower-cased wire names
(`wire_key`; dnspython's Name hashes and compares in Python, ~40 times slower), whose
parent is a slice.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rrset
from dns.rdatatype import RdataType

from sigchain.core.serve import persist
from sigchain.core.serve.cache import DEFAULT_CACHE_ENTRIES, ResponseCache
from sigchain.core.serve.limits import DEFAULT_UDP_SIZE
from sigchain.core.serve.rrsets import ServedRRset, rdata_of, tails_of
from sigchain.core.zone.nsec3hash import nsec3_digest_wire
from sigchain.core.zone.records import Key, key_of, key_wire
from sigchain.core.zone.shape import LABEL_KEYS, NodeKind, shape
from sigchain.core.zone.wire import WireRRset, key_from_labels, read_name
from sigchain.errors import InputError


@dataclass(frozen=True, slots=True)
class Node:
    """The RRsets owned by one name, and the RRSIGs over each (keyed by covered type)."""

    rrsets: Mapping[int, dns.rrset.RRset]
    sigs: Mapping[int, dns.rrset.RRset]



# An RRset's owner wire, its records' wire after the owner, and the RRset (held so that its
# id is not reused while the entry lives).
RecordWire = tuple[bytes, tuple[bytes, ...], dns.rrset.RRset]


class RecordWires:
    """Each RRset's owner wire (zone case) and its records' wire after the owner (type,
    class, TTL, length, uncompressed rdata), by the RRset's identity: made once per zone
    version and kept, so that answers are assembled by concatenation (`wire.render_sections`)."""

    __slots__ = ("_by_id", "get_id")

    def __init__(self) -> None:
        self._by_id: dict[int, RecordWire] = {}
        self.get_id = self._by_id.get  # by `id(rrset)`: one C call on the hot path

    def get(self, rrset: dns.rrset.RRset) -> RecordWire | None:
        return self._by_id.get(id(rrset))

    @staticmethod
    def make(rrset: dns.rrset.RRset, rdatas: Sequence[bytes]) -> RecordWire:
        """`rrset`'s wire from its records' rdata wires (in the RRset's order), not kept."""
        owner = rrset.name.to_wire()
        assert owner is not None
        return owner, tails_of(rrset.rdtype, rrset.ttl, rdatas, rrset.rdclass), rrset

    def keep(self, rrset: dns.rrset.RRset, rdatas: Sequence[bytes] | None = None) -> RecordWire:
        """Make (from `rdatas`, else by rendering the rdata) and keep `rrset`'s wire."""
        hit = self.make(rrset, [rd.to_wire() for rd in rrset] if rdatas is None else rdatas)
        self._by_id[id(rrset)] = hit
        return hit

    def __len__(self) -> int:
        return len(self._by_id)


def nsec3_label_digest(label: bytes) -> bytes | None:
    """The hash an NSEC3 owner label spells (base32hex), None when it spells none."""
    try:
        if len(label) % 8 == 0 and label.isalnum():  # base32hex digits are int()'s base 32
            return int(label, 32).to_bytes(len(label) * 5 // 8, "big")
        return base64.b32hexdecode(label.upper())
    except (binascii.Error, ValueError):
        return None


@dataclass(frozen=True)
class ZoneIndex:
    """One zone, indexed once per load so that answering is lookups and bisection."""

    origin: dns.name.Name
    nodes: Mapping[dns.name.Name, Node]  # every owner except NSEC3 owners
    denial: str  # "nsec" | "nsec3" | "none"
    nsec3_hashes: Sequence[bytes]  # sorted raw digests (a tuple, or `persist.Chunks`)
    nsec3_nodes: Mapping[bytes, Node]  # digest → NSEC3 RRset (+ its RRSIG)
    nsec3_salt: bytes
    nsec3_iterations: int
    soa: dns.rrset.RRset
    negative_soa: dns.rrset.RRset  # TTL min(SOA TTL, MINIMUM), RFC 2308 §3 / RFC 9077
    negative_soa_sig: dns.rrset.RRset | None
    # Names as `wire_key`s, for the lookup:
    okey: bytes
    by_key: Mapping[bytes, Node]  # = nodes
    kind_by_key: Mapping[bytes, NodeKind]  # zone shape: apex, auth, cuts, ENTs, occluded
    cut_keys: frozenset[bytes]  # delegation points below the apex
    dname_keys: frozenset[bytes]  # DNAME owners (RFC 6672)
    nsec_keys: Sequence[bytes]  # NSEC owners in canonical order (RFC 4034 §6.1)
    nsec_order: Sequence[Key]  # their `canonical_order` sort keys
    # (The maps of a big zone are `persist.ShardedMap`s and its sequences `persist.Chunks`:
    # the next version, `patched`, copies only the pieces a change touches.)
    # Made on first use and kept with this version of the zone (see `RecordWires`, `glue_of`).
    wires: RecordWires = field(default_factory=RecordWires, compare=False, repr=False)
    _glue: dict[bytes, tuple[bytes, ...]] = field(default_factory=dict, compare=False, repr=False)

    @property
    def serial(self) -> int:
        """The SOA serial: read from the record's wire (the serial is the fifth field from
        its end, RFC 1035 §3.3.13) without parsing it, which each worker did per update."""
        soa = self.soa
        if isinstance(soa, ServedRRset):
            return int.from_bytes(rdata_of(soa.tails[0])[-20:-16], "big")
        return int(soa[0].serial)  # type: ignore[attr-defined]

    @classmethod
    def build(
        cls, origin: dns.name.Name, zone: Mapping[dns.name.Name, Sequence[dns.rdataset.Rdataset]]
    ) -> ZoneIndex:
        """Index a loaded (signed or unsigned) zone: rdatasets per owner name, as `load_zone`.
        Names are handled as label keys (`core.records.key_of`: lower-cased labels from the
        root, which sort in canonical order) and become wire keys for the lookup."""
        okey = key_of(origin)
        names: dict[Key, dns.name.Name] = {}
        rrsets: dict[Key, dict[int, dns.rrset.RRset]] = {}
        sigs: dict[Key, dict[int, dns.rrset.RRset]] = {}
        nsec3_owner: dict[Key, dns.rrset.RRset] = {}
        for name, rdatasets in zone.items():
            k = key_of(name)
            names[k] = name
            for rds in rdatasets:
                rrset = _as_rrset(name, rds)
                if rds.rdtype == RdataType.RRSIG:
                    sigs.setdefault(k, {})[rds.covers] = rrset
                elif rds.rdtype == RdataType.NSEC3:
                    nsec3_owner[k] = rrset
                else:
                    rrsets.setdefault(k, {})[rds.rdtype] = rrset
        apex = rrsets.get(okey, {})
        soa = apex.get(RdataType.SOA)
        if soa is None:
            raise InputError(f"no SOA record at the zone apex {origin}")
        by_label = {k: Node(rs, sigs.get(k, {})) for k, rs in rrsets.items()}
        zshape = shape(okey, {k: set(rs) for k, rs in rrsets.items()}, ops=LABEL_KEYS)
        cuts = [k for k, kind in zshape.kinds.items() if kind is NodeKind.DELEGATION]
        dnames = [k for k, rs in rrsets.items()
                  if RdataType.DNAME in rs and zshape.kinds.get(k) is not NodeKind.OCCLUDED]
        nsec_owners = sorted(k for k, rs in rrsets.items() if RdataType.NSEC in rs)  # canonical
        nsec3_nodes: dict[bytes, Node] = {}
        salt, iterations = b"", 0
        param = apex.get(RdataType.NSEC3PARAM)
        for k, rrset in nsec3_owner.items():
            if len(k) != len(okey) + 1 or k[:-1] != okey:
                continue
            digest = nsec3_label_digest(k[-1])
            if digest is None:
                continue
            nsec3_nodes[digest] = Node({RdataType.NSEC3: rrset}, sigs.get(k, {}))
        if param is not None:
            salt, iterations = param[0].salt, param[0].iterations  # type: ignore[attr-defined]
        elif nsec3_nodes:
            first = next(iter(nsec3_nodes.values())).rrsets[RdataType.NSEC3][0]
            salt, iterations = first.salt, first.iterations  # type: ignore[attr-defined]
        if nsec3_nodes:
            denial = "nsec3"
        elif nsec_owners:
            denial = "nsec"
        else:
            denial = "none"

        minimum = min(soa.ttl, soa[0].minimum)  # type: ignore[attr-defined]
        neg_soa = dns.rrset.RRset(origin, soa.rdclass, RdataType.SOA)
        neg_soa.update(soa)
        neg_soa.ttl = minimum
        neg_sig = None
        soa_sig = sigs.get(okey, {}).get(RdataType.SOA)
        if soa_sig is not None:
            neg_sig = dns.rrset.RRset(origin, soa.rdclass, RdataType.RRSIG, RdataType.SOA)
            neg_sig.update(soa_sig)
            neg_sig.ttl = minimum
        return cls(
            origin=origin, nodes={names[k]: node for k, node in by_label.items()}, denial=denial,
            nsec3_hashes=tuple(sorted(nsec3_nodes)), nsec3_nodes=nsec3_nodes,
            nsec3_salt=salt, nsec3_iterations=iterations, soa=soa, negative_soa=neg_soa,
            negative_soa_sig=neg_sig, okey=key_wire(okey),
            by_key={key_wire(k): node for k, node in by_label.items()},
            kind_by_key={key_wire(k): kind for k, kind in zshape.kinds.items()},
            cut_keys=frozenset(map(key_wire, cuts)), dname_keys=frozenset(map(key_wire, dnames)),
            nsec_keys=tuple(map(key_wire, nsec_owners)), nsec_order=tuple(nsec_owners),
        )

    @classmethod
    def from_wire(cls, origin: dns.name.Name, rrsets: Iterable[WireRRset]) -> ZoneIndex:
        """Index a zone read as canonical wire RRsets (`zonefile.load_wire`): every RRset
        becomes a `ServedRRset` that keeps its records as the wire answers are assembled from
        (dnspython rdata only when a transfer or the message path asks) — so rdata names are
        served in canonical (lower) case, which validators compare anyway (RFC 4034 §6.2).
        The same index as `build` gives for the same records."""
        from sigchain.core.serve.fromwire import WireIndexer  # it builds on this module

        return WireIndexer(origin).add_all(rrsets).index()

    @classmethod
    def from_served(cls, origin: dns.name.Name, records: Iterable[tuple]) -> ZoneIndex:  # type: ignore[type-arg]
        """`from_wire` of RRsets already in `fromwire.served_form`."""
        from sigchain.core.serve.fromwire import WireIndexer

        return WireIndexer(origin).add_served(records).index()

    def patched(self, removed: Iterable[tuple], added: Iterable[tuple]) -> ZoneIndex:  # type: ignore[type-arg]
        """The next version: this one with the RRsets `removed` taken out (by owner, type
        and covered type) and `added` put in, both in `served_form` — the index `from_served`
        gives for the whole new zone, made in the time of the change. This one is left as it
        was and shares every unchanged node with the new one (`core.serve.patch`)."""
        from sigchain.core.serve.patch import patch_index

        return patch_index(self, removed, added)

    def glue_of(self, cut: bytes) -> tuple[bytes, ...]:
        """Keys of the in-zone NS targets of the delegation at `cut` that have records."""
        hit = self._glue.get(cut)
        if hit is None:
            ns = self.by_key[cut].rrsets[RdataType.NS]
            if isinstance(ns, ServedRRset):  # NS rdata is the target's canonical wire: its key
                targets: Iterable[bytes] = map(rdata_of, ns.tails)
            else:
                targets = (wire_key(rd.target) for rd in ns)  # type: ignore[attr-defined]
            hit = self._glue[cut] = tuple(
                t for t in dict.fromkeys(targets) if t in self.by_key and within(t, self.okey))
        return hit

    # ---- denial-of-existence lookups (names as keys: lower-cased wire, see `wire_key`) ------

    def covering_nsec(self, key: bytes) -> bytes:
        """Key of the NSEC owner whose span holds `key` (or matches it), RFC 4034 §4.1.1."""
        # below the first it wraps to the last NSEC (it points at the apex)
        return persist.cover(self.nsec_order, canonical_order(key), self.nsec_keys)  # type: ignore[no-any-return]

    def nsec3_hash(self, key: bytes) -> bytes:
        return nsec3_digest_wire(key, self.nsec3_salt, self.nsec3_iterations)

    def nsec3_match(self, key: bytes) -> bytes | None:
        h = self.nsec3_hash(key)
        return h if h in self.nsec3_nodes else None

    def nsec3_cover(self, key: bytes) -> bytes:
        """Digest of the NSEC3 record whose hash span covers H(name) (RFC 5155 §7.2.1)."""
        h = self.nsec3_hash(key)
        return persist.cover(self.nsec3_hashes, h)  # type: ignore[no-any-return]  # wraps: the last covers past the end

    def closest_provable_encloser(self, key: bytes) -> tuple[bytes, bytes]:
        """(matching NSEC3 digest, next closer name) for `key` (RFC 5155 §7.2.1, §8.3)."""
        candidate = key
        while len(candidate) > len(self.okey):
            up = parent(candidate)
            h = self.nsec3_match(up)
            if h is not None:
                return h, candidate
            candidate = up
        raise LookupError(f"no NSEC3 record matches the apex {self.origin}")


def _as_rrset(name: dns.name.Name, rds: dns.rdataset.Rdataset) -> dns.rrset.RRset:
    """`rds` as an RRset owned by `name`. Measured: `RRset.update` re-hashes every rdata (a
    wire rendering each) and was most of `build`; copying the set's dict keeps the hashes,
    as dnspython's own `Set._clone` does."""
    if isinstance(rds, dns.rrset.RRset) and rds.name == name:
        return rds
    rrset = dns.rrset.RRset(name, rds.rdclass, rds.rdtype, rds.covers)
    rrset.ttl = rds.ttl
    rrset.items.update(rds.items)
    return rrset


# ---- names as keys -------------------------------------------------------------------------
# The lookup runs on lower-cased wire names (`bytes`): hashing and slicing them is C-fast,
# where dnspython's Name hashes and compares in Python. A key's parent is a slice.


def wire_key(name: dns.name.Name) -> bytes:
    """An absolute name's lower-cased wire form (its canonical form, RFC 4034 §6.2)."""
    return key_wire(key_of(name))


def parent(key: bytes) -> bytes:
    """The key of a (non-root) key's parent name."""
    return key[key[0] + 1:]


def canonical_order(key: bytes) -> Key:
    """Sort key of RFC 4034 §6.1 canonical name order: the label key (core/zone/records)."""
    return key_from_labels(read_name(key, 0)[0])


def within(key: bytes, origin: bytes) -> bool:
    """Is `key` at or below `origin` (label-aligned)?"""
    while len(key) > len(origin):
        key = parent(key)
    return key == origin


def key_name(key: bytes) -> dns.name.Name:
    """A key as a dnspython name (lower case)."""
    return dns.name.from_wire(key, 0)[0]


class ZoneSet:
    """The immutable set of zones one listener serves, our EDNS UDP size, and the cache of
    rendered answers that goes with this version of the zones (`cache`, empty when made)."""

    def __init__(
        self,
        zones: Iterable[ZoneIndex] = (),
        *,
        udp_size: int = DEFAULT_UDP_SIZE,
        cache_entries: int = DEFAULT_CACHE_ENTRIES,
        cache: ResponseCache | None = None,  # an empty one (sharing a budget with others)
    ):
        self.zones: dict[dns.name.Name, ZoneIndex] = {z.origin: z for z in zones}
        self.by_key: dict[bytes, ZoneIndex] = {z.okey: z for z in self.zones.values()}
        self.udp_size = udp_size
        self.cache = ResponseCache(cache_entries) if cache is None else cache

    def replace(self, zone: ZoneIndex) -> ZoneSet:
        """A new set with `zone` added or swapped in (empty cache); this one is untouched."""
        zones = dict(self.zones)
        zones[zone.origin] = zone
        return ZoneSet(zones.values(), udp_size=self.udp_size, cache_entries=self.cache.entries)

    def find(self, qname: dns.name.Name, qtype: int) -> ZoneIndex | None:
        return self.find_key(wire_key(qname), qtype)

    def find_key(self, key: bytes, qtype: int) -> ZoneIndex | None:
        """The closest enclosing served zone; for DS at a served apex, its parent's zone
        when we serve that too, else the zone itself: its authoritative NODATA, with the
        apex's NSEC/NSEC3 (RFC 4035 §3.1.4.1), not a REFUSED that makes a resolver call the
        server lame (as BIND)."""
        if qtype == RdataType.DS and key in self.by_key and len(key) > 1:
            return self.find_key(parent(key), RdataType.NS) or self.by_key[key]
        while True:
            z = self.by_key.get(key)
            if z is not None:
                return z
            if len(key) <= 1:
                return None
            key = parent(key)

    @property
    def cached(self) -> int:
        return len(self.cache)
