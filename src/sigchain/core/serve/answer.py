"""Authoritative answers (pure): served zones + a query → a response.

RFC 1034 §4.3.2 (the lookup algorithm), RFC 4035 §3.1 (DNSSEC records in responses),
RFC 5155 §7.2 (NSEC3 proofs), RFC 4592 (wildcards), RFC 6672 (DNAME), RFC 6891 (EDNS0),
RFC 2308 §3 (negative answers), RFC 6604 (rcode after a CNAME chain).

Each zone is indexed once per load (`ZoneIndex.build`): owner name → RRsets and their
RRSIGs, the zone shape (delegations, DNAMEs, empty non-terminals), the sorted NSEC owner list
and the sorted NSEC3 hash list (covering records found by bisection). The lookup runs on
lower-cased wire names as keys (dnspython's Name hashes and compares in Python, ~40 times
slower). Each RRset's records are rendered to wire once, on first use (`ZoneIndex.wire_of`),
and a response is assembled by concatenating them behind compressed owner names
(`render_sections`); dnspython builds and renders messages only for the unusual queries
(`answer`, `render`: meta types, TC, malformed). A `ZoneSet` is the immutable set of zones
one listener serves; it memoises rendered answers keyed by (lower-cased qname, qtype, DO,
EDNS) with the ID, RD/CD bits and the question's letter case patched in per query
(`respond`), so a hot name costs one dict lookup and a few byte copies. As in BIND, answers
are in the zone's letter case; only the question echoes the client's (nothing is compressed
against a mixed-case question, so patching it is safe).
Swapping zones means building a new `ZoneSet` (its cache starts empty): no invalidation.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.renderer
import dns.rrset
from dns.rdatatype import RdataType

from sigchain.core.zone.nsec3hash import nsec3_digest_wire
from sigchain.core.zone.records import Key, key_of, key_wire
from sigchain.core.zone.shape import LABEL_KEYS, NodeKind, shape
from sigchain.core.zone.wire import WireRRset, key_from_labels, read_name
from sigchain.errors import InputError

DEFAULT_UDP_SIZE = 1232  # advertised and used as our UDP ceiling (DNS flag day 2020, BIND)
MIN_UDP_SIZE = 512  # RFC 1035 §4.2.1; RFC 6891 §6.2.5: smaller EDNS sizes count as 512
TCP_MAX = 65535
MAX_CHAIN = 16  # CNAME/DNAME links followed inside a zone before giving up
DEFAULT_CACHE_ENTRIES = 200_000

_NSEC3_FLAG_OPTOUT = 0x01
_META_FORMERR = frozenset({RdataType.OPT, RdataType.TSIG, RdataType.TKEY})
_META_NOTIMP = frozenset({RdataType.MAILA, RdataType.MAILB})
_XFR = frozenset({RdataType.AXFR, RdataType.IXFR})
_ADDRESS = (RdataType.A, RdataType.AAAA)
# Only zone answers are memoised (REFUSED/FORMERR stay cheap and unbounded otherwise).
_MEMO_RCODES = frozenset({dns.rcode.NOERROR, dns.rcode.NXDOMAIN, dns.rcode.YXDOMAIN})


@dataclass(frozen=True, slots=True)
class Node:
    """The RRsets owned by one name, and the RRSIGs over each (keyed by covered type)."""

    rrsets: Mapping[int, dns.rrset.RRset]
    sigs: Mapping[int, dns.rrset.RRset]


@dataclass(frozen=True)
class ZoneIndex:
    """One zone, indexed once per load so that answering is lookups and bisection."""

    origin: dns.name.Name
    nodes: Mapping[dns.name.Name, Node]  # every owner except NSEC3 owners
    denial: str  # "nsec" | "nsec3" | "none"
    nsec3_hashes: tuple[bytes, ...]  # sorted raw digests
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
    nsec_keys: tuple[bytes, ...]  # NSEC owners in canonical order (RFC 4034 §6.1)
    nsec_order: tuple[Key, ...]  # their `canonical_order` sort keys
    # Made on first use and kept with this version of the zone (see `wire_of`, `glue_of`).
    _wire: dict[int, tuple[dns.rrset.RRset, bytes, tuple[bytes, ...]]] = field(
        default_factory=dict, compare=False, repr=False)
    _glue: dict[bytes, tuple[bytes, ...]] = field(default_factory=dict, compare=False, repr=False)

    @property
    def serial(self) -> int:
        return int(self.soa[0].serial)  # type: ignore[attr-defined]

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
            try:
                digest = base64.b32hexdecode(k[-1].upper())
            except (binascii.Error, ValueError):
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
        """Index a zone read as canonical wire RRsets (`zonefile.load_wire`): the records
        become dnspython rdata (for transfers and the unusual queries) and their wire is kept
        as the pre-rendered form — so rdata names are served in canonical (lower) case, which
        validators compare anyway (RFC 4034 §6.2)."""
        names: dict[str, dns.name.Name] = {}
        nodes: dict[dns.name.Name, list[dns.rdataset.Rdataset]] = {}
        seeds = []
        for r in rrsets:
            name = names.get(r.owner)
            if name is None:
                name = names[r.owner] = dns.name.from_text(r.owner)
            covers = (r.wires[0][0] << 8 | r.wires[0][1]) if r.rdtype == RdataType.RRSIG else 0
            rrset = dns.rrset.RRset(name, dns.rdataclass.IN, r.rdtype, covers)
            rrset.update_ttl(r.ttl)
            for wire in r.wires:
                rrset.add(dns.rdata.from_wire(dns.rdataclass.IN, r.rdtype, wire, 0, len(wire)))
            nodes.setdefault(name, []).append(rrset)
            seeds.append((rrset, r.wires))
        index = cls.build(origin, nodes)
        for rrset, wires in seeds:
            index._keep(rrset, wires)
        # The RRsets `build` made (the negative-answer SOA): rendered now too, so that the UDP
        # workers forked after loading share every record's wire and no query renders one.
        index.wire_of(index.negative_soa)
        if index.negative_soa_sig is not None:
            index.wire_of(index.negative_soa_sig)
        return index

    def glue_of(self, cut: bytes) -> tuple[bytes, ...]:
        """Keys of the in-zone NS targets of the delegation at `cut` that have records."""
        hit = self._glue.get(cut)
        if hit is None:
            targets = (wire_key(ns.target) for ns in self.by_key[cut].rrsets[RdataType.NS])  # type: ignore[attr-defined]
            hit = self._glue[cut] = tuple(
                t for t in dict.fromkeys(targets) if t in self.by_key and _within(t, self.okey))
        return hit

    # ---- denial-of-existence lookups (names as keys: lower-cased wire, see `wire_key`) ------

    def covering_nsec(self, key: bytes) -> bytes:
        """Key of the NSEC owner whose span holds `key` (or matches it), RFC 4034 §4.1.1."""
        i = bisect.bisect_right(self.nsec_order, canonical_order(key)) - 1
        return self.nsec_keys[i]  # i == -1 wraps to the last NSEC (it points at the apex)

    def nsec3_hash(self, key: bytes) -> bytes:
        return nsec3_digest_wire(key, self.nsec3_salt, self.nsec3_iterations)

    def nsec3_match(self, key: bytes) -> bytes | None:
        h = self.nsec3_hash(key)
        return h if h in self.nsec3_nodes else None

    def nsec3_cover(self, key: bytes) -> bytes:
        """Digest of the NSEC3 record whose hash span covers H(name) (RFC 5155 §7.2.1)."""
        h = self.nsec3_hash(key)
        i = bisect.bisect_right(self.nsec3_hashes, h) - 1
        return self.nsec3_hashes[i]  # -1 wraps: the last NSEC3 covers past the end

    def closest_provable_encloser(self, key: bytes) -> tuple[bytes, bytes]:
        """(matching NSEC3 digest, next closer name) for `key` (RFC 5155 §7.2.1, §8.3)."""
        candidate = key
        while len(candidate) > len(self.okey):
            parent = _parent(candidate)
            h = self.nsec3_match(parent)
            if h is not None:
                return h, candidate
            candidate = parent
        raise LookupError(f"no NSEC3 record matches the apex {self.origin}")

    def wire_of(self, rrset: dns.rrset.RRset, keep: bool = True) -> tuple[bytes, tuple[bytes, ...]]:
        """The owner's wire (zone case) and each record's wire after the owner (type, class,
        TTL, length, uncompressed rdata) of an RRset: for this zone's own RRsets made once and
        kept (`keep`), for one made for a single answer (a DNAME's CNAME) made afresh."""
        hit = self._wire.get(id(rrset)) if keep else None
        if hit is None:
            hit = self._keep(rrset, [rd.to_wire() for rd in rrset], keep)
        return hit[1], hit[2]

    def _keep(self, rrset: dns.rrset.RRset, rdatas: Sequence[bytes], keep: bool = True,
              ) -> tuple[dns.rrset.RRset, bytes, tuple[bytes, ...]]:
        """`rrset`'s owner wire and its records' wire after the owner, from its rdata wires
        (in the RRset's order), kept for `wire_of` unless `keep` is false."""
        head = struct.pack("!HHI", rrset.rdtype, rrset.rdclass, rrset.ttl)
        owner = rrset.name.to_wire()
        assert owner is not None
        hit = (rrset, owner, tuple(head + struct.pack("!H", len(d)) + d for d in rdatas))
        if keep:
            self._wire[id(rrset)] = hit  # holding the RRset keeps its id from being reused
        return hit


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


def _parent(key: bytes) -> bytes:
    return key[key[0] + 1:]


def canonical_order(key: bytes) -> Key:
    """Sort key of RFC 4034 §6.1 canonical name order: the label key (core/zone/records)."""
    return key_from_labels(read_name(key, 0)[0])


def _within(key: bytes, origin: bytes) -> bool:
    """Is `key` at or below `origin` (label-aligned)?"""
    while len(key) > len(origin):
        key = _parent(key)
    return key == origin


def _key_name(key: bytes) -> dns.name.Name:
    return dns.name.from_wire(key, 0)[0]


# ---- the lookup ----------------------------------------------------------------------------

Item = tuple[bytes | None, dns.rrset.RRset]  # (owner when synthesised — a wildcard — else None, RRset)


@dataclass
class Sections:
    """What a lookup produced, before it is put in a message: RRsets of the zone, each with
    the owner it is given when a wildcard synthesises it (RFC 4592 §4.3.3)."""

    rcode: int = dns.rcode.NOERROR
    aa: bool = True
    answer: list[Item] = field(default_factory=list)
    authority: list[Item] = field(default_factory=list)
    additional: list[Item] = field(default_factory=list)
    transient: set[int] = field(default_factory=set)  # ids of RRsets made for this answer
    _seen: set[tuple[str, bytes | None, int]] = field(default_factory=set)

    def add(self, section: str, rrset: dns.rrset.RRset | None, owner: bytes | None = None) -> None:
        if rrset is None:
            return
        key = (section, owner, id(rrset))  # the zone's RRsets live as long as the lookup
        if key in self._seen:
            return
        self._seen.add(key)
        getattr(self, section).append((owner, rrset))


def _renamed(rrset: dns.rrset.RRset, owner: dns.name.Name) -> dns.rrset.RRset:
    """A copy of `rrset` with another owner (wildcard synthesis, RFC 4592 §4.3.3)."""
    out = dns.rrset.RRset(owner, rrset.rdclass, rrset.rdtype, rrset.covers)
    out.update(rrset)
    return out


def rrsets(items: list[Item]) -> list[dns.rrset.RRset]:
    """A section's items as dnspython RRsets (synthesised owners applied)."""
    return [rrset if owner is None else _renamed(rrset, _key_name(owner)) for owner, rrset in items]


class _Lookup:
    """RFC 1034 §4.3.2 inside one zone, with the DNSSEC records of RFC 4035 §3.1 when `do`.
    Names are keys (`wire_key`); `synth` is the queried key when a wildcard answers."""

    def __init__(self, zone: ZoneIndex, do: bool):
        self.z = zone
        self.do = do and zone.denial != "none"
        self.s = Sections()

    # -- helpers --
    def _rrset(self, section: str, node: Node, rdtype: int, synth: bytes | None = None) -> None:
        self.s.add(section, node.rrsets[rdtype], synth)
        if self.do:
            self.s.add(section, node.sigs.get(rdtype), synth)

    def _soa(self) -> None:
        self.s.add("authority", self.z.negative_soa)
        if self.do:
            self.s.add("authority", self.z.negative_soa_sig)

    def _nsec(self, owner: bytes) -> None:
        self._rrset("authority", self.z.by_key[owner], RdataType.NSEC)

    def _nsec3(self, digest: bytes) -> None:
        node = self.z.nsec3_nodes[digest]
        self.s.add("authority", node.rrsets[RdataType.NSEC3])
        self.s.add("authority", node.sigs.get(RdataType.NSEC3))

    def _nsec3_closest_encloser(self, key: bytes) -> bytes:
        """Closest (provable) encloser proof: CE match + next closer cover (RFC 5155 §7.2.1)."""
        ce_hash, next_closer = self.z.closest_provable_encloser(key)
        self._nsec3(ce_hash)
        self._nsec3(self.z.nsec3_cover(next_closer))
        return _parent(next_closer)

    # -- denial --
    def nodata_proof(self, key: bytes, existing: bool) -> None:
        """NODATA: NSEC at the name (RFC 4035 §3.1.3.1) — or covering it for an ENT —
        or the matching NSEC3 (RFC 5155 §7.2.3), else the opt-out proof (§7.2.4)."""
        if not self.do:
            return
        if self.z.denial == "nsec":
            node = self.z.by_key.get(key)
            if existing and node is not None and RdataType.NSEC in node.rrsets:
                self._nsec(key)
            else:
                self._nsec(self.z.covering_nsec(key))
        else:
            h = self.z.nsec3_match(key)
            if h is not None:
                self._nsec3(h)
            else:
                self._nsec3_closest_encloser(key)

    def nxdomain_proof(self, key: bytes, ce: bytes) -> None:
        """NXDOMAIN: name and wildcard denied (RFC 4035 §3.1.3.2, RFC 5155 §7.2.2)."""
        if not self.do:
            return
        if self.z.denial == "nsec":
            self._nsec(self.z.covering_nsec(key))
            self._nsec(self.z.covering_nsec(b"\x01*" + ce))
        else:
            ce = self._nsec3_closest_encloser(key)
            self._nsec3(self.z.nsec3_cover(b"\x01*" + ce))

    def wildcard_proof(self, key: bytes, ce: bytes) -> None:
        """A wildcard answer proves that `key` itself does not exist: the NSEC covering it
        (RFC 4035 §3.1.3.3), the NSEC3 covering the next closer name (RFC 5155 §7.2.6)."""
        if not self.do:
            return
        if self.z.denial == "nsec":
            self._nsec(self.z.covering_nsec(key))
        else:
            next_closer = key
            while _parent(next_closer) != ce:
                next_closer = _parent(next_closer)
            self._nsec3(self.z.nsec3_cover(next_closer))

    def wildcard_nodata_proof(self, key: bytes, ce: bytes, wild: bytes) -> None:
        """Wildcard NODATA (RFC 4035 §3.1.3.4, RFC 5155 §7.2.5)."""
        if not self.do:
            return
        if self.z.denial == "nsec":
            self._nsec(self.z.covering_nsec(key))
            self._nsec(wild)
        else:
            self._nsec3_closest_encloser(key)
            h = self.z.nsec3_match(wild)
            if h is not None:
                self._nsec3(h)

    # -- referral --
    def referral(self, cut: bytes) -> None:
        """Delegation (RFC 1034 §4.3.2 step 3b; RFC 4035 §3.1.4): NS, DS or proof of no DS,
        glue. AA is off."""
        s, z = self.s, self.z
        node = z.by_key[cut]
        s.aa = False
        s.add("authority", node.rrsets[RdataType.NS])
        if self.do:
            if RdataType.DS in node.rrsets:
                self._rrset("authority", node, RdataType.DS)
            elif z.denial == "nsec":
                self._nsec(cut)
            else:
                h = z.nsec3_match(cut)
                if h is not None:
                    self._nsec3(h)
                else:  # opt-out: closest provable encloser (RFC 5155 §7.2.7)
                    self._nsec3_closest_encloser(cut)
        for target in z.glue_of(cut):
            glue = z.by_key[target]
            for t in _ADDRESS:
                if t in glue.rrsets:
                    s.add("additional", glue.rrsets[t])

    # -- the algorithm --
    def run(self, key: bytes, qtype: int) -> Sections:
        for _ in range(MAX_CHAIN):
            target = self._step(key, qtype)
            if target is None or not _within(target, self.z.okey):
                return self.s
            key = target
        return self.s

    def _cut_above(self, key: bytes, qtype: int) -> tuple[str, bytes] | None:
        """The topmost zone cut or DNAME on the way from the apex down to `key`."""
        z = self.z
        if not z.cut_keys and not z.dname_keys:
            return None
        chain = [key]
        while len(chain[-1]) > len(z.okey):
            chain.append(_parent(chain[-1]))
        for anc in reversed(chain):
            if anc in z.cut_keys:
                if anc == key and qtype == RdataType.DS:
                    return None  # DS lives on the parent side: answer it here (RFC 4035 §3.1.4.1)
                return ("cut", anc)
            if anc in z.dname_keys and anc != key:
                return ("dname", anc)
        return None

    def _step(self, key: bytes, qtype: int) -> bytes | None:
        """Answer `key`/`qtype`; return a CNAME/DNAME target to follow, else None."""
        z, s = self.z, self.s
        cut = self._cut_above(key, qtype)
        if cut is not None:
            kind, at = cut
            if kind == "cut":
                if not s.answer:
                    self.referral(at)
                return None
            return self._dname(key, at)

        node = z.by_key.get(key)
        if node is not None:
            return self._at_node(node, key, None, qtype)
        if z.kind_by_key.get(key) is NodeKind.ENT:
            self._soa()
            self.nodata_proof(key, existing=False)
            return None

        # The name does not exist: find the closest encloser, then the wildcard (RFC 4592 §4.3.2).
        ce = _parent(key)
        while ce not in z.kind_by_key and len(ce) > len(z.okey):
            ce = _parent(ce)
        wild = b"\x01*" + ce
        wnode = z.by_key.get(wild)
        if wnode is None:
            s.rcode = dns.rcode.NXDOMAIN
            self._soa()
            self.nxdomain_proof(key, ce)
            return None
        if qtype in wnode.rrsets or qtype == RdataType.ANY or RdataType.CNAME in wnode.rrsets:
            target = self._at_node(wnode, key, key, qtype)
            self.wildcard_proof(key, ce)
            return target
        self._soa()
        self.wildcard_nodata_proof(key, ce, wild)
        return None

    def _at_node(self, node: Node, key: bytes, synth: bytes | None, qtype: int) -> bytes | None:
        """Answer from an existing node (`synth`: the queried key when a wildcard answers)."""
        if qtype == RdataType.ANY:  # every RRset and its RRSIGs, DO or not (as BIND)
            for t in sorted(node.rrsets):
                self.s.add("answer", node.rrsets[t], synth)
                if self.z.denial != "none":
                    self.s.add("answer", node.sigs.get(t), synth)
            return None
        if qtype == RdataType.RRSIG and synth is None and node.sigs:
            for t in sorted(node.sigs):
                self.s.add("answer", node.sigs[t])
            return None
        if qtype in node.rrsets:
            self._rrset("answer", node, qtype, synth)
            return None
        if RdataType.CNAME in node.rrsets:
            self._rrset("answer", node, RdataType.CNAME, synth)
            return wire_key(node.rrsets[RdataType.CNAME][0].target)  # type: ignore[attr-defined]
        self._soa()
        self.nodata_proof(key, existing=True)
        return None

    def _dname(self, key: bytes, at: bytes) -> bytes | None:
        """DNAME substitution with an unsigned synthesized CNAME (RFC 6672 §3.2, §5.3.1)."""
        node = self.z.by_key[at]
        dname = node.rrsets[RdataType.DNAME]
        self._rrset("answer", node, RdataType.DNAME)
        name = _key_name(key)
        try:
            target = name.relativize(_key_name(at)).concatenate(dname[0].target)  # type: ignore[attr-defined]
        except dns.name.NameTooLong:
            self.s.rcode = dns.rcode.YXDOMAIN
            return None
        cname = dns.rrset.from_text(name, dname.ttl, "IN", "CNAME", target.to_text())
        self.s.transient.add(id(cname))
        self.s.add("answer", cname)
        return wire_key(target)


def lookup(zone: ZoneIndex, qname: dns.name.Name | bytes, qtype: int, do: bool) -> Sections:
    """The authoritative answer from one zone for `qname`/`qtype` (no message framing)."""
    key = qname if isinstance(qname, bytes) else wire_key(qname)
    return _Lookup(zone, do).run(key, qtype)


# ---- the served set, messages and wire -----------------------------------------------------


class ZoneSet:
    """The zones one listener serves, plus a memo of rendered answers (see module doc)."""

    def __init__(
        self,
        zones: Iterable[ZoneIndex] = (),
        *,
        udp_size: int = DEFAULT_UDP_SIZE,
        cache_entries: int = DEFAULT_CACHE_ENTRIES,
    ):
        self.zones: dict[dns.name.Name, ZoneIndex] = {z.origin: z for z in zones}
        self.by_key: dict[bytes, ZoneIndex] = {z.okey: z for z in self.zones.values()}
        self.udp_size = udp_size
        self.cache_entries = cache_entries
        self._wire: dict[tuple[bytes, int, bool, bool, bool], tuple[bytes, int]] = {}

    def replace(self, zone: ZoneIndex) -> ZoneSet:
        """A new set with `zone` added or swapped in (empty cache); this one is untouched."""
        zones = dict(self.zones)
        zones[zone.origin] = zone
        return ZoneSet(zones.values(), udp_size=self.udp_size, cache_entries=self.cache_entries)

    def find(self, qname: dns.name.Name, qtype: int) -> ZoneIndex | None:
        return self.find_key(wire_key(qname), qtype)

    def find_key(self, key: bytes, qtype: int) -> ZoneIndex | None:
        """The closest enclosing served zone; for DS at a served apex, its parent's zone
        when we serve that too (RFC 4035 §3.1.4.1)."""
        if qtype == RdataType.DS and key in self.by_key and len(key) > 1:
            key = _parent(key)
        while True:
            z = self.by_key.get(key)
            if z is not None:
                return z
            if len(key) <= 1:
                return None
            key = _parent(key)

    @property
    def cached(self) -> int:
        return len(self._wire)


def _error(query: dns.message.Message, rcode: int, udp_size: int) -> dns.message.Message:
    """A response with no data: FORMERR, NOTIMP, REFUSED, BADVERS (question echoed)."""
    response = dns.message.Message(id=query.id)
    response.flags = dns.flags.QR | (query.flags & (dns.flags.RD | dns.flags.CD))
    response.set_opcode(query.opcode())
    response.question = list(query.question)
    if query.edns >= 0:
        response.use_edns(0, query.ednsflags & dns.flags.DO, udp_size)
    response.set_rcode(rcode)  # type: ignore[arg-type]
    return response


error_response = _error


def answer(zones: ZoneSet, query: dns.message.Message, *, tcp: bool = False) -> dns.message.Message:
    """The full response to a parsed query (no size limit applied: see `render`)."""
    if query.opcode() != dns.opcode.QUERY:
        return _error(query, dns.rcode.NOTIMP, zones.udp_size)
    if len(query.question) != 1:
        return _error(query, dns.rcode.FORMERR, zones.udp_size)
    if query.edns > 0:
        return _error(query, dns.rcode.BADVERS, zones.udp_size)  # RFC 6891 §6.1.3
    q = query.question[0]
    if q.rdtype in _META_FORMERR or (q.rdtype in _XFR and not tcp):
        return _error(query, dns.rcode.FORMERR, zones.udp_size)
    if q.rdtype in _META_NOTIMP:
        return _error(query, dns.rcode.NOTIMP, zones.udp_size)
    zone = zones.find(q.name, q.rdtype) if q.rdclass == dns.rdataclass.IN else None
    if zone is None or q.rdtype in _XFR:  # transfers: services/xfrout.py, with ACLs and TSIG
        return _error(query, dns.rcode.REFUSED, zones.udp_size)
    do = query.edns >= 0 and bool(query.ednsflags & dns.flags.DO)
    # Look up (and synthesise wildcards) in the zone's case; only the question echoes the client's.
    s = lookup(zone, q.name, q.rdtype, do)
    response = dns.message.Message(id=query.id)
    response.flags = dns.flags.QR | (query.flags & (dns.flags.RD | dns.flags.CD))
    if s.aa:
        response.flags |= dns.flags.AA
    response.question = [q]
    response.answer = rrsets(s.answer)
    response.authority = rrsets(s.authority)
    response.additional = rrsets(s.additional)
    if query.edns >= 0:
        response.use_edns(0, dns.flags.DO if do else 0, zones.udp_size)
    response.set_rcode(s.rcode)  # type: ignore[arg-type]
    if q.rdtype == RdataType.ANY and not tcp:
        # Amplification defence, as BIND for clients without a server cookie (and in the
        # spirit of RFC 8482): ANY is answered over TCP only.
        return truncated(response)
    return response


def size_limit(zones: ZoneSet, query: dns.message.Message, tcp: bool) -> int:
    """Largest response allowed: 65535 on TCP; on UDP the client's EDNS size bounded by ours,
    at least 512 (RFC 6891 §6.2.3-6.2.5), or 512 without EDNS."""
    if tcp:
        return TCP_MAX
    if query.edns < 0:
        return MIN_UDP_SIZE
    return max(MIN_UDP_SIZE, min(query.payload, zones.udp_size))


def truncated(response: dns.message.Message) -> dns.message.Message:
    """The TC=1 form of a response that does not fit: header, question, OPT (RFC 2181 §9)."""
    out = dns.message.Message(id=response.id)
    out.flags = response.flags | dns.flags.TC
    out.question = list(response.question)
    if response.edns >= 0:
        out.use_edns(0, response.ednsflags & 0xFFFF, response.payload)
    out.set_rcode(response.rcode())
    return out


class _ExactCaseCompression(dict):  # type: ignore[type-arg]
    """A compression table that matches names byte for byte, as BIND's does: names from the
    zone keep the zone's letter case instead of borrowing the client's (RFC 1035 §4.1.4)."""

    def get(self, key: dns.name.Name, default: object = None) -> object:  # type: ignore[override]
        return super().get(key.labels, default)

    def __setitem__(self, key: dns.name.Name, value: int) -> None:
        super().__setitem__(key.labels, value)


def _lowercase(name: dns.name.Name) -> bool:
    return all(label == label.lower() for label in name.labels)


def to_wire(
    message: dns.message.Message, max_size: int = TCP_MAX, question_target: bool | None = None
) -> bytes:
    """Render a response; raises dns.exception.TooBig past `max_size`.

    Names compress only against byte-identical names, as in BIND, so answers keep the zone's
    letter case. The question is a compression target only when it is all lower case
    (`question_target` None) — then the question and zone names agree byte for byte — and
    never for a mixed-case question, so that question can carry the client's letter case
    (patched in by `respond`) without changing any other name."""
    r = dns.renderer.Renderer(message.id, message.flags, max_size)
    r.compress = _ExactCaseCompression()
    for q in message.question:
        r.add_question(q.name, q.rdtype, q.rdclass)
        if question_target is None:
            question_target = _lowercase(q.name)
    if not question_target:
        r.compress.clear()
    for section, rrsets in (
        (dns.renderer.ANSWER, message.answer),
        (dns.renderer.AUTHORITY, message.authority),
        (dns.renderer.ADDITIONAL, message.additional),
    ):
        for rrset in rrsets:
            r.add_rrset(section, rrset, want_shuffle=False)  # deterministic: memo == fresh
    if message.edns >= 0:
        r.add_edns(message.edns, message.ednsflags, message.payload, message.options)
    r.write_header()
    return r.get_wire()


def render(response: dns.message.Message, limit: int, question_target: bool | None = None) -> bytes:
    """Wire form within `limit` bytes: whole, or truncated with TC set."""
    try:
        return to_wire(response, limit, question_target)
    except dns.exception.TooBig:
        return to_wire(truncated(response), limit, question_target)


def formerr(wire: bytes) -> bytes | None:
    """FORMERR for a query dnspython cannot parse: the header's ID and opcode echoed
    (RFC 1035 §4.1.1); nothing at all for a short header or a response (QR set)."""
    if len(wire) < 12 or wire[2] & 0x80:
        return None
    flags2 = 0x80 | (wire[2] & 0x79)  # QR, opcode, RD
    return wire[:2] + bytes([flags2, dns.rcode.FORMERR]) + b"\x00" * 8


def _fast_parse(wire: bytes) -> tuple[bytes, int, bool, bool, int] | None:
    """The cache key parts of a plain query — (qname wire, qtype, DO, EDNS, EDNS size) — read
    straight from the wire; None for anything unusual (the caller then parses with dnspython).
    Accepts only: QR=0, opcode QUERY, one question of class IN, no answer/authority records,
    at most one additional record which is an EDNS version 0 OPT at the root."""
    n = len(wire)
    if n < 17 or wire[2] & 0xF8 or wire[4:10] != b"\x00\x01\x00\x00\x00\x00" or wire[10] or wire[11] > 1:
        return None
    i = 12
    while True:
        length = wire[i] if i < n else 0xFF
        if length > 63:
            return None  # a compression pointer or a bad label: let dnspython judge
        i += length + 1
        if length == 0:
            break
    if i - 12 > 255 or i + 4 > n:
        return None
    qwire = wire[12:i]
    qtype = (wire[i] << 8) | wire[i + 1]
    if wire[i + 2:i + 4] != b"\x00\x01":
        return None
    i += 4
    if wire[11] == 0:
        return (qwire, qtype, False, False, 0) if i == n else None
    # OPT: root owner, type 41, class = UDP size, TTL = ext-rcode, version, flags; rdata
    if i + 11 > n or wire[i] != 0 or wire[i + 1:i + 3] != b"\x00\x29" or wire[i + 6] != 0:
        return None
    payload = (wire[i + 3] << 8) | wire[i + 4]
    do = bool(wire[i + 7] & 0x80)
    rdlen = (wire[i + 9] << 8) | wire[i + 10]
    if wire[i + 5] or i + 11 + rdlen != n:
        return None
    return qwire, qtype, do, True, payload


def _patch(full: bytes, wire: bytes, qwire: bytes) -> bytes:
    out = bytearray(full)
    out[0:2] = wire[0:2]  # ID
    out[2] |= wire[2] & 0x01  # RD
    out[3] |= wire[3] & 0x10  # CD
    out[12:12 + len(qwire)] = qwire  # the question's letter case (see to_wire)
    return bytes(out)


PlainQuery = tuple[bytes, int, bool, bool, int]  # (qname wire, qtype, DO, EDNS, EDNS size)


def plain_query(wire: bytes) -> PlainQuery | None:
    """The cache key parts of a plain QUERY read straight from the wire (see `_fast_parse`):
    None for anything else — other opcodes, TSIG-signed or IXFR queries, malformed wire."""
    return _fast_parse(wire)


def respond(zones: ZoneSet, wire: bytes, *, tcp: bool = False) -> bytes | None:
    """Query wire → response wire (None: send nothing). Hot path: memoised rendered answers,
    found without building a dnspython message for plain queries."""
    return respond_plain(zones, wire, _fast_parse(wire), tcp=tcp)


def _compress(comp: dict[bytes, bytes], name: bytes, pos: int) -> bytes:
    """`name` (wire) written at offset `pos`: its labels up to the longest suffix already in
    the message — byte for byte, as `_ExactCaseCompression` — then a pointer to that suffix
    (RFC 1035 §4.1.4). The suffixes written out become targets for later names. `comp` maps
    each target to its pointer."""
    i = 0
    ptr = b""
    while name[i]:
        hit = comp.get(name[i:])
        if hit is not None:
            ptr = hit
            break
        i += name[i] + 1
    j = 0
    while j < i and pos + j < 0x4000:
        comp[name[j:]] = (0xC000 | (pos + j)).to_bytes(2, "big")
        j += name[j] + 1
    return name[:i] + ptr if ptr else name


def render_sections(
    zone: ZoneIndex | None, qkey: bytes, qtype: int, s: Sections, *, question_target: bool,
    edns: bool, do: bool, udp_size: int,
) -> bytes:
    """A lookup's response wire (ID 0, RD/CD clear: `_patch` sets them per query), built by
    concatenating each RRset's pre-rendered records (`ZoneIndex.wire_of`) behind compressed
    owner names. Rdata is left uncompressed (RFC 3597 §4 allows it). The same answer as
    `to_wire(answer(...))` gives, record for record."""
    out = bytearray(12)
    out += qkey
    out += struct.pack("!HH", qtype, dns.rdataclass.IN)
    comp: dict[bytes, bytes] = {}
    if question_target:
        _compress(comp, qkey, 12)
    memo = zone._wire if zone is not None else {}
    counts = []
    for items in (s.answer, s.authority, s.additional):
        n = 0
        for synth, rrset in items:
            hit = memo.get(id(rrset))
            if hit is not None:
                owner, tails = hit[1], hit[2]
            else:
                owner, tails = zone.wire_of(rrset, id(rrset) not in s.transient)  # type: ignore[union-attr]
            if synth is not None:
                owner = synth
            for tail in tails:
                out += comp.get(owner) or _compress(comp, owner, len(out))
                out += tail
            n += len(tails)
        counts.append(n)
    if edns:  # OPT (RFC 6891 §6.1.2): version 0, our UDP size, DO echoed
        out += struct.pack("!BHHIH", 0, RdataType.OPT, udp_size, 0x8000 if do else 0, 0)
        counts[2] += 1
    flags = (0x8400 if s.aa else 0x8000) | int(s.rcode)  # QR, AA (plain ints: enum "|" is slow)
    out[0:12] = struct.pack("!HHHHHH", 0, flags, 1, *counts)
    return bytes(out)


def _answer_plain(zones: ZoneSet, qkey: bytes, qtype: int, do: bool, edns: bool,
                  mixed: bool) -> tuple[bytes, int] | None:
    """(response wire, rcode) for a plain query without dnspython messages; None when the
    query needs `answer` (meta types, transfers)."""
    if qtype in _META_FORMERR or qtype in _META_NOTIMP or qtype in _XFR:
        return None
    zone = zones.find_key(qkey, qtype)
    if zone is None:
        s = Sections(rcode=dns.rcode.REFUSED, aa=False)
    else:
        s = _Lookup(zone, do).run(qkey, qtype)
    return render_sections(zone, qkey, qtype, s, question_target=not mixed, edns=edns, do=do,
                           udp_size=zones.udp_size), s.rcode


def respond_plain(
    zones: ZoneSet, wire: bytes, fast: PlainQuery | None, *, tcp: bool = False
) -> bytes | None:
    """`respond` for a caller that has already run `plain_query` on `wire`."""
    if fast is not None and not (fast[1] == RdataType.ANY and not tcp):
        qwire, qtype, do, edns, payload = fast
        lowered = qwire.lower()
        key = (lowered, qtype, do, edns, lowered != qwire)
        hit = zones._wire.get(key)
        if hit is None:
            hit = _answer_plain(zones, lowered, qtype, do, edns, lowered != qwire)
            if hit is not None and hit[1] in _MEMO_RCODES and len(zones._wire) < zones.cache_entries:
                zones._wire[key] = hit
        if hit is not None:
            limit = TCP_MAX if tcp else (
                max(MIN_UDP_SIZE, min(payload, zones.udp_size)) if edns else MIN_UDP_SIZE
            )
            if len(hit[0]) <= limit:
                return _patch(hit[0], wire, qwire)
    try:
        query = dns.message.from_wire(wire)
    except dns.message.UnknownTSIGKey:
        query = dns.message.from_wire(wire, question_only=True)
        if query.flags & dns.flags.QR:
            return None
        return render(_error(query, dns.rcode.NOTAUTH, zones.udp_size), size_limit(zones, query, tcp))
    except Exception:  # any parse failure is the client's: FORMERR and keep serving
        return formerr(wire)
    if query.flags & dns.flags.QR:
        return None
    limit = size_limit(zones, query, tcp)
    return render(answer(zones, query, tcp=tcp), limit)
