"""Aggressive use of DNSSEC-validated cache (RFC 8198), pure: the NSEC/NSEC3 records of a
zone's validated negative answers are kept, and a later question they may deny is answered
from them — after the validator has judged the synthesised evidence secure, never on the
records' say-so alone (opt-out NSEC3 never proves NXDOMAIN: RFC 8198 §5.4)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import dns.name
import dns.rcode
import dns.rrset
from dns.rdatatype import RdataType

from sigchain.core.dnssec.policy import DEFAULT_POLICY, DnssecPolicy
from sigchain.core.validate.proofs import (
    Nsec3Record,
    NsecRecord,
    canonical_key,
    nodata_bits,
    nsec_closest_encloser,
    parsed,
)
from sigchain.core.validate.verdict import Evidence, Link, Question, ZoneCut
from sigchain.core.zone import nsec3hash
from sigchain.core.zone.sharedname import shared

MAX_RECORDS = 64  # NSEC/NSEC3 RRsets kept per zone (the most recent)
MAX_PROOF = 8  # records offered to the validator for one question
_Parsed = NsecRecord | Nsec3Record | None  # None: an NSEC3 owner that is not a hash


@dataclass
class ZoneDenials:
    """One signed zone's validated denial records, the SOA (with RRSIGs) negative answers
    carry, and the chain of trust (DS/DNSKEY links) that validated them."""

    zone: dns.name.Name
    soa: tuple[dns.rrset.RRset, ...]
    chain: tuple[ZoneCut, ...]
    # NSEC/NSEC3 RRsets, their RRSIGs, and their records parsed (once, not per question)
    records: dict[tuple[dns.name.Name, int],
                  tuple[dns.rrset.RRset, dns.rrset.RRset | None, tuple[_Parsed, ...]]] = \
        field(default_factory=dict)
    # validated wildcard RRsets (owner *.X) and their RRSIGs, to expand for other names
    wildcards: dict[tuple[dns.name.Name, int], tuple[dns.rrset.RRset, dns.rrset.RRset]] = \
        field(default_factory=dict)

    def add_wildcard(self, answer: Sequence[dns.rrset.RRset]) -> int | None:
        """Keep the source of a validated wildcard expansion: the RRset and its RRSIG whose
        labels field is below the owner's label count (RFC 4035 §5.3.2), re-owned at *.X.
        Returns the smallest TTL of what was kept (None: nothing)."""
        sigs = {(r.name, r.covers): r for r in answer if r.rdtype == RdataType.RRSIG}
        ttl: int | None = None
        for r in answer:
            sig = sigs.get((r.name, r.rdtype))
            if sig is None or r.rdtype in (RdataType.CNAME, RdataType.DNAME):
                continue
            labels = min(rd.labels for rd in sig)  # type: ignore[attr-defined]
            if labels >= len(r.name) - 1 or not r.name.is_subdomain(self.zone):
                continue
            owner = dns.name.Name((b"*", *r.name.labels[-(labels + 1):]))
            self.wildcards[(owner, r.rdtype)] = (_renamed(r, owner), _renamed(sig, owner))
            ttl = min(r.ttl, sig.ttl, ttl if ttl is not None else r.ttl)
            while len(self.wildcards) > MAX_RECORDS:
                del self.wildcards[next(iter(self.wildcards))]
        return ttl

    def add(self, rrsets: Sequence[dns.rrset.RRset]) -> int | None:
        """Keep the NSEC/NSEC3 RRsets (with their RRSIGs) of the zone; returns the smallest
        TTL of what was kept (None: nothing)."""
        sigs = {(r.name, r.covers): r for r in rrsets if r.rdtype == RdataType.RRSIG}
        ttl: int | None = None
        for r in rrsets:
            if r.rdtype in (RdataType.NSEC, RdataType.NSEC3) and r.name.is_subdomain(self.zone):
                sig = sigs.get((r.name, r.rdtype))
                self.records.pop((r.name, r.rdtype), None)
                self.records[(r.name, r.rdtype)] = (r, sig, tuple(parsed(r.name, rd) for rd in r))
                ttl = min(r.ttl, sig.ttl if sig is not None else r.ttl, ttl if ttl is not None else r.ttl)
        while len(self.records) > MAX_RECORDS:
            del self.records[next(iter(self.records))]
        return ttl

    def ttl(self) -> int:
        """How long all that is kept may be used: its smallest TTL (the SOA's MINIMUM too)."""
        rrsets = [r for rrset, sig, _ in self.records.values() for r in (rrset, sig) if r is not None]
        rrsets += [r for pair in self.wildcards.values() for r in pair]
        rrsets += [*self.soa, *(r for c in self.chain for r in (*c.ds, *c.ds_denial, *c.dnskey))]
        soa_min = [rd.minimum for r in self.soa if r.rdtype == RdataType.SOA for rd in r]  # type: ignore[attr-defined]
        return min([r.ttl for r in rrsets] + soa_min, default=0)


def verified_only(rrsets: Sequence[dns.rrset.RRset], links: Sequence[Link]) -> list[dns.rrset.RRset]:
    """The RRsets (and their RRSIGs) whose signature the validator verified (its "rrsig"
    links): what came along in a secure answer unverified is never kept for RFC 8198."""
    checked = {(link.name, link.rdtype) for link in links if link.kind == "rrsig"}
    return [r for r in rrsets
            if (r.name, r.covers if r.rdtype == RdataType.RRSIG else r.rdtype) in checked]


def denial_zone(authority: Sequence[dns.rrset.RRset]) -> dns.name.Name | None:
    """The zone a negative answer's proof comes from: its SOA's owner."""
    return next((r.name for r in authority if r.rdtype == RdataType.SOA), None)


def wildcard_zone(answer: Sequence[dns.rrset.RRset]) -> dns.name.Name | None:
    """The signer of a wildcard-expanded RRset in a positive answer (RRSIG labels below the
    owner's count), or None when nothing in it was expanded."""
    for r in answer:
        if r.rdtype == RdataType.RRSIG:
            for rd in r:
                if rd.labels < len(r.name) - 1:  # type: ignore[attr-defined]
                    return rd.signer  # type: ignore[attr-defined, no-any-return]
    return None


def _targets(qname: dns.name.Name, zone: dns.name.Name) -> Iterator[dns.name.Name]:
    """The names a denial of qname may rest on: qname, its ancestors down to the zone, and the
    wildcard at each of them (shared names: the same few for every name under a zone)."""
    n = qname
    while True:
        yield n
        if n == zone or len(n) <= len(zone):
            return
        parent = n.parent()
        yield shared((b"*", *parent.labels))
        n = parent


@dataclass(frozen=True)
class _Found:
    """A kept record that bears on a question: which of its `_targets` it matches (the name
    exists) and which it covers (proves absent), by index."""

    rrset: dns.rrset.RRset
    sig: dns.rrset.RRset | None
    record: NsecRecord | Nsec3Record
    matched: tuple[int, ...]
    covered: tuple[int, ...]

    @property
    def nsec3(self) -> bool:
        return isinstance(self.record, Nsec3Record)


def _relevant(d: ZoneDenials, targets: list[dns.name.Name], policy: DnssecPolicy) -> list[_Found]:
    """The records that match or cover one of `targets` (`_targets` of a question's name: the
    names its denial needs; no signature checked yet: the validator does that); [] when none
    matches or covers the name asked or one of its ancestors below the zone — every proof (NXDOMAIN,
    NODATA, wildcard) needs one such record, and without it the validator could only say no,
    at the cost of its signature checks. NSEC3 records over the policy's iteration limit
    (never a secure proof) are passed over, and [] is the answer once the NSEC3 hashes would
    exceed `max_nsec3_hashes`, as in a validation: records under many parameters cost no
    more than one question's work (the question is then resolved as usual)."""
    own = [i for i, t in enumerate(targets) if t.labels[:1] != (b"*",) and (t != d.zone or i == 0)]
    keys = [canonical_key(t) for t in targets]
    out = []
    hashes: dict[tuple[bytes, int], list[bytes]] = {}
    budget = policy.limits.max_nsec3_hashes
    needed = False
    # as they are now: read without the cache's lock, while a resolution thread may add some
    for rrset, sig, records in tuple(d.records.values()):
        for rec in records:
            if isinstance(rec, NsecRecord):
                matched = tuple(i for i, k in enumerate(keys) if k == rec.owner_key)
                covered = tuple(i for i, k in enumerate(keys) if rec.covers_key(k))
            else:
                if (rec is None or rec.opt_out or rec.algorithm != 1
                        or rec.iterations > policy.max_nsec3_iterations):
                    continue
                key = (rec.salt, rec.iterations)
                if key not in hashes:
                    budget -= len(targets)
                    if budget < 0:
                        return []
                    hashes[key] = [nsec3hash.kept_digest(t, rec.salt, rec.iterations)
                                   for t in targets]
                matched = tuple(i for i, h in enumerate(hashes[key]) if h == rec.hash)
                covered = tuple(i for i, h in enumerate(hashes[key]) if rec.covers(h))
            if matched or covered:
                needed = needed or any(i in own for i in (*matched, *covered))
                out.append(_Found(rrset, sig, rec, matched, covered))
                break
    return out if needed else []


def candidates(d: ZoneDenials, qname: dns.name.Name, qtype: int,
               policy: DnssecPolicy = DEFAULT_POLICY) -> list[Evidence]:
    """Evidence the kept records could prove for (qname, qtype) — a wildcard expansion
    first, then NXDOMAIN, then NODATA — for the validator to judge; [] when no kept record
    bears on the name. Each proof offered first with only the records a server's answer
    would carry (`_least`), then, for NXDOMAIN, with every record found."""
    if not qname.is_subdomain(d.zone) or qtype in (RdataType.DS, RdataType.RRSIG):
        return []
    targets = list(_targets(qname, d.zone))
    found = _relevant(d, targets, policy)
    if not found or _below_cut(found):
        return []
    found = found[:MAX_PROOF]
    q = Question(qname, qtype)
    exact = [f for f in found if 0 in f.matched]
    # A negative answer carries the zone's SOA (RFC 2308 §3): none is made until one is kept
    # (as Unbound requires); a wildcard expansion needs none.
    if exact:
        # The name exists: only NODATA can be proven (neither NXDOMAIN nor a wildcard
        # expansion), and the record matching it alone proves it or nothing does (RFC 4035
        # §5.4, RFC 5155 §8.5) — so the answer carries no more than a server's would. None
        # is offered when its type bitmap says there is data (the type, a CNAME) or that it
        # is a delegation: the validator would refuse it (`nodata_bits`), after its checks.
        if not d.soa or all(nodata_bits(f.record.types, qname, qtype, f.record.delegation)[0]
                            for f in exact):
            return []
        return [Evidence(q, dns.rcode.NOERROR, (), (*d.soa, *_proof(exact)), d.chain)]
    proof = _proof(found)
    out = []
    for w, owner in enumerate(targets):
        source = d.wildcards.get((owner, qtype)) if owner.labels[:1] == (b"*",) else None
        if source is not None:
            answer = (_renamed(source[0], qname), _renamed(source[1], qname))
            # the name the expansion replaced must be proven absent: qname (NSEC), the
            # next closer name below the wildcard's parent (NSEC3, RFC 5155 §8.8)
            least = _least(found, (w - 1 if found[0].nsec3 else 0,))
            out.append(Evidence(q, dns.rcode.NOERROR, answer, tuple(least or proof), d.chain))
            break
    if not d.soa:
        return out
    authority = (*d.soa, *proof)
    least = _least_nxdomain(found, qname)
    if least is not None and len(least) < len(proof):
        out.append(Evidence(q, dns.rcode.NXDOMAIN, (), (*d.soa, *least), d.chain))
    out.append(Evidence(q, dns.rcode.NXDOMAIN, (), authority, d.chain))
    return out + [Evidence(q, dns.rcode.NOERROR, (), authority, d.chain)]  # an empty non-terminal


def _below_cut(found: Sequence[_Found]) -> bool:
    """Whether the deepest ancestor of the question's name that a kept record matches is a
    delegation or a DNAME: the name is then in a child zone (or redirected), and no record of
    this zone can deny it (RFC 6840 §3.1). The validator refuses every such proof; none is
    offered, so a cold name under an insecure delegation costs no signature checks here."""
    # `_targets` puts the ancestors at the even indices from 2, the deepest first
    deepest = min(((i, f.record) for f in found for i in f.matched if i >= 2 and i % 2 == 0),
                  key=lambda found_at: found_at[0], default=None)
    return deepest is not None and (deepest[1].delegation or RdataType.DNAME in deepest[1].types)


def _least(found: Sequence[_Found], covering: Sequence[int], matching: Sequence[int] = ()) -> list[dns.rrset.RRset]:
    """The records (with their RRSIGs) covering each target of `covering` and matching each
    of `matching`, one apiece; [] when one is missing."""
    picked: list[_Found] = []
    for want, side in ((matching, "matched"), (covering, "covered")):
        for i in want:
            f = next((f for f in found if i in getattr(f, side)), None)
            if f is None:
                return []
            if not any(f is p for p in picked):
                picked.append(f)
    return _proof(picked)


def _least_nxdomain(found: Sequence[_Found], qname: dns.name.Name) -> list[dns.rrset.RRset] | None:
    """An NXDOMAIN proof as a server gives it: for NSEC (RFC 4035 §3.1.3.2) the record covering
    qname and the one covering the wildcard at the closest encloser that record implies (as
    the validator derives it); for NSEC3 (RFC 5155 §7.2.2) the record matching the closest
    encloser — the nearest ancestor some record matches — the one covering the next closer
    name, and the one covering the wildcard at the closest encloser. `_targets` lists names as
    qname, *.parent, parent, …: an ancestor at index c has its wildcard at c - 1 and the next
    closer name at c - 2. None when no such proof is found among the records."""
    if not found[0].nsec3:
        cover = next((f.record for f in found if 0 in f.covered), None)
        if not isinstance(cover, NsecRecord):
            return None
        c = 2 * (len(qname) - len(nsec_closest_encloser(qname, cover)))
        if c < 2:  # qname itself an empty non-terminal: no NXDOMAIN
            return None
        return _least(found, (0, c - 1)) or None
    matched = sorted({i for f in found for i in f.matched if i % 2 == 0 and i >= 2})
    if not matched:
        return None
    c = matched[0]
    return _least(found, (c - 2, c - 1), (c,)) or None


def _proof(found: Sequence[_Found]) -> list[dns.rrset.RRset]:
    """The records (each followed by its RRSIG) found."""
    out: list[dns.rrset.RRset] = []
    for f in found:
        out.append(f.rrset)
        if f.sig is not None:
            out.append(f.sig)
    return out


def _renamed(r: dns.rrset.RRset, name: dns.name.Name) -> dns.rrset.RRset:
    copy = r.copy()  # the rdata as they are: no re-hashing
    copy.name = name
    return copy
