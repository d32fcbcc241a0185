"""Whole-zone verification, the `dnssec-verify` equivalent (pure): every problem a Finding.

Checks (RFC 4033-4035, 5155, 6840 §5.11, 9077, 9276): every authoritative RRset has a valid
RRSIG from each algorithm of the apex DNSKEY RRset within its validity window at `now`; the
DNSKEY RRset is signed by a SEP key of each algorithm; the NSEC or NSEC3 chain is complete,
ordered, closed, with correct bitmaps and uniform parameters; glue, delegation NS and occluded
data carry no signatures.

The work is done on wire RRsets keyed by label tuples (core/zone/wire), not dnspython Names:
hashing and comparing Names is pure Python and dominated whole-zone runs. The signature
checks themselves go through a `Checker`, so the caller may spread them over processes.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import NamedTuple

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
from dns.rdatatype import RdataType

from sigchain.core.dnssec import algorithms
from sigchain.core.dnssec.policy import DEFAULT_POLICY, DnssecPolicy
from sigchain.core.dnssec.rrsig import rrset_data, time_status, wrong_fields
from sigchain.core.verify.chains import check_nsec, check_nsec3
from sigchain.core.verify.known import KnownChecker
from sigchain.core.verify.report import VerifyReport
from sigchain.core.zone.records import Key, key_of, key_wire, key_wire_via, type_text
from sigchain.core.zone.shape import (
    LABEL_KEYS,
    NodeKind,
    ZoneShape,
    clashes_with_cname,
    shape,
)
from sigchain.core.zone.wire import (
    Rrsig,
    WireRRset,
    key_text,
    name_text,
    parse_rrsig,
    read_name,
)
from sigchain.errors import InputError
from sigchain.findings import Finding, Param
from sigchain.model.keys import FLAG_REVOKE, FLAG_SEP, FLAG_ZONE

__all__ = ["Checker", "Indexed", "Job", "SigContext", "VerifyReport", "begin", "check_jobs", "check_signatures",
           "finish", "index_zone", "serial_checker", "verify_records"]

# One signature to check: (algorithm, indexes of candidate keys in the DNSKEY RRset's wire
# list, signature, signed data).
Job = tuple[int, tuple[int, ...], bytes, bytes]
# (DNSKEY wires, jobs) → a function returning, per job, the index of the key that verified
# it or -1. Returning a function lets a parallel checker work while the caller goes on.
Checker = Callable[[Sequence[bytes], Sequence[Job]], Callable[[], list[int]]]

CHUNK = 8000  # signatures planned per checker call: bounds memory on large zones


def public_key(dnskey_wire: bytes) -> object:
    """The public key of a DNSKEY's wire form (raises when unusable)."""
    _flags, _proto, alg = struct.unpack_from("!HBB", dnskey_wire)
    return algorithms.public_key_from_dnskey(algorithms.get(alg), dnskey_wire[4:])


def check_jobs(dnskeys: Sequence[bytes], jobs: Iterable[Job]) -> list[int]:
    """Per job, the index of the first candidate key whose signature verifies, or -1."""
    pubs: dict[int, object] = {}
    out = []
    for alg_n, candidates, signature, data in jobs:
        alg = algorithms.get(alg_n)
        hit = -1
        for i in candidates:
            pub = pubs.get(i)
            if pub is None:
                pub = pubs[i] = public_key(dnskeys[i])
            if algorithms.verify(alg, pub, signature, data):  # type: ignore[arg-type]
                hit = i
                break
        out.append(hit)
    return out


def serial_checker(dnskeys: Sequence[bytes], jobs: Sequence[Job]) -> Callable[[], list[int]]:
    return lambda: check_jobs(dnskeys, jobs)


@dataclass
class Indexed:
    """A zone's RRsets by owner (label-tuple key) and type, its RRSIGs by owner and covered
    type, the owners' presentation forms, and the algorithms of every RRSIG."""

    data: dict[Key, dict[int, WireRRset]] = field(default_factory=dict)
    sigs: dict[Key, dict[int, list[Rrsig]]] = field(default_factory=dict)
    owners: dict[Key, str] = field(default_factory=dict)
    signing_algs: set[int] = field(default_factory=set)

    def text(self, key: Key) -> str:
        t = self.owners.get(key)
        return t if t is not None else key_text(key)


