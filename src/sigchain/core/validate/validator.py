"""The DNSSEC validator (pure): evidence for one question + trust anchors + `now` → Verdict.

A tracer or resolver gathers the evidence — the response to the question and, for every zone
from a trust anchor down to the zones the answer touches, the zone's DS RRset from its parent
(or the parent's proof that there is none) and its DNSKEY RRset — and this module decides:
secure, insecure, bogus or indeterminate (RFC 4033 §5, RFC 4035 §4.3, §5), with every link it
checked and every problem it found as a `Finding` carrying its RFC 8914 EDE code.

Work is capped against KeyTrap-class inputs (CVE-2023-50387, CVE-2023-50868): signature
verifications per RRset and per question, keys tried per key tag, and NSEC3 hashes per
question. Hitting a cap ends in bogus with a finding that names the cap.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import dns.dnssec
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.DNSKEY
import dns.rdtypes.ANY.DS
import dns.rdtypes.ANY.RRSIG
import dns.rrset
from dns.rdatatype import RdataType

from sigchain.core.dnssec import algorithms
from sigchain.core.dnssec.ds import ds_matches
from sigchain.core.dnssec.policy import DEFAULT_POLICY, DnssecPolicy
from sigchain.core.dnssec.rrsig import header_of, rrsig_labels, signature_data, time_status
from sigchain.core.validate import proofs
from sigchain.core.validate.proofs import Nsec3Record, NsecRecord, Proof, ProofStatus
from sigchain.core.zone import nsec3hash
from sigchain.errors import InputError
from sigchain.findings import Finding, Param
from sigchain.model.keys import FLAG_REVOKE, FLAG_ZONE

RRSIG = dns.rdtypes.ANY.RRSIG.RRSIG
DNSKEY = dns.rdtypes.ANY.DNSKEY.DNSKEY
DS = dns.rdtypes.ANY.DS.DS

_SERIAL = 1 << 32


class Status(enum.Enum):
    """RFC 4033 §5 / RFC 4035 §4.3 security status; the order is "how bad" for combining."""

    SECURE = "secure"
    INSECURE = "insecure"
    INDETERMINATE = "indeterminate"
    BOGUS = "bogus"


_RANK = {Status.SECURE: 0, Status.INSECURE: 1, Status.INDETERMINATE: 2, Status.BOGUS: 3}


def _worst(*statuses: Status) -> Status:
    return max(statuses, key=_RANK.__getitem__)


class Kind(enum.Enum):
    ANSWER = "answer"  # the question's RRset, possibly at the end of a CNAME/DNAME chain
    NXDOMAIN = "nxdomain"
    NODATA = "nodata"
    REFERRAL = "referral"  # a delegation to a child zone: the verdict is the delegation's


@dataclass(frozen=True)
class Question:
    name: dns.name.Name
    rdtype: int
    rdclass: int = dns.rdataclass.IN


@dataclass(frozen=True)
class ZoneCut:
    """What was learned about one zone: its DS RRset (with RRSIGs) from the parent, or the
    parent's NSEC/NSEC3 records (with RRSIGs) proving there is none, and the zone's own DNSKEY
    RRset (with RRSIGs). RRSIGs travel as RRSIG RRsets, as in a DNS message section."""

    name: dns.name.Name
    ds: tuple[dns.rrset.RRset, ...] = ()
    ds_denial: tuple[dns.rrset.RRset, ...] = ()
    dnskey: tuple[dns.rrset.RRset, ...] = ()


@dataclass(frozen=True)
class Evidence:
    """Everything gathered for one question. `zones` lists every zone between a trust anchor
    and the zones the answer touches (a zone under an anchor needs its DS link to be known)."""

    question: Question
    rcode: int = dns.rcode.NOERROR
    answer: tuple[dns.rrset.RRset, ...] = ()
    authority: tuple[dns.rrset.RRset, ...] = ()
    zones: tuple[ZoneCut, ...] = ()

    @classmethod
    def from_message(cls, message: dns.message.Message, zones: Iterable[ZoneCut] = ()) -> Evidence:
        """The question, rcode and sections of a response, as a tracer receives it."""
        q = message.question[0]
        return cls(Question(q.name, q.rdtype, q.rdclass), message.rcode(),
                   tuple(message.answer), tuple(message.authority), tuple(zones))


@dataclass(frozen=True)
class Link:
    """One link checked: a trust anchor or DS matching a DNSKEY, a key verifying an RRSIG, a
    proof of a DS's absence, or a denial proof."""

    zone: dns.name.Name
    kind: str  # "anchor" | "ds" | "rrsig" | "no-ds" | "denial"
    name: dns.name.Name
    rdtype: int
    key_tag: int | None = None
    algorithm: int | None = None
    detail: str = ""

    def __str__(self) -> str:
        key = f" key {self.key_tag}/{self.algorithm}" if self.key_tag is not None else ""
        return (f"{self.zone} {self.kind}: {self.name} {dns.rdatatype.to_text(self.rdtype)}"
                f"{key}: {self.detail}")

    def to_dict(self) -> dict[str, object]:
        return {
            "zone": self.zone.to_text(), "kind": self.kind, "name": self.name.to_text(),
            "type": dns.rdatatype.to_text(self.rdtype), "key_tag": self.key_tag,
            "algorithm": self.algorithm, "detail": self.detail,
        }


