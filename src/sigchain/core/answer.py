"""Authoritative answers (pure): served zones + a query → a response.

RFC 1034 §4.3.2 (the lookup algorithm), RFC 4035 §3.1 (DNSSEC records in responses),
RFC 5155 §7.2 (NSEC3 proofs), RFC 4592 (wildcards), RFC 6672 (DNAME), RFC 6891 (EDNS0),
RFC 2308 §3 (negative answers), RFC 6604 (rcode after a CNAME chain).

Each zone is indexed once per load (`ZoneIndex.build`): owner name → RRsets and their
RRSIGs, the zone shape (delegations, DNAMEs, empty non-terminals), the sorted NSEC owner list
and the sorted NSEC3 hash list (covering records found by bisection). A `ZoneSet` is the
immutable set of zones one listener serves; it memoises rendered answers keyed by
(lower-cased qname, qtype, DO, EDNS) with the ID, RD/CD bits and the question's letter case
patched in per query (`respond`), so a hot name costs one dict lookup and a few byte copies.
As in BIND, answers are in the zone's letter case; only the question echoes the client's
(nothing is compressed against the question, so patching it is safe).
Swapping zones means building a new `ZoneSet` (its cache starts empty): no invalidation.
"""

from __future__ import annotations

import base64
import binascii
import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.renderer
import dns.rrset
from dns.rdatatype import RdataType