def index_zone(rrsets: Iterable[WireRRset]) -> Indexed:
    """Several RRSIG RRsets at one name are merged."""
    z = Indexed()
    data, sigs, owners, algs = z.data, z.sigs, z.owners, z.signing_algs
    signers: dict[bytes, Key] = {}
    for rr in rrsets:
        node = data.get(rr.key)
        if node is None:
            node = data[rr.key] = {}
            owners[rr.key] = rr.owner
        if rr.rdtype == RdataType.RRSIG:
            node_sigs = sigs.setdefault(rr.key, {})
            for wire in rr.wires:
                sig = parse_rrsig(wire, signers)
                node_sigs.setdefault(sig.type_covered, []).append(sig)
                algs.add(sig.algorithm)
        else:
            node[rr.rdtype] = rr
    return z


def _usable_keys(dnskey: WireRRset, policy: DnssecPolicy,
                 revoked: bool = False) -> dict[tuple[int, int], list[int]]:
    """(algorithm, key tag) → indexes of the zone keys a validator could use: protocol 3, not
    revoked, an algorithm the policy validates, a well-formed public key. With `revoked`, the
    revoked keys instead (they may only sign the DNSKEY RRset themselves: RFC 5011 §2.1)."""
    keys: dict[tuple[int, int], list[int]] = {}
    for i, wire in enumerate(dnskey.wires):
        flags, protocol, alg = struct.unpack_from("!HBB", wire)
        if not flags & FLAG_ZONE or protocol != 3 or bool(flags & FLAG_REVOKE) != revoked:
            continue
        if not policy.may_validate(alg):
            continue
        try:
            public_key(wire)
        except Exception:
            continue
        rd = dns.rdata.from_wire(dns.rdataclass.IN, RdataType.DNSKEY, wire, 0, len(wire))
        keys.setdefault((alg, dns.dnssec.key_id(rd)), []).append(i)  # type: ignore[arg-type]
    return keys


class SigContext(NamedTuple):
    """What checking the signatures of some of a zone's names needs from the whole zone:
    the apex, its DNSKEY RRset and usable keys, the algorithms that sign, the names whose
    types make zone cuts (NS, DNAME) or the apex, with their types."""

    okey: Key
    apex_text: str
    dnskeys: tuple[bytes, ...]
    keys: dict[tuple[int, int], list[int]]
    algs: list[int]
    cuts: Mapping[Key, AbstractSet[int]]
    now: int
    ignore_ksk: bool
    # Revoked keys: they may only sign the DNSKEY RRset themselves (RFC 5011 §2.1).
    self_signers: dict[tuple[int, int], list[int]]
    # Digests of the signatures verified at the last load (core/verify/known).
    known: AbstractSet[bytes] = frozenset()
    # Whether to collect the digests of the signatures verified (for the next load).
    learn: bool = True


_NOT_DATA = frozenset({RdataType.NSEC3, RdataType.RRSIG})


def type_sets(data: Mapping[Key, Iterable[int]]) -> dict[Key, frozenset[int]]:
    """Each name's types; names with the same types share one set (a zone has few kinds of
    name, and a set per name of a big zone is tens of megabytes)."""
    shared: dict[tuple[int, ...], frozenset[int]] = {}
    out = {}
    for n, rs in data.items():
        k = tuple(rs)
        ts = shared.get(k)
        if ts is None:
            ts = shared[k] = frozenset(k)
        out[n] = ts
    return out


def _data_shape(okey: Key, types_at: Mapping[Key, frozenset[int]]) -> ZoneShape:
    """The zone's shape: hashed NSEC3 owners (only NSEC3 + RRSIG) and RRSIG-only leftovers
    are not data (as `shape(..., ignore=...)`, with the sets shared)."""
    memo: dict[frozenset[int], frozenset[int]] = {}
    present = {}
    for n, ts in types_at.items():
        p = memo.get(ts)
        if p is None:
            p = memo[ts] = ts - _NOT_DATA
        present[n] = p
    return shape(okey, present, ops=LABEL_KEYS)