@dataclass(frozen=True)
class Verdict:
    status: Status
    kind: Kind
    ttl: int | None  # validated TTL; None when bogus
    links: tuple[Link, ...] = ()
    findings: tuple[Finding, ...] = ()

    @property
    def ede(self) -> tuple[int, ...]:
        """The RFC 8914 EDE codes of the findings, first occurrence first."""
        return tuple(dict.fromkeys(f.ede for f in self.findings if f.ede is not None))

    @property
    def codes(self) -> set[str]:
        return {f.code for f in self.findings}

    def to_dict(self) -> dict[str, object]:
        return {
            "status": self.status.value, "kind": self.kind.value, "ttl": self.ttl,
            "ede": list(self.ede), "links": [link.to_dict() for link in self.links],
            "findings": [f.to_dict() for f in self.findings],
        }




def validate(evidence: Evidence, anchors: Sequence[dns.rrset.RRset], now: int,
             policy: DnssecPolicy = DEFAULT_POLICY) -> Verdict:
    """Validate the evidence for one question against DS or DNSKEY trust anchors (RRsets whose
    owner is the anchored zone) at `now`, seconds since the epoch."""
    return _Run(evidence, anchors, now, policy).verdict()


# ---------------------------------------------------------------------------------------------
# Internals
# ---------------------------------------------------------------------------------------------


class _LimitHit(Exception):
    """A per-question work cap was reached: validation stops, the verdict is bogus."""

    def __init__(self, limit: str, value: int, what: str):
        super().__init__(limit)
        self.params: dict[str, Param] = {"limit": limit, "value": value, "what": what}


@dataclass(frozen=True)
class _Signed:
    rrset: dns.rrset.RRset
    sigs: tuple[RRSIG, ...]

    @property
    def name(self) -> dns.name.Name:
        return self.rrset.name

    @property
    def rdtype(self) -> int:
        return self.rrset.rdtype


def _pair(rrsets: Iterable[dns.rrset.RRset]) -> list[_Signed]:
    """Attach to each RRset the RRSIGs with its owner, class and covered type."""
    rrsets = list(rrsets)
    sigs: dict[tuple[dns.name.Name, int, int], list[RRSIG]] = {}
    for r in rrsets:
        if r.rdtype == RdataType.RRSIG:
            for sig in r:
                sigs.setdefault((r.name, r.rdclass, sig.type_covered), []).append(sig)  # type: ignore[attr-defined]
    return [
        _Signed(r, tuple(sigs.get((r.name, r.rdclass, r.rdtype), ())))
        for r in rrsets if r.rdtype != RdataType.RRSIG
    ]


def _find(signed: Iterable[_Signed], name: dns.name.Name, rdtype: int) -> _Signed | None:
    return next((s for s in signed if s.name == name and s.rdtype == rdtype), None)


@dataclass(frozen=True)
class _Key:
    rdata: DNSKEY
    tag: int
    public: algorithms.PublicKey


KeyMap = Mapping[tuple[int, int], Sequence[_Key]]  # (algorithm, key tag) → keys


@dataclass(frozen=True)
class _ZoneKeys:
    """A zone's security status and, when secure, its authenticated usable keys."""

    status: Status
    keys: KeyMap = field(default_factory=dict)


@dataclass(frozen=True)
class _Checked:
    """The outcome of checking one RRset's RRSIGs."""

    ok: bool
    ttl: int = 0
    closest_encloser: dns.name.Name | None = None  # set when the RRset is a wildcard expansion
    link: Link | None = None
    problems: tuple[Finding, ...] = ()


def _finding(code: str, params: Mapping[str, Param], name: dns.name.Name | None = None,
              rdtype: int | None = None) -> Finding:
    return Finding(code, params, name.to_text() if name is not None else None,
                   dns.rdatatype.to_text(rdtype) if rdtype is not None else None)


def _unusable(rd: DNSKEY, policy: DnssecPolicy) -> str:
    """Why a DNSKEY cannot authenticate anything (RFC 4034 §2.1.1-2.1.2, RFC 5011 §2.1)."""
    if rd.protocol != 3:
        return f"protocol {rd.protocol}, not 3"
    if not rd.flags & FLAG_ZONE:
        return "the zone-key flag is clear"
    if rd.flags & FLAG_REVOKE:
        return "it is revoked"
    if not policy.may_validate(rd.algorithm):
        return f"algorithm {rd.algorithm} is not supported"
    return ""


def _remaining(expiration: int, now: int) -> int:
    """Seconds from now to an RRSIG expiration, in serial arithmetic (RFC 4034 §3.1.5)."""
    delta = (expiration - now) % _SERIAL
    return delta if delta < 2**31 else 0


def _source_of_synthesis(owner: dns.name.Name, labels: int) -> dns.name.Name:
    """`*.<the last `labels` labels of owner>` (RFC 4035 §5.3.2)."""
    return proofs.wildcard_of(owner.split(labels + 1)[1])