from sigchain.core.denial import nsec3_digest
from sigchain.core.zonedata import NodeKind, shape
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
    kinds: Mapping[dns.name.Name, NodeKind]  # zone shape: apex, auth, cuts, ENTs, occluded
    cuts: frozenset[dns.name.Name]  # delegation points below the apex
    dnames: frozenset[dns.name.Name]  # DNAME owners (RFC 6672)
    denial: str  # "nsec" | "nsec3" | "none"
    nsec_owners: tuple[dns.name.Name, ...]  # canonical order (RFC 4034 §6.1)
    nsec3_hashes: tuple[bytes, ...]  # sorted raw digests
    nsec3_nodes: Mapping[bytes, Node]  # digest → NSEC3 RRset (+ its RRSIG)
    nsec3_salt: bytes
    nsec3_iterations: int
    soa: dns.rrset.RRset
    negative_soa: dns.rrset.RRset  # TTL min(SOA TTL, MINIMUM), RFC 2308 §3 / RFC 9077
    negative_soa_sig: dns.rrset.RRset | None
    wildcards: frozenset[dns.name.Name] = field(default_factory=frozenset)

    @property
    def serial(self) -> int:
        return int(self.soa[0].serial)  # type: ignore[attr-defined]

    @classmethod
    def build(
        cls, origin: dns.name.Name, zone: Mapping[dns.name.Name, Sequence[dns.rdataset.Rdataset]]
    ) -> ZoneIndex:
        """Index a loaded (signed or unsigned) zone: rdatasets per owner name, as `load_zone`."""
        rrsets: dict[dns.name.Name, dict[int, dns.rrset.RRset]] = {}
        sigs: dict[dns.name.Name, dict[int, dns.rrset.RRset]] = {}
        nsec3_owner: dict[dns.name.Name, dns.rrset.RRset] = {}
        for name, rdatasets in zone.items():
            for rds in rdatasets:
                rrset = dns.rrset.RRset(name, rds.rdclass, rds.rdtype, rds.covers)
                rrset.update(rds)
                if rds.rdtype == RdataType.RRSIG:
                    sigs.setdefault(name, {})[rds.covers] = rrset
                elif rds.rdtype == RdataType.NSEC3:
                    nsec3_owner[name] = rrset
                else:
                    rrsets.setdefault(name, {})[rds.rdtype] = rrset
        apex = rrsets.get(origin, {})
        soa = apex.get(RdataType.SOA)
        if soa is None:
            raise InputError(f"no SOA record at the zone apex {origin}")
        nodes = {n: Node(rs, sigs.get(n, {})) for n, rs in rrsets.items()}
        zshape = shape(origin, {n: set(rs) for n, rs in rrsets.items()})
        cuts = frozenset(n for n, k in zshape.kinds.items() if k is NodeKind.DELEGATION)
        dnames = frozenset(
            n for n, rs in rrsets.items()
            if RdataType.DNAME in rs and zshape.kinds.get(n) is not NodeKind.OCCLUDED
        )
        wildcards = frozenset(n for n in nodes if n.is_wild())

        nsec_owners = tuple(sorted(n for n, rs in rrsets.items() if RdataType.NSEC in rs))
        nsec3_nodes: dict[bytes, Node] = {}
        salt, iterations = b"", 0
        param = apex.get(RdataType.NSEC3PARAM)
        for owner, rrset in nsec3_owner.items():
            if len(owner) != len(origin) + 1 or not owner.is_subdomain(origin):
                continue
            try:
                digest = base64.b32hexdecode(owner.labels[0].upper())
            except (binascii.Error, ValueError):
                continue
            nsec3_nodes[digest] = Node({RdataType.NSEC3: rrset}, sigs.get(owner, {}))
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
        soa_sig = sigs.get(origin, {}).get(RdataType.SOA)
        if soa_sig is not None:
            neg_sig = dns.rrset.RRset(origin, soa.rdclass, RdataType.RRSIG, RdataType.SOA)
            neg_sig.update(soa_sig)
            neg_sig.ttl = minimum
        return cls(
            origin, nodes, dict(zshape.kinds), cuts, dnames, denial, nsec_owners,
            tuple(sorted(nsec3_nodes)), nsec3_nodes, salt, iterations, soa, neg_soa, neg_sig,
            wildcards,
        )

    # ---- denial-of-existence lookups -------------------------------------------------------

    def covering_nsec(self, name: dns.name.Name) -> dns.name.Name:
        """Owner of the NSEC whose span holds `name` (or matches it), RFC 4034 §4.1.1."""
        i = bisect.bisect_right(self.nsec_owners, name) - 1
        return self.nsec_owners[i]  # i == -1 wraps to the last NSEC (it points at the apex)

    def nsec3_hash(self, name: dns.name.Name) -> bytes:
        return nsec3_digest(name, self.nsec3_salt, self.nsec3_iterations)

    def nsec3_match(self, name: dns.name.Name) -> bytes | None:
        h = self.nsec3_hash(name)
        return h if h in self.nsec3_nodes else None

    def nsec3_cover(self, name: dns.name.Name) -> bytes:
        """Digest of the NSEC3 record whose hash span covers H(name) (RFC 5155 §7.2.1)."""
        h = self.nsec3_hash(name)
        i = bisect.bisect_right(self.nsec3_hashes, h) - 1
        return self.nsec3_hashes[i]  # -1 wraps: the last NSEC3 covers past the end

    def closest_provable_encloser(self, name: dns.name.Name) -> tuple[bytes, dns.name.Name]:
        """(matching NSEC3 digest, next closer name) for `name` (RFC 5155 §7.2.1, §8.3)."""
        candidate = name
        while len(candidate) > len(self.origin):
            parent = candidate.parent()
            h = self.nsec3_match(parent)
            if h is not None:
                return h, candidate
            candidate = parent
        raise LookupError(f"no NSEC3 record matches the apex {self.origin}")


# ---- the lookup ----------------------------------------------------------------------------


@dataclass
class Sections:
    """What a lookup produced, before it is put in a message."""

    rcode: int = dns.rcode.NOERROR
    aa: bool = True
    answer: list[dns.rrset.RRset] = field(default_factory=list)
    authority: list[dns.rrset.RRset] = field(default_factory=list)
    additional: list[dns.rrset.RRset] = field(default_factory=list)
    _seen: set[tuple[str, dns.name.Name, int, int]] = field(default_factory=set)

    def add(self, section: str, rrset: dns.rrset.RRset | None) -> None:
        if rrset is None:
            return
        key = (section, rrset.name, rrset.rdtype, rrset.covers)
        if key in self._seen:
            return
        self._seen.add(key)
        getattr(self, section).append(rrset)


def _renamed(rrset: dns.rrset.RRset, owner: dns.name.Name) -> dns.rrset.RRset:
    """A copy of `rrset` with another owner (wildcard synthesis, RFC 4592 §4.3.3)."""
    out = dns.rrset.RRset(owner, rrset.rdclass, rrset.rdtype, rrset.covers)
    out.update(rrset)
    return out