def begin(rep: VerifyReport, z: Indexed, now: int, ignore_ksk: bool, policy: DnssecPolicy,
          known: AbstractSet[bytes] = frozenset(), learn: bool = True,
          ) -> tuple[SigContext | None, ZoneShape, Mapping[Key, AbstractSet[int]], WireRRset]:
    """The whole-zone checks that come before the signatures (apex, keys, CNAMEs, algorithms
    that sign nothing); the signatures' context (None: no DNSKEY, nothing to check), the
    zone's shape, types by name and SOA for `finish`. `z` needs no RRSIG wires."""
    okey = key_of(rep.origin)
    apex = z.data.get(okey, {})
    soa = apex.get(RdataType.SOA)
    if soa is None:  # every zone reader refuses such a file first (bad input, exit 2)
        raise InputError(f"no SOA record at the zone apex {rep.origin}")
    types_at = type_sets(z.data)
    dnskey = apex.get(RdataType.DNSKEY)
    if dnskey is None:
        rep.add("NO_DNSKEY", {"zone": rep.origin.to_text()}, rep.origin)
        return None, shape(okey, {}, ops=LABEL_KEYS), types_at, soa
    keys = _usable_keys(dnskey, policy)
    if not keys:  # nothing could be checked: no zone key, or none a validator could use
        rep.add("NO_USABLE_DNSKEY", {"zone": rep.origin.to_text()}, rep.origin, RdataType.DNSKEY)
    algs = rep.algorithms = sorted({a for a, _ in keys})
    _check_cnames(rep, types_at, z.text)
    zshape = _data_shape(okey, types_at)
    # RFC 4035 §2.2, RFC 6840 §5.11: each algorithm of the DNSKEY RRset signs every RRset. One
    # that signs nothing at all is one finding, not a missing RRSIG on every RRset of the zone.
    for a in algs:
        if a not in z.signing_algs:
            rep.add("DNSKEY_ALGORITHM_UNSIGNED", {"algorithm": a}, rep.origin, RdataType.DNSKEY)
    signing = [a for a in algs if a in z.signing_algs]
    cuts = {n: ts for n, ts in types_at.items()
            if n == okey or RdataType.NS in ts or RdataType.DNAME in ts}
    ctx = SigContext(okey, z.text(okey), dnskey.wires, keys, signing, cuts, now, ignore_ksk,
                     _usable_keys(dnskey, policy, revoked=True), known, learn)
    return ctx, zshape, types_at, soa


def check_signatures(rep: VerifyReport, z: Indexed, ctx: SigContext, zshape: ZoneShape | None,
                     checker: Checker = serial_checker,
                     marks: list[tuple[Key, int]] | None = None) -> None:
    """Every signature over the RRsets of `z` (the whole zone, or some of its names: then
    `zshape` None, their shape is worked out with the zone cuts of `ctx`); `marks` gets
    (name, index of its first finding) per name."""
    if zshape is None:
        z.owners.setdefault(ctx.okey, ctx.apex_text)
        zshape = _data_shape(ctx.okey, {**ctx.cuts, **type_sets(z.data)})
    _Signatures(rep, z.data, z.sigs, zshape, ctx.keys, ctx.dnskeys, z.text, ctx.now, checker,
                marks, ctx.self_signers).run(ctx.algs, ctx.ignore_ksk)


def verify_records(
    rrsets: Iterable[WireRRset],
    origin: dns.name.Name,
    now: int,
    ignore_ksk: bool = False,
    checker: Checker = serial_checker,
    policy: DnssecPolicy = DEFAULT_POLICY,
    known: AbstractSet[bytes] = frozenset(),
    learn: bool = True,
) -> VerifyReport:
    """Verify a zone given as wire RRsets (several RRSIG RRsets at one name are merged);
    keys of algorithms the policy does not validate are left out, as a validator would.
    The crypto of signatures in `known` (core/verify/known) is skipped; with `learn`, the
    report's `verified_digests` are the next load's `known`."""
    rep = VerifyReport(origin)
    z = index_zone(rrsets)
    ctx, zshape, types_at, soa = begin(rep, z, now, ignore_ksk, policy)
    if ctx is None:
        return rep
    kc = KnownChecker(checker, known, learn)
    check_signatures(rep, z, ctx, zshape, kc)
    rep.signatures_known, rep.verified_digests = kc.skipped, kc.packed
    finish(rep, z, zshape, types_at, soa)
    return rep