class _Run:
    """One validation: the evidence, the caches and the counters of work done."""

    def __init__(self, ev: Evidence, anchors: Sequence[dns.rrset.RRset], now: int, policy: DnssecPolicy):
        self.ev = ev
        self.now = now
        self.policy = policy
        self.limits = policy.limits
        self.anchors: dict[dns.name.Name, list[dns.rdata.Rdata]] = {}
        for rrset in anchors:
            if rrset.rdtype not in (RdataType.DS, RdataType.DNSKEY):
                raise InputError(f"trust anchor {rrset.name} is a {dns.rdatatype.to_text(rrset.rdtype)} record, not DS or DNSKEY")
            self.anchors.setdefault(rrset.name, []).extend(rrset)
        self.cuts = {c.name: c for c in ev.zones}
        self.known = set(self.cuts) | set(self.anchors)
        self.authority = _pair(ev.authority)
        self.findings: list[Finding] = []
        self.links: list[Link] = []
        self.zone_keys: dict[dns.name.Name, _ZoneKeys] = {}
        self.verifications = 0
        self.hashes: dict[tuple[dns.name.Name, int, int, bytes], bytes] = {}
        self.denial_checks: dict[tuple[dns.name.Name, int, dns.name.Name], _Checked] = {}
        self.ttls: list[int] = []

    # -- the verdict -------------------------------------------------------------------------

    def verdict(self) -> Verdict:
        steps, last, kind = self._shape()
        try:
            status = self._validate(steps, last, kind)
        except _LimitHit as hit:
            self.findings.append(_finding("WORK_LIMIT_EXCEEDED", hit.params, self.ev.question.name))
            status = Status.BOGUS
        if status is Status.INDETERMINATE:
            self.findings.append(_finding("NO_TRUST_ANCHOR", {}, self.ev.question.name))
        ttl = min(self.ttls) if self.ttls and status is not Status.BOGUS else None
        return Verdict(status, kind, ttl, tuple(self.links), tuple(self.findings))

    def _shape(self) -> tuple[list[tuple[str, _Signed, _Signed | None]], dns.name.Name, Kind]:
        """Follow the CNAME/DNAME chain from the question by names only (no crypto yet)."""
        q = self.ev.question
        answer = _pair(self.ev.answer)
        steps: list[tuple[str, _Signed, _Signed | None]] = []
        name, seen = q.name, set()
        while name not in seen:
            seen.add(name)
            final = _find(answer, name, q.rdtype)
            if final is not None:
                steps.append(("answer", final, None))
                return steps, name, Kind.ANSWER
            dname = max((s for s in answer if s.rdtype == RdataType.DNAME and name.is_subdomain(s.name)
                         and name != s.name), key=lambda s: len(s.name), default=None)
            cname = _find(answer, name, RdataType.CNAME)
            if dname is not None:
                steps.append(("dname", dname, cname))
                try:
                    name = name.relativize(dname.name).derelativize(dname.rrset[0].target)  # type: ignore[attr-defined]
                except dns.name.NameTooLong:
                    break
            elif cname is not None and q.rdtype != RdataType.CNAME:
                steps.append(("cname", cname, None))
                name = cname.rrset[0].target  # type: ignore[attr-defined]
            else:
                break
        if self.ev.rcode == dns.rcode.NXDOMAIN:
            return steps, name, Kind.NXDOMAIN
        if self._delegation_above(name) is not None:
            return steps, name, Kind.REFERRAL
        return steps, name, Kind.NODATA

    def _delegation_above(self, name: dns.name.Name) -> _Signed | None:
        """A referral: NS at or above `name` in the authority section and no SOA."""
        if any(s.rdtype == RdataType.SOA for s in self.authority):
            return None
        cuts = [s for s in self.authority if s.rdtype == RdataType.NS and name.is_subdomain(s.name)]
        return max(cuts, key=lambda s: len(s.name), default=None)

    def _validate(self, steps: list[tuple[str, _Signed, _Signed | None]], last: dns.name.Name,
                  kind: Kind) -> Status:
        status = Status.SECURE
        if self.ev.rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN) or (
            kind is Kind.ANSWER and self.ev.rcode != dns.rcode.NOERROR
        ):
            self.findings.append(_finding("RCODE_MISMATCH", {
                "rcode": dns.rcode.to_text(self.ev.rcode), "kind": kind.value}, self.ev.question.name))
            status = Status.BOGUS
        for step, signed, cname in steps:
            status = _worst(status, self._positive(signed))
            if step == "dname":
                status = _worst(status, self._dname_synthesis(signed, cname))
        if kind is Kind.REFERRAL:
            status = _worst(status, self._referral(last))
        elif kind is not Kind.ANSWER:
            status = _worst(status, self._negative(last, self.ev.question.rdtype, kind))
        return status

    # -- zones and keys (RFC 4035 §5.1, §5.2) ------------------------------------------------

    def _zone_above(self, name: dns.name.Name) -> dns.name.Name | None:
        above = [z for z in self.known if name.is_subdomain(z) and z != name]
        return max(above, key=len, default=None)

    def _zone_of(self, owner: dns.name.Name, rdtype: int, sigs: Sequence[RRSIG]) -> dns.name.Name | None:
        """The zone that holds (owner, rdtype): the deepest zone of the evidence or the anchors
        that encloses the owner (strictly, for DS: RFC 4035 §2.4) — or, when no RRSIG names
        that zone, the deepest signer below it, a zone the evidence may have missed."""
        strict = rdtype == RdataType.DS

        def encloses(zone: dns.name.Name) -> bool:
            return owner.is_subdomain(zone) and not (strict and zone == owner)

        known = max((z for z in self.known if encloses(z)), key=len, default=None)
        signers = {s.signer for s in sigs if encloses(s.signer)}
        if known in signers:
            return known
        deeper = [s for s in signers if known is None or s.is_subdomain(known)]
        return max(deeper, key=len, default=known)

    def _zone(self, name: dns.name.Name) -> _ZoneKeys:
        if name not in self.zone_keys:
            self.zone_keys[name] = self._establish(name)
        return self.zone_keys[name]

    def _establish(self, name: dns.name.Name) -> _ZoneKeys:
        """The closest trust anchor wins (RFC 6840 §4.10); otherwise the parent's DS link."""
        if name in self.anchors:
            return self._from_anchor(name)
        parent = self._zone_above(name)
        if parent is None:
            return _ZoneKeys(Status.INDETERMINATE)
        above = self._zone(parent)
        if above.status is not Status.SECURE:
            return _ZoneKeys(above.status)
        return self._from_parent(name, parent, above)

    def _from_parent(self, name: dns.name.Name, parent: dns.name.Name, above: _ZoneKeys) -> _ZoneKeys:
        cut = self.cuts.get(name)
        ds = _find(_pair(cut.ds), name, RdataType.DS) if cut else None
        if ds is not None:
            checked = self._check(ds, parent, above.keys)
            if not checked.ok:
                self.findings.extend(checked.problems)
                return _ZoneKeys(Status.BOGUS)
            self._link(checked)
            return self._from_ds(name, list(ds.rrset), anchor=False)
        if cut is not None and cut.ds_denial:
            proof = self._denial(parent, above, _pair(cut.ds_denial), "no-ds", name, RdataType.DS)
            if proof.holds:
                self.links.append(Link(parent, "no-ds", name, RdataType.DS, detail=proof.detail))
                return _ZoneKeys(Status.INSECURE)
            return _ZoneKeys(Status.BOGUS)
        self.findings.append(_finding("DS_ABSENCE_UNPROVEN", {"claim": "no-ds", "detail": (
            f"{parent} is secure but the evidence has neither a DS RRset for {name} nor a proof "
            "that it has none")}, name, RdataType.DS))
        return _ZoneKeys(Status.BOGUS)

    def _from_anchor(self, name: dns.name.Name) -> _ZoneKeys:
        anchors = self.anchors[name]
        ds = [rd for rd in anchors if rd.rdtype == RdataType.DS]
        keys = [rd for rd in anchors if rd.rdtype == RdataType.DNSKEY]
        return self._from_ds(name, ds, anchor=True, anchor_keys=keys)  # type: ignore[arg-type]

    def _from_ds(self, zone: dns.name.Name, ds_set: Sequence[DS], anchor: bool,
                 anchor_keys: Sequence[DNSKEY] = ()) -> _ZoneKeys:
        """RFC 4035 §5.2: a DS (or trust anchor) names a key that signs the DNSKEY RRset."""
        source = "trust anchor" if anchor else "DS"
        may = self.policy
        usable = [d for d in ds_set if may.may_validate(d.algorithm) and may.may_validate_digest(d.digest_type)]
        # RFC 4509 §3: a SHA-1 DS is ignored when a SHA-256 DS exists for the same key.
        sha256 = {(d.key_tag, d.algorithm) for d in usable if d.digest_type == 2}
        for d in usable:
            if d.digest_type == 1 and (d.key_tag, d.algorithm) in sha256:
                self.findings.append(_finding("DS_SHA1_IGNORED", {
                    "source": source, "tag": d.key_tag, "algorithm": d.algorithm}, zone, RdataType.DS))
        usable = [d for d in usable if not (d.digest_type == 1 and (d.key_tag, d.algorithm) in sha256)]
        usable_keys = [k for k in anchor_keys if may.may_validate(k.algorithm)]
        if not usable and not usable_keys:
            return self._unsupported(zone, ds_set, anchor_keys, source)

        dnskey = _find(_pair(self.cuts[zone].dnskey), zone, RdataType.DNSKEY) if zone in self.cuts else None
        if dnskey is None:
            self.findings.append(_finding("DNSKEY_MISSING", {"source": source, "zone": zone.to_text()},
                                          zone, RdataType.DNSKEY))
            return _ZoneKeys(Status.BOGUS)
        entry = self._entry_keys(zone, dnskey, usable, usable_keys, source)
        if not entry:
            return _ZoneKeys(Status.BOGUS)
        checked = self._check(dnskey, zone, entry)
        if not checked.ok:
            self.findings.extend(checked.problems)
            return _ZoneKeys(Status.BOGUS)
        self._link(checked)
        keys: dict[tuple[int, int], list[_Key]] = {}
        for rd in dnskey.rrset:
            key = self._key(rd)  # type: ignore[arg-type]
            if key is not None:
                keys.setdefault((rd.algorithm, key.tag), []).append(key)  # type: ignore[attr-defined]
        return _ZoneKeys(Status.SECURE, keys)

    def _unsupported(self, zone: dns.name.Name, ds_set: Sequence[DS], anchor_keys: Sequence[DNSKEY],
                     source: str) -> _ZoneKeys:
        """RFC 4035 §5.2, RFC 6840 §4.2: no supported algorithm/digest → insecure, not bogus."""
        may = self.policy
        algs = sorted({d.algorithm for d in ds_set if not may.may_validate(d.algorithm)}
                      | {k.algorithm for k in anchor_keys if not may.may_validate(k.algorithm)})
        digests = sorted({d.digest_type for d in ds_set if may.may_validate(d.algorithm)
                          and not may.may_validate_digest(d.digest_type)})
        if algs:
            self.findings.append(_finding("ALGORITHM_UNSUPPORTED", {
                "source": source, "algorithms": algs, "zone": zone.to_text()}, zone, RdataType.DS))
        if digests:
            self.findings.append(_finding("DS_DIGEST_UNSUPPORTED", {
                "digests": digests, "zone": zone.to_text()}, zone, RdataType.DS))
        if not algs and not digests:
            self.findings.append(_finding("DS_ABSENCE_UNPROVEN", {
                "claim": "no-ds", "detail": f"the {source} RRset for {zone} is empty"}, zone, RdataType.DS))
            return _ZoneKeys(Status.BOGUS)
        return _ZoneKeys(Status.INSECURE)

    def _key(self, rd: DNSKEY) -> _Key | None:
        if _unusable(rd, self.policy):
            return None
        try:
            public = algorithms.public_key_from_dnskey(algorithms.get(rd.algorithm), rd.key)
        except InputError:
            return None
        return _Key(rd, dns.dnssec.key_id(rd), public)

    def _entry_keys(self, zone: dns.name.Name, dnskey: _Signed, ds_set: Sequence[DS],
                    anchor_keys: Sequence[DNSKEY], source: str) -> dict[tuple[int, int], list[_Key]]:
        """The keys of the DNSKEY RRset that a DS or DNSKEY trust anchor authenticates, by
        algorithm, key tag and digest (RFC 4035 §5.2), at most `max_keys_per_tag` per DS."""
        entry: dict[tuple[int, int], list[_Key]] = {}
        cap = self.limits.max_keys_per_tag

        def accept(rd: DNSKEY, why: str) -> None:
            key = self._key(rd)
            if key is None:
                self.findings.append(_finding("DNSKEY_UNUSABLE", {
                    "tag": dns.dnssec.key_id(rd), "algorithm": rd.algorithm, "source": source,
                    "reason": _unusable(rd, self.policy) or "malformed public key"},
                    zone, RdataType.DNSKEY))
                return
            entry.setdefault((rd.algorithm, key.tag), []).append(key)
            self.links.append(Link(zone, "anchor" if source == "trust anchor" else "ds", zone,
                                   RdataType.DNSKEY, key.tag, rd.algorithm, why))

        for d in ds_set:
            same_tag = [rd for rd in dnskey.rrset
                        if rd.algorithm == d.algorithm and dns.dnssec.key_id(rd) == d.key_tag]  # type: ignore[attr-defined, arg-type]
            matched = [rd for rd in same_tag[:cap] if ds_matches(zone, d, rd, self.policy)]  # type: ignore[arg-type]
            for rd in matched:
                accept(rd, f"{source} {d.key_tag}/{d.algorithm}/digest {d.digest_type} matches")  # type: ignore[arg-type]
            if not matched and len(same_tag) > cap:
                self.findings.append(_finding("WORK_LIMIT_EXCEEDED", {
                    "limit": "max_keys_per_tag", "value": cap,
                    "what": f"keys with tag {d.key_tag} (of {len(same_tag)})"}, zone, RdataType.DNSKEY))
        for anchor in anchor_keys:
            for rd in dnskey.rrset:
                if (rd.algorithm, rd.protocol, rd.key) == (anchor.algorithm, anchor.protocol, anchor.key):  # type: ignore[attr-defined]
                    accept(rd, f"{source} DNSKEY {dns.dnssec.key_id(anchor)} is in the RRset")  # type: ignore[arg-type]
        if not entry:
            described = ([f"DS {d.key_tag}/{d.algorithm}/{d.digest_type}" for d in ds_set]
                         + [f"DNSKEY {dns.dnssec.key_id(k)}" for k in anchor_keys])
            self.findings.append(_finding("DS_NO_MATCHING_DNSKEY", {
                "zone": zone.to_text(), "source": source, "records": described}, zone, RdataType.DNSKEY))
        return entry

    # -- one RRset's signatures (RFC 4035 §5.3) ---------------------------------------------

    def _spend(self) -> None:
        if self.verifications >= self.limits.max_verifications:
            raise _LimitHit("max_verifications", self.limits.max_verifications,
                            "signature verifications per question")
        self.verifications += 1

    def _check(self, signed: _Signed, zone: dns.name.Name, keys: KeyMap) -> _Checked:
        """Try the RRset's RRSIGs by `zone`'s keys until one verifies: cheap field and time
        checks first, then at most `max_verifications_per_rrset` verifications."""
        rrset, owner = signed.rrset, signed.name
        problems: list[Finding] = []

        def problem(code: str, **params: Param) -> None:
            problems.append(_finding(code, params, owner, rrset.rdtype))

        if not signed.sigs:
            problem("RRSIG_MISSING", algorithm=sorted({alg for alg, _ in keys}), zone=zone.to_text())
        candidates: list[tuple[RRSIG, Sequence[_Key]]] = []
        skew = self.limits.clock_skew
        for sig in signed.sigs:
            ids: dict[str, Param] = {"algorithm": sig.algorithm, "tag": sig.key_tag}
            if sig.signer != zone:
                problem("RRSIG_FIELDS_WRONG", **ids, field="signer", found=sig.signer.to_text(),
                        expected=zone.to_text())
                continue
            if sig.labels > rrsig_labels(owner):
                problem("RRSIG_FIELDS_WRONG", **ids, field="labels", found=sig.labels,
                        expected=f"at most {rrsig_labels(owner)}")
                continue
            status = time_status(sig.inception - skew, sig.expiration + skew, self.now)
            if status == "expired":
                problem("RRSIG_EXPIRED", **ids, expiration=sig.expiration)
                continue
            if status == "not-yet-valid":
                problem("RRSIG_NOT_YET_VALID", **ids, inception=sig.inception)
                continue
            matching = keys.get((sig.algorithm, sig.key_tag), ())
            if not matching:
                problem("RRSIG_UNKNOWN_KEY", **ids, zone=zone.to_text())
                continue
            candidates.append((sig, matching))

        tried = 0
        per_rrset, per_tag = self.limits.max_verifications_per_rrset, self.limits.max_keys_per_tag
        for sig, matching in candidates:
            signer_owner = owner
            if sig.labels < rrsig_labels(owner):  # wildcard expansion (RFC 4035 §5.3.2)
                signer_owner = _source_of_synthesis(owner, sig.labels)
            data = signature_data(signer_owner, rrset.rdtype, rrset.rdclass, sig.original_ttl,
                                  list(rrset), header_of(sig))
            alg = algorithms.get(sig.algorithm)
            for key in matching[:per_tag]:
                if tried >= per_rrset:
                    problem("WORK_LIMIT_EXCEEDED", limit="max_verifications_per_rrset",
                            value=per_rrset, what="signature verifications of one RRset")
                    return _Checked(False, problems=tuple(problems))
                self._spend()
                tried += 1
                if algorithms.verify(alg, key.public, sig.signature, data):
                    ttl = min(rrset.ttl, sig.original_ttl, _remaining(sig.expiration + skew, self.now))
                    wildcard = signer_owner.parent() if signer_owner != owner else None
                    link = Link(zone, "rrsig", owner, rrset.rdtype, sig.key_tag, sig.algorithm,
                                f"RRSIG by {zone} key {sig.key_tag} verifies"
                                + (f" (expanded from {signer_owner})" if wildcard else ""))
                    return _Checked(True, ttl, wildcard, link)
            if len(matching) > per_tag:
                problem("WORK_LIMIT_EXCEEDED", limit="max_keys_per_tag", value=per_tag,
                        what=f"keys with tag {sig.key_tag} (of {len(matching)})")
            else:
                problem("RRSIG_BAD_SIGNATURE", algorithm=sig.algorithm, tag=sig.key_tag)
        return _Checked(False, problems=tuple(problems))

    def _link(self, checked: _Checked) -> None:
        if checked.link is not None:
            self.links.append(checked.link)

    # -- positive data ----------------------------------------------------------------------

    def _secure(self, signed: _Signed) -> tuple[Status, dns.name.Name | None, _Checked | None]:
        """(status, zone, check) for one RRset: its zone's status, then its RRSIGs."""
        zone = self._zone_of(signed.name, signed.rdtype, signed.sigs)
        if zone is None:
            return Status.INDETERMINATE, None, None
        keys = self._zone(zone)
        if keys.status is not Status.SECURE:
            return keys.status, zone, None
        checked = self._check(signed, zone, keys.keys)
        if not checked.ok:
            self.findings.extend(checked.problems)
            return Status.BOGUS, zone, checked
        self._link(checked)
        return Status.SECURE, zone, checked

    def _positive(self, signed: _Signed) -> Status:
        status, zone, checked = self._secure(signed)
        if checked is None or not checked.ok:
            if status is not Status.BOGUS:
                self.ttls.append(signed.rrset.ttl)
            return status
        self.ttls.append(checked.ttl)
        if checked.closest_encloser is None or zone is None:
            return status
        # RFC 4035 §5.3.4, RFC 5155 §8.8: a wildcard answer needs the next closer name denied.
        proof = self._denial(zone, self._zone(zone), self.authority, "wildcard-answer",
                             signed.name, signed.rdtype, closest_encloser=checked.closest_encloser)
        return self._proof_status(proof)

    def _dname_synthesis(self, dname: _Signed, cname: _Signed | None) -> Status:
        """The CNAME a server synthesises from a DNAME is unsigned; it must be the substitution
        the validated DNAME dictates (RFC 6672 §2.2, §5.3)."""
        if cname is None:
            return Status.SECURE  # the validator follows the DNAME itself
        expected = cname.name.relativize(dname.name).derelativize(dname.rrset[0].target)  # type: ignore[attr-defined]
        if cname.rrset[0].target != expected:  # type: ignore[attr-defined]
            self.findings.append(_finding("DNAME_SYNTHESIS_WRONG", {
                "cname": cname.name.to_text(), "target": cname.rrset[0].target.to_text(),  # type: ignore[attr-defined]
                "dname": dname.name.to_text(), "expected": expected.to_text()},
                cname.name, RdataType.CNAME))
            return Status.BOGUS
        return Status.SECURE

    # -- negative answers and referrals ----------------------------------------------------

    def _negative(self, name: dns.name.Name, qtype: int, kind: Kind) -> Status:
        """NXDOMAIN or NODATA for `name`: the zone that holds it must prove it (RFC 4035 §5.4)."""
        denial_sigs = [sig for s in self.authority for sig in s.sigs]
        zone = self._zone_of(name, qtype, denial_sigs)
        if zone is None:
            return Status.INDETERMINATE
        keys = self._zone(zone)
        soa = _find(self.authority, zone, RdataType.SOA)
        if keys.status is not Status.SECURE:
            if soa is not None and keys.status is not Status.BOGUS:
                self.ttls.append(min(soa.rrset.ttl, soa.rrset[0].minimum))  # type: ignore[attr-defined]
            return keys.status
        status = Status.SECURE
        if soa is not None:
            checked = self._check(soa, zone, keys.keys)
            if not checked.ok:
                self.findings.extend(checked.problems)
                return Status.BOGUS
            self._link(checked)
            self.ttls.append(min(checked.ttl, soa.rrset[0].minimum))  # type: ignore[attr-defined]
        claim = "nxdomain" if kind is Kind.NXDOMAIN else "nodata"
        proof = self._denial(zone, keys, self.authority, claim, name, qtype)
        if not proof.holds and proof.code != "DENIAL_WRONG_SIDE":
            other = "nodata" if claim == "nxdomain" else "nxdomain"
            if self._denial(zone, keys, self.authority, other, name, qtype, report=False).holds:
                self.findings.append(_finding("RCODE_MISMATCH", {
                    "rcode": dns.rcode.to_text(self.ev.rcode), "kind": other}, name, qtype))
        return _worst(status, self._proof_status(proof))

    def _referral(self, name: dns.name.Name) -> Status:
        """A delegation in the authority section (RFC 4035 §5.2): its DS authenticated makes it
        a secure delegation; a signed proof of no DS makes the child insecure."""
        ns = self._delegation_above(name)
        assert ns is not None
        child = ns.name
        ds = _find(self.authority, child, RdataType.DS)
        zone = self._zone_of(child, RdataType.DS, ds.sigs if ds else [])
        if zone is None:
            return Status.INDETERMINATE
        keys = self._zone(zone)
        if keys.status is not Status.SECURE:
            return keys.status
        if ds is not None:
            checked = self._check(ds, zone, keys.keys)
            if not checked.ok:
                self.findings.extend(checked.problems)
                return Status.BOGUS
            self._link(checked)
            self.ttls.append(checked.ttl)
            return Status.SECURE
        proof = self._denial(zone, keys, self.authority, "no-ds", child, RdataType.DS)
        if proof.holds:
            self.links.append(Link(zone, "no-ds", child, RdataType.DS, detail=proof.detail))
            return Status.INSECURE
        return Status.BOGUS

    def _proof_status(self, proof: Proof) -> Status:
        if proof.status is ProofStatus.PROVEN:
            return Status.SECURE
        if proof.status is ProofStatus.INSECURE:
            return Status.INSECURE
        return Status.BOGUS

    def _denial(self, zone: dns.name.Name, keys: _ZoneKeys, rrsets: Sequence[_Signed], claim: str,
                name: dns.name.Name, qtype: int, closest_encloser: dns.name.Name | None = None,
                report: bool = True) -> Proof:
        """Verify the zone's NSEC/NSEC3 RRsets among `rrsets`, then test `claim` with them."""
        nsecs: list[NsecRecord] = []
        nsec3s: list[Nsec3Record] = []
        problems: list[Finding] = []
        ttls: list[int] = []
        for s in rrsets:
            if s.rdtype not in (RdataType.NSEC, RdataType.NSEC3) or not s.name.is_subdomain(zone):
                continue
            if s.sigs and all(sig.signer != zone and sig.signer.is_subdomain(zone) for sig in s.sigs):
                problems.append(_finding("DENIAL_WRONG_SIDE", {"claim": claim, "detail": (
                    f"the {dns.rdatatype.to_text(s.rdtype)} at {s.name} is signed by the child "
                    f"zone {s.sigs[0].signer}; the proof must come from {zone} (RFC 4035 §3.1.4.1)")},
                    s.name, s.rdtype))
                continue
            if s.rdtype == RdataType.NSEC3 and s.name.parent() != zone:
                continue
            checked = self._cached_check(s, zone, keys)
            if not checked.ok:
                problems.extend(checked.problems)
                continue
            ttls.append(checked.ttl)
            for rd in s.rrset:
                if s.rdtype == RdataType.NSEC:
                    nsecs.append(NsecRecord.from_rdata(s.name, rd))
                else:
                    record = Nsec3Record.from_rdata(s.name, rd)
                    if record is not None:
                        nsec3s.append(record)

        proof = self._prove(zone, nsecs, nsec3s, claim, name, qtype, closest_encloser)
        if not report:
            return proof
        if proof.holds:
            self.ttls.extend(ttls)
            self.links.append(Link(zone, "denial", name, qtype, detail=f"{proof.claim}: {proof.detail}"))
            if proof.status is ProofStatus.INSECURE:
                code = proof.code or "NSEC3_OPT_OUT_INSECURE"
                self.findings.append(_finding(code, proof.params or {"detail": proof.detail}, name, qtype))
        else:
            self.findings.extend(problems)
            code = proof.code or "DENIAL_UNPROVEN"
            if claim == "no-ds" and code == "DENIAL_UNPROVEN":
                code = "DS_ABSENCE_UNPROVEN"
            self.findings.append(_finding(code, {"claim": proof.claim, "detail": proof.detail}, name, qtype))
        return proof

    def _cached_check(self, signed: _Signed, zone: dns.name.Name, keys: _ZoneKeys) -> _Checked:
        """Denial RRsets may be tested for two claims; verify each one once."""
        key = (signed.name, signed.rdtype, zone)
        if key not in self.denial_checks:
            checked = self._check(signed, zone, keys.keys)
            self._link(checked)
            self.denial_checks[key] = checked
        return self.denial_checks[key]

    def _prove(self, zone: dns.name.Name, nsecs: list[NsecRecord], nsec3s: list[Nsec3Record],
               claim: str, name: dns.name.Name, qtype: int,
               closest_encloser: dns.name.Name | None) -> Proof:
        """Test `claim` with the NSEC records, else with the NSEC3 records (RFC 4035 §5.4,
        RFC 5155 §8), after the RFC 9276 iteration limit."""
        if nsecs:
            if claim == "nxdomain":
                proof = proofs.nsec_nxdomain(nsecs, name)
            elif claim == "nodata":
                proof = proofs.nsec_nodata(nsecs, name, qtype)
            elif claim == "no-ds":
                proof = proofs.nsec_no_ds(nsecs, name)
            else:
                assert closest_encloser is not None
                proof = proofs.nsec_wildcard_answer(nsecs, name, closest_encloser)
            if proof.holds or not nsec3s:
                return proof
        if not nsec3s:
            code = "WILDCARD_UNPROVEN" if claim == "wildcard-answer" else "DENIAL_UNPROVEN"
            return Proof(ProofStatus.FAILED, claim, f"no verified NSEC or NSEC3 record of {zone}", code)
        high = max(r.iterations for r in nsec3s)
        if high > self.policy.max_nsec3_iterations:
            # RFC 9276 §3.2: too many iterations to be worth hashing: insecure, EDE 27.
            return Proof(ProofStatus.INSECURE, claim, f"NSEC3 iterations {high} exceed the limit "
                         f"{self.policy.max_nsec3_iterations}: treated as insecure",
                         "NSEC3_ITERATIONS_TOO_HIGH",
                         params={"iterations": high, "limit": self.policy.max_nsec3_iterations})
        if claim == "nxdomain":
            return proofs.nsec3_nxdomain(nsec3s, name, zone, self._hash)
        if claim == "nodata":
            return proofs.nsec3_nodata(nsec3s, name, qtype, zone, self._hash)
        if claim == "no-ds":
            return proofs.nsec3_no_ds(nsec3s, name, zone, self._hash)
        assert closest_encloser is not None
        return proofs.nsec3_wildcard_answer(nsec3s, name, closest_encloser, zone, self._hash)

    def _hash(self, name: dns.name.Name, record: Nsec3Record) -> bytes:
        """RFC 5155 §5 hash, cached and counted against `max_nsec3_hashes` (CVE-2023-50868)."""
        key = (name, record.algorithm, record.iterations, record.salt)
        if key not in self.hashes:
            if len(self.hashes) >= self.limits.max_nsec3_hashes:
                raise _LimitHit("max_nsec3_hashes", self.limits.max_nsec3_hashes,
                                "NSEC3 hash computations per question")
            self.hashes[key] = nsec3hash.nsec3_digest(name, record.salt, record.iterations)
        return self.hashes[key]
