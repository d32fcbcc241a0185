"""`ZoneIndex.from_wire`: a zone's wire RRsets (as the fast reader gives them) indexed for
answering with nothing made per record but the bytes answers are built from (`ServedRRset`)."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping

import dns.name
from dns.rdatatype import RdataType

from sigchain.core.serve import persist
from sigchain.core.serve.index import Node, ZoneIndex, nsec3_label_digest
from sigchain.core.serve.rrsets import NamedNodes, One, ServedRRset, compact, rdata_of, tails_of
from sigchain.core.zone.records import Key, key_of, key_wire
from sigchain.core.zone.shape import LABEL_KEYS, NodeKind, shape
from sigchain.core.zone.wire import WireRRset
from sigchain.errors import InputError


def owner_wire(text: str) -> bytes:
    """An absolute name's wire form in its own letter case, from its presentation form."""
    if "\\" in text or not text.isascii() or not text.endswith("."):
        wire = dns.name.from_text(text).to_wire()
        assert wire is not None
        return wire
    if text == ".":
        return b"\x00"
    return b"".join(bytes((len(p),)) + p for p in text[:-1].encode().split(b".")) + b"\x00"


# An RRset as the index takes it: (label key, owner wire in the zone's case, type, covered type,
# TTL, `tails_of` its records). Plain tuples of bytes: a worker process pickles them fast.
Served = tuple[Key, bytes, int, int, int, tuple[bytes, ...]]


def served_form(rrsets: Iterable[WireRRset]) -> list[Served]:
    """Wire RRsets in the form the index takes (owner wires made once per owner)."""
    owners: dict[str, bytes] = {}
    out = []
    for r in rrsets:
        owner = owners.get(r.owner)
        if owner is None:
            owner = owners[r.owner] = owner_wire(r.owner)
        covers = r.wires[0][0] << 8 | r.wires[0][1] if r.rdtype == RdataType.RRSIG else 0
        out.append((r.key, owner, r.rdtype, covers, r.ttl, tails_of(r.rdtype, r.ttl, r.wires)))
    return out


