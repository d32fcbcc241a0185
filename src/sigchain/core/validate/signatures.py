"""One RRset's RRSIGs checked against a zone's authenticated keys (RFC 4035 §5.3), under the
work caps against KeyTrap-class inputs (CVE-2023-50387, CVE-2023-50868)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import dns.name
import dns.rdata
import dns.rdatatype
import dns.rdtypes.ANY.DNSKEY
import dns.rdtypes.ANY.DS
import dns.rdtypes.ANY.RRSIG
import dns.rrset
from dns.rdatatype import RdataType

from sigchain.core.dnssec import algorithms
from sigchain.core.dnssec.policy import DnssecPolicy
from sigchain.core.dnssec.rrsig import (
    header_of,
    rrsig_labels,
    signature_data,
    time_status,
    wrong_fields,
)
from sigchain.core.validate.memo import Verified
from sigchain.core.validate.proofs import Nsec3Record
from sigchain.core.validate.verdict import Evidence, Link, Status
from sigchain.core.zone import nsec3hash
from sigchain.core.zone.sharedname import share, shared
from sigchain.errors import InputError
from sigchain.findings import Finding, Param

RRSIG = dns.rdtypes.ANY.RRSIG.RRSIG
DNSKEY = dns.rdtypes.ANY.DNSKEY.DNSKEY
DS = dns.rdtypes.ANY.DS.DS

_SERIAL = 1 << 32


class LimitHit(Exception):
    """A per-question work cap was reached: validation stops, the verdict is bogus."""

    def __init__(self, limit: str, value: int, what: str):
        super().__init__(limit)
        self.params: dict[str, Param] = {"limit": limit, "value": value, "what": what}


@dataclass(frozen=True)
class Signed:
    rrset: dns.rrset.RRset
    sigs: tuple[RRSIG, ...]

    @property
    def name(self) -> dns.name.Name:
        return self.rrset.name

    @property
    def rdtype(self) -> int:
        return self.rrset.rdtype


def pair(rrsets: Iterable[dns.rrset.RRset]) -> list[Signed]:
    """Attach to each RRset the RRSIGs with its owner, class and covered type."""
    rrsets = list(rrsets)
    sigs: dict[tuple[dns.name.Name, int, int], list[RRSIG]] = {}
    for r in rrsets:
        if r.rdtype == RdataType.RRSIG:
            for sig in r:
                sigs.setdefault((r.name, r.rdclass, sig.type_covered), []).append(sig)  # type: ignore[attr-defined]
    return [
        Signed(r, tuple(sigs.get((r.name, r.rdclass, r.rdtype), ())))
        for r in rrsets if r.rdtype != RdataType.RRSIG
    ]


def find(signed: Iterable[Signed], name: dns.name.Name, rdtype: int) -> Signed | None:
    return next((s for s in signed if s.name == name and s.rdtype == rdtype), None)


@dataclass(frozen=True)
class Key:
    rdata: DNSKEY
    tag: int
    public: algorithms.PublicKey


KeyMap = Mapping[tuple[int, int], Sequence[Key]]  # (algorithm, key tag) → keys


@dataclass(frozen=True)
class ZoneKeys:
    """A zone's security status and, when secure, its authenticated usable keys."""

    status: Status
    keys: KeyMap = field(default_factory=dict)


@dataclass(frozen=True)
class Checked:
    """The outcome of checking one RRset's RRSIGs."""

    ok: bool
    ttl: int = 0
    closest_encloser: dns.name.Name | None = None  # set when the RRset is a wildcard expansion
    link: Link | None = None
    problems: tuple[Finding, ...] = ()


def finding(code: str, params: Mapping[str, Param], name: dns.name.Name | None = None,
            rdtype: int | None = None) -> Finding:
    """A Finding about `name`/`rdtype`, in presentation form."""
    return Finding(code, params, name.to_text() if name is not None else None,
                   dns.rdatatype.to_text(rdtype) if rdtype is not None else None)


def _remaining(expiration: int, now: int) -> int:
    """Seconds from now to an RRSIG expiration, in serial arithmetic (RFC 4034 §3.1.5)."""
    delta = (expiration - now) % _SERIAL
    return delta if delta < 2**31 else 0


def _source_of_synthesis(owner: dns.name.Name, labels: int) -> dns.name.Name:
    """`*.<the last `labels` labels of owner>` (RFC 4035 §5.3.2)."""
    return shared((b"*", *owner.labels[len(owner.labels) - (labels + 1):]))  # no Name for the split