def _check_cnames(rep: VerifyReport, types_at: Mapping[Key, AbstractSet[int]], text: Callable[[Key], str]) -> None:
    """CNAME and other data at one name (RFC 1034 §3.6.2, RFC 2181 §10.1), as dnssec-verify
    and named-checkzone refuse it."""
    for k, types in types_at.items():
        if RdataType.CNAME in types:
            others = sorted(t for t in types if clashes_with_cname(t))
            if others:
                rep.add("CNAME_AND_OTHER_DATA", {"types": [type_text(t) for t in others]},
                        text(k), RdataType.CNAME)


def finish(rep: VerifyReport, z: Indexed, zshape: ZoneShape, types_at: Mapping[Key, AbstractSet[int]],
           soa: WireRRset) -> None:
    """The zone has one denial chain, NSEC or NSEC3, checked whole; its TTL is
    min(SOA MINIMUM, SOA TTL) (RFC 9077)."""
    has_nsec = any(RdataType.NSEC in ts for ts in types_at.values())
    has_nsec3 = (any(RdataType.NSEC3 in ts for ts in types_at.values())
                 or RdataType.NSEC3PARAM in types_at[zshape.origin])
    if has_nsec and has_nsec3:
        rep.add("NSEC_AND_NSEC3", {})
    ttl = min(struct.unpack("!I", soa.wires[0][-4:])[0], soa.ttl)
    if has_nsec:
        rep.denial = "nsec"
        check_nsec(rep, z.data, zshape, ttl, z.text)
    elif has_nsec3:
        rep.denial = "nsec3"
        check_nsec3(rep, z.data, zshape, ttl, z.text)
    else:
        rep.add("NO_DENIAL_CHAIN", {}, rep.origin)


# A signature as planned: (algorithm, key tag, findings so far, fields ok, job index or -1
# when there is no such key).
_Planned = tuple[int, int, Sequence[Finding], bool, int]
_RR_FIXED = struct.Struct("!HHIH")  # type, class, TTL, rdata length (RFC 4034 §6.2)
_HALF = 1 << 31  # RRSIG times compare in serial arithmetic (RFC 4034 §3.1.5)


_UNUSABLE = frozenset({"RRSIG_EXPIRED", "RRSIG_NOT_YET_VALID", "RRSIG_UNKNOWN_KEY"})


class _Mark(NamedTuple):
    """In the plan: the findings from here on are about `name`."""

    name: Key


