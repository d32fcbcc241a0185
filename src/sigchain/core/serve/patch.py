"""`ZoneIndex.patched`: a zone's next version made from the previous index and the RRsets
that changed, sharing every unchanged node with it (the old version stays as it was)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from dns.rdatatype import RdataType

from sigchain.core.serve import persist
from sigchain.core.serve.fromwire import Served, negative_soa, nsec3_params
from sigchain.core.serve.index import (
    Node,
    ZoneIndex,
    canonical_order,
    nsec3_label_digest,
    parent,
    within,
)
from sigchain.core.serve.persist import Draft
from sigchain.core.serve.rrsets import NamedNodes, One, ServedRRset, compact
from sigchain.core.zone.records import Key, key_of, key_wire
from sigchain.core.zone.shape import LABEL_KEYS, NodeKind, shape
from sigchain.errors import InputError


@dataclass
class _Owner:
    """One touched owner name: its RRsets before the change and as they become."""

    wire: bytes  # lower-cased wire key
    digest: bytes | None  # the hash it spells when it may own an NSEC3 record
    data: dict[int, ServedRRset]
    sigs: dict[int, ServedRRset]
    nsec3: ServedRRset | None
    before: tuple[bool, bool, bool, bool] = field(default=(False, False, False, False))

    def facts(self) -> tuple[bool, bool, bool, bool]:
        """What the zone shape and the NSEC chain see of it: exists, NS, DNAME, NSEC."""
        d = self.data
        return bool(d), RdataType.NS in d, RdataType.DNAME in d, RdataType.NSEC in d


def patch_index(old: ZoneIndex, removed: Iterable[Served], added: Iterable[Served]) -> ZoneIndex:
    """`old` with the RRsets `removed` taken out (by owner, type and covered type) and
    `added` put in (an RRset in both is replaced): the index `from_served` gives for the
    whole new zone, made in the time of the change (plus C-speed copies of the maps)."""
    olabels = key_of(old.origin)
    touched: dict[Key, _Owner] = {}
    for key, owner, rdtype, covers, _ttl, _tails in removed:
        o = _touch(touched, old, olabels, key, owner)
        if rdtype == RdataType.RRSIG:
            o.sigs.pop(covers, None)
        elif rdtype == RdataType.NSEC3:
            o.nsec3 = None
        else:
            o.data.pop(rdtype, None)
    for key, owner, rdtype, covers, ttl, tails in added:
        o = _touch(touched, old, olabels, key, owner)
        rrset = ServedRRset(owner, rdtype, covers, ttl, tails)
        if rdtype == RdataType.RRSIG:
            o.sigs[covers] = rrset
        elif rdtype == RdataType.NSEC3:
            o.nsec3 = rrset
        else:
            o.data[rdtype] = rrset
    return _Patch(old, olabels, touched).index()


def _touch(touched: dict[Key, _Owner], old: ZoneIndex, olabels: Key, key: Key,
           owner: bytes) -> _Owner:
    """The touched owner `key`, its RRsets read from `old` when first met."""
    o = touched.get(key)
    if o is not None:
        return o
    wire = owner.lower()
    digest = None
    if len(key) == len(olabels) + 1 and key[:-1] == olabels:
        digest = nsec3_label_digest(key[-1])
    node = old.by_key.get(wire)
    n3 = old.nsec3_nodes.get(digest) if digest is not None else None
    sigs = node.sigs if node is not None else n3.sigs if n3 is not None else {}
    o = touched[key] = _Owner(
        wire, digest, dict(node.rrsets) if node is not None else {}, dict(sigs),
        n3.rrsets[RdataType.NSEC3] if n3 is not None else None)
    o.before = o.facts()
    return o


class _Patch:
    """The new version's structures: copies of the old ones, changed for the touched names."""

    def __init__(self, old: ZoneIndex, olabels: Key, touched: Mapping[Key, _Owner]) -> None:
        self.old, self.olabels, self.touched = old, olabels, touched
        # The new version's maps, as changes over the old ones (persist.Draft): a big zone's
        # are sharded, and only the shards changed are copied (`finish`).
        self.by_key: Draft[bytes, Node] = Draft(old.by_key)
        self.kinds: Mapping[bytes, NodeKind] = old.kind_by_key
        self.cut_keys, self.dname_keys = old.cut_keys, old.dname_keys

    def index(self) -> ZoneIndex:
        old = self.old
        nsec3_nodes, hashes = self._nsec3()
        nsec_keys, nsec_order = self._nsec()
        for o in self.touched.values():
            if o.data:
                self.by_key[o.wire] = Node(compact(o.data), compact(o.sigs))
            else:
                self.by_key.pop(o.wire, None)
        self._shape()
        by_key = self.by_key.finish()
        kinds = self.kinds.finish() if isinstance(self.kinds, Draft) else self.kinds \
            if self.kinds is old.kind_by_key else persist.mapping(dict(self.kinds))
        soa, neg_soa, neg_sig = old.soa, old.negative_soa, old.negative_soa_sig
        salt, iterations = old.nsec3_salt, old.nsec3_iterations
        apex = self.touched.get(self.olabels)
        if apex is not None:
            soa = apex.data.get(RdataType.SOA)  # type: ignore[assignment]
            if soa is None:
                raise InputError(f"no SOA record at the zone apex {old.origin}")
            neg_soa, neg_sig = negative_soa(old.origin, soa, apex.sigs.get(RdataType.SOA))
        if apex is not None or nsec3_nodes is not old.nsec3_nodes:
            param = by_key[old.okey].rrsets.get(RdataType.NSEC3PARAM)
            salt, iterations = nsec3_params(param, nsec3_nodes)
        denial = "nsec3" if nsec3_nodes else "nsec" if nsec_keys else "none"
        return ZoneIndex(
            origin=old.origin, nodes=NamedNodes(by_key), denial=denial,
            nsec3_hashes=hashes, nsec3_nodes=nsec3_nodes, nsec3_salt=salt,
            nsec3_iterations=iterations, soa=soa, negative_soa=neg_soa,
            negative_soa_sig=neg_sig, okey=old.okey, by_key=by_key,
            kind_by_key=kinds, cut_keys=self.cut_keys, dname_keys=self.dname_keys,
            nsec_keys=nsec_keys, nsec_order=nsec_order,
        )

    def _nsec3(self) -> tuple[Mapping[bytes, Node], Sequence[bytes]]:
        """The NSEC3 nodes and sorted hashes (the old ones when no NSEC3 record changed)."""
        old = self.old
        mine = [o for o in self.touched.values() if o.digest is not None]
        if not mine:
            return old.nsec3_nodes, old.nsec3_hashes
        nodes: Draft[bytes, Node] = Draft(old.nsec3_nodes)
        hashes = old.nsec3_hashes
        for o in mine:
            d = o.digest
            assert d is not None
            had = d in nodes
            if o.nsec3 is not None:
                nodes[d] = Node(One(RdataType.NSEC3, o.nsec3), compact(o.sigs))
            else:
                nodes.pop(d, None)
            if had != (o.nsec3 is not None):
                i = persist.bisect_left(hashes, d)
                hashes = persist.deleted(hashes, i) if had else persist.inserted(hashes, i, d)
        return nodes.finish(), hashes

    def _nsec(self) -> tuple[Sequence[bytes], Sequence[Key]]:
        """The NSEC owners (wire keys and their canonical sort keys), kept in step."""
        keys, order = self.old.nsec_keys, self.old.nsec_order
        for k, o in self.touched.items():
            had, has = o.before[3], o.facts()[3]
            if had == has:
                continue
            i = persist.bisect_left(order, k)
            if had:
                keys, order = persist.deleted(keys, i), persist.deleted(order, i)
            else:
                keys, order = persist.inserted(keys, i, o.wire), persist.inserted(order, i, k)
        return keys, order

    # ---- the zone shape -------------------------------------------------------------------

    def _shape(self) -> None:
        """Kinds, cuts and DNAMEs for the new version: unchanged unless a name came or went,
        redone around those names, and redone whole when a cut or a DNAME came or went."""
        moved = [o for o in self.touched.values() if o.before[:3] != o.facts()[:3]]
        if not moved:
            return
        okey = self.old.okey
        if any(o.before[1:3] != o.facts()[1:3] and (o.wire != okey or o.before[2] != o.facts()[2])
               for o in moved):
            self._reshape()
            return
        kinds = self.kinds = Draft(self.kinds)
        gone: set[bytes] = set()
        for o in moved:
            if o.facts()[0]:
                self._arrive(kinds, o.wire)
            elif kinds.pop(o.wire, None) is not NodeKind.OCCLUDED:
                a = o.wire
                while len(a) > len(okey) and a not in gone and (a == o.wire
                                                                 or a not in self.by_key):
                    gone.add(a)  # it and its ancestors up to one with data
                    a = parent(a)
        for a in sorted(gone, key=len, reverse=True):  # deepest first
            if a in self.by_key:
                continue
            if _live_below(kinds, a):
                kinds[a] = NodeKind.ENT
            else:
                kinds.pop(a, None)

    def _arrive(self, kinds: Draft[bytes, NodeKind], wire: bytes) -> None:
        """A name that owns data now (no NS, no DNAME): its kind, and its ENT ancestors."""
        okey = self.old.okey
        if kinds.get(wire) is NodeKind.OCCLUDED:
            return
        a = wire
        while len(a) > len(okey):
            a = parent(a)
            if a in self.cut_keys or a in self.dname_keys:
                kinds[wire] = NodeKind.OCCLUDED
                return
        kinds[wire] = NodeKind.APEX if wire == okey else NodeKind.AUTH
        a = parent(wire)
        while len(a) > len(okey) and a not in kinds:
            kinds[a] = NodeKind.ENT
            a = parent(a)

    def _reshape(self) -> None:
        """The whole zone's shape anew (a delegation or a DNAME came or went)."""
        labels = {canonical_order(k): k for k in self.by_key}
        zshape = shape(self.olabels, {lk: self.by_key[w].rrsets for lk, w in labels.items()},
                       ops=LABEL_KEYS)
        wires = {lk: labels.get(lk) or key_wire(lk) for lk in zshape.kinds}
        self.kinds = {wires[lk]: kind for lk, kind in zshape.kinds.items()}
        self.cut_keys = frozenset(w for w, kind in self.kinds.items()
                                  if kind is NodeKind.DELEGATION)
        self.dname_keys = frozenset(
            w for w, node in self.by_key.items()
            if RdataType.DNAME in node.rrsets and self.kinds.get(w) is not NodeKind.OCCLUDED)


def _live_below(kinds: Mapping[bytes, NodeKind], a: bytes) -> bool:
    """Whether a name strictly below `a` is in the zone and not occluded (a scan)."""
    n = len(a)
    return any(len(k) > n and kind is not NodeKind.OCCLUDED and within(k, a)
               for k, kind in kinds.items() if k.endswith(a))