class _Lookup:
    """RFC 1034 §4.3.2 inside one zone, with the DNSSEC records of RFC 4035 §3.1 when `do`."""

    def __init__(self, zone: ZoneIndex, do: bool):
        self.z = zone
        self.do = do and zone.denial != "none"
        self.s = Sections()

    # -- helpers --
    def _rrset(self, section: str, node: Node, rdtype: int, owner: dns.name.Name | None = None) -> None:
        rrset = node.rrsets[rdtype]
        sig = node.sigs.get(rdtype) if self.do else None
        if owner is not None:
            rrset = _renamed(rrset, owner)
            sig = _renamed(sig, owner) if sig is not None else None
        self.s.add(section, rrset)
        self.s.add(section, sig)

    def _soa(self) -> None:
        self.s.add("authority", self.z.negative_soa)
        if self.do:
            self.s.add("authority", self.z.negative_soa_sig)

    def _nsec(self, owner: dns.name.Name) -> None:
        node = self.z.nodes[owner]
        self._rrset("authority", node, RdataType.NSEC)

    def _nsec3(self, digest: bytes) -> None:
        node = self.z.nsec3_nodes[digest]
        self.s.add("authority", node.rrsets[RdataType.NSEC3])
        self.s.add("authority", node.sigs.get(RdataType.NSEC3))

    def _nsec3_closest_encloser(self, name: dns.name.Name) -> dns.name.Name:
        """Closest (provable) encloser proof: CE match + next closer cover (RFC 5155 §7.2.1)."""
        ce_hash, next_closer = self.z.closest_provable_encloser(name)
        self._nsec3(ce_hash)
        self._nsec3(self.z.nsec3_cover(next_closer))
        return next_closer.parent()

    # -- denial --
    def nodata_proof(self, name: dns.name.Name, existing: bool) -> None:
        """NODATA: NSEC at the name (RFC 4035 §3.1.3.1) — or covering it for an ENT —
        or the matching NSEC3 (RFC 5155 §7.2.3), else the opt-out proof (§7.2.4)."""
        if not self.do:
            return
        if self.z.denial == "nsec":
            if existing and name in self.z.nodes and RdataType.NSEC in self.z.nodes[name].rrsets:
                self._nsec(name)
            else:
                self._nsec(self.z.covering_nsec(name))
        else:
            h = self.z.nsec3_match(name)
            if h is not None:
                self._nsec3(h)
            else:
                self._nsec3_closest_encloser(name)

    def nxdomain_proof(self, name: dns.name.Name, ce: dns.name.Name) -> None:
        """NXDOMAIN: name and wildcard denied (RFC 4035 §3.1.3.2, RFC 5155 §7.2.2)."""
        if not self.do:
            return
        if self.z.denial == "nsec":
            self._nsec(self.z.covering_nsec(name))
            self._nsec(self.z.covering_nsec(dns.name.Name((b"*",) + ce.labels)))
        else:
            ce = self._nsec3_closest_encloser(name)
            self._nsec3(self.z.nsec3_cover(dns.name.Name((b"*",) + ce.labels)))

    def wildcard_proof(self, name: dns.name.Name, ce: dns.name.Name) -> None:
        """A wildcard answer proves that `name` itself does not exist: the NSEC covering it
        (RFC 4035 §3.1.3.3), the NSEC3 covering the next closer name (RFC 5155 §7.2.6)."""
        if not self.do:
            return
        if self.z.denial == "nsec":
            self._nsec(self.z.covering_nsec(name))
        else:
            next_closer = dns.name.Name(name.labels[-(len(ce) + 1):])
            self._nsec3(self.z.nsec3_cover(next_closer))

    def wildcard_nodata_proof(self, name: dns.name.Name, ce: dns.name.Name, wild: dns.name.Name) -> None:
        """Wildcard NODATA (RFC 4035 §3.1.3.4, RFC 5155 §7.2.5)."""
        if not self.do:
            return
        if self.z.denial == "nsec":
            self._nsec(self.z.covering_nsec(name))
            self._nsec(wild)
        else:
            self._nsec3_closest_encloser(name)
            h = self.z.nsec3_match(wild)
            if h is not None:
                self._nsec3(h)

    # -- referral --
    def referral(self, cut: dns.name.Name) -> None:
        """Delegation (RFC 1034 §4.3.2 step 3b; RFC 4035 §3.1.4): NS, DS or proof of no DS,
        glue. AA is off."""
        s, z = self.s, self.z
        node = z.nodes[cut]
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
        for ns in node.rrsets[RdataType.NS]:
            target = ns.target  # type: ignore[attr-defined]
            glue = z.nodes.get(target)
            if glue is None or not target.is_subdomain(z.origin):
                continue
            for t in _ADDRESS:
                if t in glue.rrsets:
                    s.add("additional", glue.rrsets[t])

    # -- the algorithm --
    def run(self, qname: dns.name.Name, qtype: int) -> Sections:
        name = qname
        for _ in range(MAX_CHAIN):
            target = self._step(name, qtype)
            if target is None or not target.is_subdomain(self.z.origin):
                return self.s
            name = target
        return self.s

    def _cut_above(self, name: dns.name.Name, qtype: int) -> tuple[str, dns.name.Name] | None:
        """The topmost zone cut or DNAME on the way from the apex down to `name`."""
        z = self.z
        if not z.cuts and not z.dnames:
            return None
        depth = len(z.origin)
        labels = name.labels
        for i in range(depth, len(name) + 1):
            anc = dns.name.Name(labels[len(labels) - i:])
            if anc in z.cuts and anc != z.origin:
                if anc == name and qtype == RdataType.DS:
                    return None  # DS lives on the parent side: answer it here (RFC 4035 §3.1.4.1)
                return ("cut", anc)
            if anc in z.dnames and anc != name:
                return ("dname", anc)
        return None

    def _step(self, name: dns.name.Name, qtype: int) -> dns.name.Name | None:
        """Answer `name`/`qtype`; return a CNAME/DNAME target to follow, else None."""
        z, s = self.z, self.s
        cut = self._cut_above(name, qtype)
        if cut is not None:
            kind, at = cut
            if kind == "cut":
                if not s.answer:
                    self.referral(at)
                return None
            return self._dname(name, at)

        node = z.nodes.get(name)
        kind_ = z.kinds.get(name)
        if node is not None:
            return self._at_node(node, name, name, qtype)
        if kind_ is NodeKind.ENT:
            self._soa()
            self.nodata_proof(name, existing=False)
            return None

        # The name does not exist: find the closest encloser, then the wildcard (RFC 4592 §4.3.2).
        ce = name.parent()
        while ce not in z.kinds and len(ce) > len(z.origin):
            ce = ce.parent()
        wild = dns.name.Name((b"*",) + ce.labels)
        wnode = z.nodes.get(wild)
        if wnode is None:
            s.rcode = dns.rcode.NXDOMAIN
            self._soa()
            self.nxdomain_proof(name, ce)
            return None
        if qtype in wnode.rrsets or qtype == RdataType.ANY or RdataType.CNAME in wnode.rrsets:
            target = self._at_node(wnode, name, wild, qtype)
            self.wildcard_proof(name, ce)
            return target
        self._soa()
        self.wildcard_nodata_proof(name, ce, wild)
        return None

    def _at_node(self, node: Node, name: dns.name.Name, owner: dns.name.Name, qtype: int) -> dns.name.Name | None:
        """Answer from an existing node (`owner` is the wildcard when synthesising `name`)."""
        rename = name if owner != name else None
        if qtype == RdataType.ANY:  # every RRset and its RRSIGs, DO or not (as BIND)
            for t in sorted(node.rrsets):
                self.s.add("answer", _renamed(node.rrsets[t], rename) if rename else node.rrsets[t])
                sig = node.sigs.get(t)
                if sig is not None and self.z.denial != "none":
                    self.s.add("answer", _renamed(sig, rename) if rename else sig)
            return None
        if qtype == RdataType.RRSIG and owner == name and node.sigs:
            for t in sorted(node.sigs):
                self.s.add("answer", node.sigs[t])
            return None
        if qtype in node.rrsets:
            self._rrset("answer", node, qtype, rename)
            return None
        if RdataType.CNAME in node.rrsets:
            self._rrset("answer", node, RdataType.CNAME, rename)
            return node.rrsets[RdataType.CNAME][0].target  # type: ignore[attr-defined,no-any-return]
        self._soa()
        self.nodata_proof(name, existing=True)
        return None

    def _dname(self, name: dns.name.Name, at: dns.name.Name) -> dns.name.Name | None:
        """DNAME substitution with an unsigned synthesized CNAME (RFC 6672 §3.2, §5.3.1)."""
        node = self.z.nodes[at]
        dname = node.rrsets[RdataType.DNAME]
        self._rrset("answer", node, RdataType.DNAME)
        try:
            target = name.relativize(at).concatenate(dname[0].target)  # type: ignore[attr-defined]
        except dns.name.NameTooLong:
            self.s.rcode = dns.rcode.YXDOMAIN
            return None
        cname = dns.rrset.from_text(name, dname.ttl, "IN", "CNAME", target.to_text())
        self.s.add("answer", cname)
        return target