class _Signatures:
    """Every authoritative RRset's signatures: plan the checks a chunk at a time, hand the
    crypto to the checker, then report in canonical order (the next chunk is planned while
    the checker works on the last)."""

    def __init__(
        self,
        rep: VerifyReport,
        data: dict[Key, dict[int, WireRRset]],
        sigs: dict[Key, dict[int, list[Rrsig]]],
        zshape: ZoneShape,
        keys: dict[tuple[int, int], list[int]],
        dnskeys: tuple[bytes, ...],
        text: Callable[[Key], str],
        now: int,
        checker: Checker,
        marks: list[tuple[Key, int]] | None = None,
        self_signers: dict[tuple[int, int], list[int]] | None = None,
    ):
        self.marks = marks
        self.rep, self.data, self.sigs, self.zshape = rep, data, sigs, zshape
        self.keys, self.dnskeys, self.text, self.now, self.checker = keys, dnskeys, text, now, checker
        self.self_signers = self_signers or {}  # revoked keys: they sign only the DNSKEY RRset
        self.published_algs = frozenset(w[3] for w in dnskeys)  # every DNSKEY's, usable or not
        self.okey = zshape.origin
        self.owire = key_wire(self.okey)
        self.parent_wires: dict[Key, bytes] = {}  # for key_wire_via (most names share a parent)

    def run(self, algs: list[int], ignore_ksk: bool) -> None:
        # pending: findings, or (name, rdtype, planned signatures) for an RRset, or marks
        pending: list[Finding | tuple[Key, int, list[_Planned]] | _Mark] = []
        jobs: list[Job] = []
        in_flight: tuple[list, Callable[[], list[int]]] | None = None
        marks = self.marks is not None
        for name in sorted(self.data):
            if marks:
                pending.append(_Mark(name))
            self._plan_name(name, pending, jobs)
            if len(jobs) >= CHUNK:
                if in_flight is not None:
                    self._report(*in_flight, algs, ignore_ksk)
                in_flight = (pending, self.checker(self.dnskeys, jobs))
                pending, jobs = [], []
        if in_flight is not None:
            self._report(*in_flight, algs, ignore_ksk)
        self._report(pending, self.checker(self.dnskeys, jobs), algs, ignore_ksk)

    def _plan_name(self, name: Key, pending: list, jobs: list[Job]) -> None:
        zshape = self.zshape
        kind = zshape.kinds.get(name)
        nsec3_owner = kind is None  # names outside `kinds` are NSEC3 owners (or RRSIG-only)
        if kind is None:
            kind = NodeKind.AUTH
        node = self.data[name]
        node_sigs = self.sigs.get(name, {})
        for covered in sorted(node_sigs):
            if covered not in node or not (
                kind is not NodeKind.OCCLUDED and (nsec3_owner or zshape.is_signed_at(name, covered))
            ):
                what = "absent" if covered not in node else kind.value
                pending.append(self.rep.finding("RRSIG_ON_NON_AUTHORITATIVE", {"kind": what},
                                                self.text(name), covered))
        if kind is NodeKind.OCCLUDED:
            return
        owner_wire = None
        now = self.now
        labels = len(name) - (1 if name and name[-1] == b"*" else 0)
        for rdtype, rr in sorted(node.items()):
            if not (nsec3_owner or zshape.is_signed_at(name, rdtype)):
                continue
            self.rep.rrsets_checked += 1
            planned: list[_Planned] = []
            for sig in node_sigs.get(rdtype, ()):
                alg, tag = sig.algorithm, sig.key_tag
                found: Sequence[Finding]
                if (  # the common case, with no finding to make: skip the detailed checks
                    sig.signer == self.okey and sig.labels == labels and sig.original_ttl == rr.ttl
                    and sig.inception <= now <= sig.expiration and sig.expiration - sig.inception < _HALF
                ):
                    found, ok = (), True
                else:
                    found = []
                    ok = self._check_fields(found, name, rr, sig, labels)
                candidates = self.keys.get((alg, tag))
                if not candidates and rdtype == RdataType.DNSKEY and name == self.okey:
                    candidates = self.self_signers.get((alg, tag))
                if not candidates:  # an algorithm with no DNSKEY at all: one ahead of its keys
                    code = "RRSIG_UNKNOWN_KEY" if alg in self.published_algs else "RRSIG_KEY_NOT_PUBLISHED"
                    found = [*found, self.rep.finding(
                        code, {"algorithm": alg, "tag": tag, "zone": self.text(self.okey)},
                        self.text(name), rdtype)]
                    planned.append((alg, tag, found, False, -1))
                    continue
                if owner_wire is None:
                    owner_wire = key_wire_via(name, self.parent_wires)
                if len(rr.wires) == 1:
                    w = rr.wires[0]
                    signed = sig.header + owner_wire + _RR_FIXED.pack(rdtype, 1, sig.original_ttl, len(w)) + w
                else:
                    signed = sig.header + rrset_data(owner_wire, rdtype, sig.original_ttl, rr.wires)
                planned.append((alg, tag, found, ok, len(jobs)))
                jobs.append((alg, tuple(candidates), sig.signature, signed))
            pending.append((name, rdtype, planned))

    def _check_fields(self, found: list[Finding], name: Key, rr: WireRRset, sig: Rrsig,
                      labels: int) -> bool:
        """Signer, labels, original TTL and validity window; False when the RRSIG is unusable."""
        where, rdtype = self.text(name), rr.rdtype
        ids = {"algorithm": sig.algorithm, "tag": sig.key_tag}

        def add(code: str, **params: Param) -> None:
            found.append(self.rep.finding(code, {**ids, **params}, where, rdtype))

        wrong = wrong_fields(signer_is_zone=sig.signer == self.okey, labels=sig.labels,
                             owner_labels=labels, original_ttl=sig.original_ttl, rrset_ttl=rr.ttl)
        ok = True
        if "signer" in wrong:
            signer = name_text(read_name(sig.header, 18)[0])
            add("RRSIG_FIELDS_WRONG", field="signer", found=signer, expected=self.text(self.okey))
            ok = False
        if "labels" in wrong:
            add("RRSIG_FIELDS_WRONG", field="labels", found=sig.labels, expected=labels)
            ok = False
        if "original-ttl" in wrong:
            add("RRSIG_FIELDS_WRONG", field="original TTL", found=sig.original_ttl, expected=rr.ttl)
        status = time_status(sig.inception, sig.expiration, self.now)
        if status == "expired":
            add("RRSIG_EXPIRED", expiration=sig.expiration)
            ok = False
        elif status == "not-yet-valid":
            add("RRSIG_NOT_YET_VALID", inception=sig.inception)
            ok = False
        return ok

    def _revoked_self_signed(self, planned: list[_Planned], hits: list[int], where: str) -> None:
        """RFC 5011 §2.1: a revoked KSK signs the DNSKEY RRset itself, or no resolver can
        see it revoked (as dnssec-verify's "revoked KSK is not self signed")."""
        signers = {hits[job] for _a, _t, _f, ok, job in planned if ok and job >= 0 and hits[job] >= 0}
        for (alg, tag), indexes in self.self_signers.items():
            for i in indexes:
                if struct.unpack_from("!H", self.dnskeys[i])[0] & FLAG_SEP and i not in signers:
                    self.rep.add("DNSKEY_REVOKED_NOT_SELF_SIGNED", {"algorithm": alg, "tag": tag},
                                 where, RdataType.DNSKEY)

    def _report(self, pending: list, results: Callable[[], list[int]], algs: list[int], ignore_ksk: bool) -> None:
        rep = self.rep
        hits = results()
        for item in pending:
            if item.__class__ is _Mark:
                self.marks.append((item.name, len(rep.findings)))  # type: ignore[union-attr]
                continue
            if isinstance(item, Finding):
                rep.findings.append(item)
                continue
            name, rdtype, planned = item
            where = self.text(name)
            good_algs: set[int] = set()
            good_sep_algs: set[int] = set()
            seen_algs: set[int] = set()
            bad: list[int] = []  # the planned entries whose signature does not verify
            for i, (alg, _tag, _found, ok, job) in enumerate(planned):
                seen_algs.add(alg)
                rep.signatures_checked += 1
                if job < 0:
                    continue
                hit = hits[job]
                if hit < 0:
                    bad.append(i)
                    continue
                rep.signatures_verified += 1
                if ok:
                    rep.signatures_valid += 1
                    good_algs.add(alg)
                    flags = struct.unpack_from("!H", self.dnskeys[hit])[0]
                    if flags & FLAG_SEP and not flags & FLAG_REVOKE:  # a revoked key anchors nothing
                        good_sep_algs.add(alg)
            for i, (alg, tag, found, _ok, _job) in enumerate(planned):
                if found and alg in good_algs and all(f.code in _UNUSABLE for f in found):
                    # a stale signature beside a valid one of its algorithm: one suffices
                    # (RFC 4035 §5.3.3; as dnssec-verify and ldns-verify-zone, which pass it)
                    for f in found:
                        rep.add("RRSIG_UNUSED", {"algorithm": alg, "why": f.message},
                                where, rdtype)
                else:
                    rep.findings.extend(found)
                if i in bad:
                    rep.add("RRSIG_BAD_SIGNATURE", {"algorithm": alg, "tag": tag}, where, rdtype)
            for a in algs:
                if a not in seen_algs:
                    rep.add("RRSIG_MISSING", {"algorithm": a, "zone": self.text(self.okey)}, where, rdtype)
            if rdtype == RdataType.DNSKEY and name == self.okey:
                if not ignore_ksk:
                    for a in algs:
                        if a in good_algs and a not in good_sep_algs:
                            rep.add("DNSKEY_NOT_SIGNED_BY_KSK", {"algorithm": a}, where, rdtype)
                self._revoked_self_signed(planned, hits, where)