class SignatureChecks:
    """The state of one validation and its RRset signature checks; the chain of trust and the
    denial proofs build on it (core/validate/trust.py, denial.py)."""

    def __init__(self, ev: Evidence, anchors: Sequence[dns.rrset.RRset], now: int, policy: DnssecPolicy,
                 verified: Verified | None = None, negative: Sequence[dns.name.Name] = ()):
        self.ev = ev
        self.negative = tuple(negative)  # RFC 7646 names: what they cover is not validated
        # signatures that verified before, by the covered owner and the identity of the RRSIG,
        # DNSKEY and signed rdata: neither the crypto nor the canonical rendering is redone
        # (the fields and times still are checked)
        self.verified = verified
        self.now = now
        self.policy = policy
        self.limits = policy.limits
        self.anchors: dict[dns.name.Name, list[dns.rdata.Rdata]] = {}
        for rrset in anchors:
            if rrset.rdtype not in (RdataType.DS, RdataType.DNSKEY):
                raise InputError(f"trust anchor {rrset.name} is a {dns.rdatatype.to_text(rrset.rdtype)} record, not DS or DNSKEY")
            self.anchors.setdefault(share(rrset.name), []).extend(rrset)
        self.cuts = {share(c.name): c for c in ev.zones}
        self.known = set(self.cuts) | set(self.anchors)
        self.authority = pair(ev.authority)
        self.findings: list[Finding] = []
        self.links: list[Link] = []
        self.zone_keys: dict[dns.name.Name, ZoneKeys] = {}
        self.verifications = 0
        self.hashes: dict[tuple[dns.name.Name, int, int, bytes], bytes] = {}
        self.denial_checks: dict[tuple[dns.name.Name, int, dns.name.Name], Checked] = {}
        self.ttls: list[int] = []


    # -- one RRset's signatures (RFC 4035 §5.3) ---------------------------------------------

    def _spend(self) -> None:
        if self.verifications >= self.limits.max_verifications:
            raise LimitHit("max_verifications", self.limits.max_verifications,
                            "signature verifications per question")
        self.verifications += 1

    def _check(self, signed: Signed, zone: dns.name.Name, keys: KeyMap) -> Checked:
        """Try the RRset's RRSIGs by `zone`'s keys until one verifies: cheap field and time
        checks first, then at most `max_verifications_per_rrset` verifications."""
        rrset, owner = signed.rrset, signed.name
        problems: list[Finding] = []

        def problem(code: str, **params: Param) -> None:
            problems.append(finding(code, params, owner, rrset.rdtype))

        if not signed.sigs:
            problem("RRSIG_MISSING", algorithm=sorted({alg for alg, _ in keys}), zone=zone.to_text())
        candidates: list[tuple[RRSIG, Sequence[Key]]] = []
        skew = self.limits.clock_skew
        owner_labels = rrsig_labels(owner)
        for sig in signed.sigs:
            ids: dict[str, Param] = {"algorithm": sig.algorithm, "tag": sig.key_tag}
            wrong = wrong_fields(signer_is_zone=sig.signer == zone, labels=sig.labels,
                                 owner_labels=owner_labels, may_expand=True)
            if "signer" in wrong:
                problem("RRSIG_FIELDS_WRONG", **ids, field="signer", found=sig.signer.to_text(),
                        expected=zone.to_text())
                continue
            if "labels" in wrong:
                problem("RRSIG_FIELDS_WRONG", **ids, field="labels", found=sig.labels,
                        expected=f"at most {owner_labels}")
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
        memo = self.verified
        per_rrset, per_tag = self.limits.max_verifications_per_rrset, self.limits.max_keys_per_tag
        for sig, matching in candidates:
            signer_owner = owner
            if sig.labels < owner_labels:  # wildcard expansion (RFC 4035 §5.3.2)
                signer_owner = _source_of_synthesis(owner, sig.labels)
            data: bytes | None = None  # rendered for the first check the memo cannot answer
            alg = algorithms.get(sig.algorithm)
            rdatas = list(rrset)
            for key in matching[:per_tag]:
                if memo is not None and memo.holds(signer_owner, rrset.rdtype, rrset.rdclass, sig,
                                                   key.rdata, rdatas):
                    return self._verified(zone, owner, signer_owner, rrset, sig)
                if tried >= per_rrset:
                    problem("WORK_LIMIT_EXCEEDED", limit="max_verifications_per_rrset",
                            value=per_rrset, what="signature verifications of one RRset")
                    return Checked(False, problems=tuple(problems))
                self._spend()
                tried += 1
                if data is None:
                    data = signature_data(signer_owner, rrset.rdtype, rrset.rdclass,
                                          sig.original_ttl, rdatas, header_of(sig))
                if algorithms.verify(alg, key.public, sig.signature, data):
                    if memo is not None:
                        memo.add(signer_owner, rrset.rdtype, rrset.rdclass, sig, key.rdata, rdatas)
                    return self._verified(zone, owner, signer_owner, rrset, sig)
            if len(matching) > per_tag:
                problem("WORK_LIMIT_EXCEEDED", limit="max_keys_per_tag", value=per_tag,
                        what=f"keys with tag {sig.key_tag} (of {len(matching)})")
            else:
                problem("RRSIG_BAD_SIGNATURE", algorithm=sig.algorithm, tag=sig.key_tag)
        return Checked(False, problems=tuple(problems))

    def _verified(self, zone: dns.name.Name, owner: dns.name.Name, signer_owner: dns.name.Name,
                  rrset: dns.rrset.RRset, sig: RRSIG) -> Checked:
        ttl = min(rrset.ttl, sig.original_ttl,
                  _remaining(sig.expiration + self.limits.clock_skew, self.now))
        wildcard = signer_owner.parent() if signer_owner != owner else None
        link = Link(zone, "rrsig", owner, rrset.rdtype, sig.key_tag, sig.algorithm,
                    f"RRSIG by {zone} key {sig.key_tag} verifies"
                    + (f" (expanded from {signer_owner})" if wildcard else ""))
        return Checked(True, ttl, wildcard, link)

    def _link(self, checked: Checked) -> None:
        if checked.link is not None:
            self.links.append(checked.link)


    def _hash(self, name: dns.name.Name, record: Nsec3Record) -> bytes:
        """RFC 5155 §5 hash, cached and counted against `max_nsec3_hashes` (CVE-2023-50868)."""
        key = (name, record.algorithm, record.iterations, record.salt)
        if key not in self.hashes:
            if len(self.hashes) >= self.limits.max_nsec3_hashes:
                raise LimitHit("max_nsec3_hashes", self.limits.max_nsec3_hashes,
                                "NSEC3 hash computations per question")
            self.hashes[key] = nsec3hash.kept_digest(name, record.salt, record.iterations)
        return self.hashes[key]