def lookup(zone: ZoneIndex, qname: dns.name.Name, qtype: int, do: bool) -> Sections:
    """The authoritative answer from one zone for `qname`/`qtype` (no message framing)."""
    return _Lookup(zone, do).run(qname, qtype)


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
        self.udp_size = udp_size
        self.cache_entries = cache_entries
        self._wire: dict[tuple[bytes, int, bool, bool, bool], tuple[bytes, int]] = {}

    def replace(self, zone: ZoneIndex) -> ZoneSet:
        """A new set with `zone` added or swapped in (empty cache); this one is untouched."""
        zones = dict(self.zones)
        zones[zone.origin] = zone
        return ZoneSet(zones.values(), udp_size=self.udp_size, cache_entries=self.cache_entries)

    def find(self, qname: dns.name.Name, qtype: int) -> ZoneIndex | None:
        """The closest enclosing served zone; for DS at a served apex, its parent's zone
        when we serve that too (RFC 4035 §3.1.4.1)."""
        name = qname
        if qtype == RdataType.DS and name in self.zones and len(name) > 1:
            name = name.parent()
        while True:
            z = self.zones.get(name)
            if z is not None:
                return z
            if len(name) <= 1:
                return None
            name = name.parent()

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
    s = lookup(zone, q.name.canonicalize(), q.rdtype, do)
    response = dns.message.Message(id=query.id)
    response.flags = dns.flags.QR | (query.flags & (dns.flags.RD | dns.flags.CD))
    if s.aa:
        response.flags |= dns.flags.AA
    response.question = [q]
    response.answer = s.answer
    response.authority = s.authority
    response.additional = s.additional
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