class WireIndexer:
    """Collects a zone's wire RRsets, then makes its `ZoneIndex` (as `ZoneIndex.build` does
    from dnspython rdatasets: the same nodes, shape, chains and negative-answer SOA)."""

    def __init__(self, origin: dns.name.Name) -> None:
        self.origin = origin
        self.okey = key_of(origin)
        self.keys: dict[Key, bytes] = {}  # label key → lower-cased wire
        # by name: type (RRSIGs: covered type) → RRset, held as `One` until a second comes
        self.data: dict[Key, Mapping[int, ServedRRset]] = {}
        self.sigs: dict[Key, Mapping[int, ServedRRset]] = {}
        self.nsec3: dict[Key, ServedRRset] = {}

    def add_all(self, rrsets: Iterable[WireRRset]) -> WireIndexer:
        return self.add_served(served_form(rrsets))

    def add_served(self, records: Iterable[Served]) -> WireIndexer:
        """Add RRsets in `served_form`."""
        sigs, data, keys = self.sigs, self.data, self.keys
        for key, owner, rdtype, covers, ttl, tails in records:
            if key not in keys:
                keys[key] = owner.lower()  # ASCII-only lower case, as DNS's
            rrset = ServedRRset(owner, rdtype, covers, ttl, tails)
            if rdtype == RdataType.RRSIG:
                _put(sigs, key, covers, rrset)
            elif rdtype == RdataType.NSEC3:
                self.nsec3[key] = rrset
            else:
                _put(data, key, rdtype, rrset)
        return self

    def index(self) -> ZoneIndex:
        okey, data, sigs, keys = self.okey, self.data, self.sigs, self.keys
        origin = self.origin
        apex = data.get(okey, {})
        soa = apex.get(RdataType.SOA)
        if soa is None:
            raise InputError(f"no SOA record at the zone apex {origin}")
        zshape = shape(okey, data, ops=LABEL_KEYS)
        by_key = {keys[k]: Node(compact(rs), compact(sigs.get(k))) for k, rs in data.items()}
        cuts = [keys[k] for k, kind in zshape.kinds.items() if kind is NodeKind.DELEGATION]
        dnames = [keys[k] for k, rs in data.items()
                  if RdataType.DNAME in rs and zshape.kinds.get(k) is not NodeKind.OCCLUDED]
        nsec_owners = sorted(k for k, rs in data.items() if RdataType.NSEC in rs)  # canonical
        nsec3_nodes: dict[bytes, Node] = {}
        depth = len(okey) + 1
        for k, rrset in self.nsec3.items():
            if len(k) == depth and k[:-1] == okey:
                digest = nsec3_label_digest(k[-1])
                if digest is not None:
                    nsec3_nodes[digest] = Node(One(RdataType.NSEC3, rrset), compact(sigs.get(k)))
        salt, iterations = nsec3_params(apex.get(RdataType.NSEC3PARAM), nsec3_nodes)
        denial = "nsec3" if nsec3_nodes else "nsec" if nsec_owners else "none"
        neg_soa, neg_sig = negative_soa(origin, soa, sigs.get(okey, {}).get(RdataType.SOA))
        # Big zones' maps and sorted lists in pieces, so that `patched` copies few of them.
        served_by_key = persist.mapping(by_key)
        return ZoneIndex(
            origin=origin, nodes=NamedNodes(served_by_key), denial=denial,
            nsec3_hashes=persist.sequence(sorted(nsec3_nodes)),
            nsec3_nodes=persist.mapping(nsec3_nodes),
            nsec3_salt=salt, nsec3_iterations=iterations, soa=soa, negative_soa=neg_soa,
            negative_soa_sig=neg_sig, okey=keys.get(okey) or key_wire(okey),
            by_key=served_by_key,
            kind_by_key=persist.mapping(
                {keys.get(k) or key_wire(k): kind for k, kind in zshape.kinds.items()}),
            cut_keys=frozenset(cuts), dname_keys=frozenset(dnames),
            nsec_keys=persist.sequence([keys[k] for k in nsec_owners]),
            nsec_order=persist.sequence(nsec_owners),
        )


def _put(nodes: dict[Key, Mapping[int, ServedRRset]], key: Key, t: int, rrset: ServedRRset) -> None:
    """`rrset` under `t` at `key`: a `One` for the first, a dict from the second on (no
    one-entry dict is made only to be thrown away)."""
    node = nodes.get(key)
    if node is None:
        nodes[key] = One(t, rrset)
    elif isinstance(node, One):
        nodes[key] = {node.key: node.value, t: rrset}
    else:
        node[t] = rrset  # type: ignore[index]


def negative_soa(origin: dns.name.Name, soa: ServedRRset, soa_sig: ServedRRset | None
                 ) -> tuple[ServedRRset, ServedRRset | None]:
    """The SOA (and its RRSIG) negative answers carry: TTL min(SOA TTL, MINIMUM), RFC 2308
    §3 / RFC 9077, owned by the zone's name as given."""
    minimum = min(soa.ttl, struct.unpack("!I", rdata_of(soa.tails[0])[-4:])[0])
    apex_wire = origin.to_wire()
    assert apex_wire is not None
    neg_soa = ServedRRset(apex_wire, RdataType.SOA, 0, minimum, soa.with_ttl(minimum).tails)
    neg_sig = None
    if soa_sig is not None:
        neg_sig = ServedRRset(apex_wire, RdataType.RRSIG, RdataType.SOA, minimum,
                              soa_sig.with_ttl(minimum).tails)
    return neg_soa, neg_sig


def nsec3_params(param: ServedRRset | None, nodes: dict[bytes, Node]) -> tuple[bytes, int]:
    """(salt, iterations) from the NSEC3PARAM record, else from the first NSEC3 record."""
    if param is not None:
        wire = rdata_of(param.tails[0])
    elif nodes:
        first = next(iter(nodes.values())).rrsets[RdataType.NSEC3]
        assert isinstance(first, ServedRRset)
        wire = rdata_of(first.tails[0])
    else:
        return b"", 0
    return wire[5 : 5 + wire[4]], struct.unpack_from("!H", wire, 2)[0]