def respond_plain(
    zones: ZoneSet, wire: bytes, fast: PlainQuery | None, *, tcp: bool = False
) -> bytes | None:
    """`respond` for a caller that has already run `plain_query` on `wire`."""
    if fast is not None and not (fast[1] == RdataType.ANY and not tcp):
        qwire, qtype, do, edns, payload = fast
        lowered = qwire.lower()
        hit = zones._wire.get((lowered, qtype, do, edns, lowered != qwire))
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
    if (
        query.opcode() != dns.opcode.QUERY or len(query.question) != 1 or query.edns > 0
        or query.question[0].rdclass != dns.rdataclass.IN
        or (query.question[0].rdtype == RdataType.ANY and not tcp)
    ):
        return render(answer(zones, query, tcp=tcp), limit)
    q = query.question[0]
    qwire = q.name.to_wire()
    assert qwire is not None
    do = query.edns >= 0 and bool(query.ednsflags & dns.flags.DO)
    lowered = qwire.lower()
    mixed = lowered != qwire  # a mixed-case question is no compression target (see to_wire)
    key = (lowered, q.rdtype, do, query.edns >= 0, mixed)
    hit = zones._wire.get(key)
    if hit is None:
        canonical = dns.message.make_query(
            dns.name.from_wire(lowered, 0)[0], q.rdtype, use_edns=query.edns >= 0,
            want_dnssec=do, payload=TCP_MAX,
        )
        canonical.id = 0
        canonical.flags = 0
        response = answer(zones, canonical, tcp=tcp)
        rcode = response.rcode()
        hit = (render(response, TCP_MAX, question_target=not mixed), rcode)
        # Only zone answers are memoised (REFUSED/FORMERR stay cheap and unbounded otherwise).
        if rcode in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN, dns.rcode.YXDOMAIN) and (
            len(zones._wire) < zones.cache_entries and q.rdtype not in _XFR
        ):
            zones._wire[key] = hit
    if len(hit[0]) > limit:
        return render(answer(zones, query, tcp=tcp), limit)  # rare: the TC form for this query
    return _patch(hit[0], wire, qwire)
