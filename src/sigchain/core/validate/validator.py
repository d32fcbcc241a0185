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

from collections.abc import Sequence

import dns.name
import dns.rcode
import dns.rrset

from sigchain.core.dnssec.policy import DEFAULT_POLICY, DnssecPolicy
from sigchain.core.validate.denial import Denials
from sigchain.core.validate.memo import Verified
from sigchain.core.validate.shape import Step, dname_synthesis, shape
from sigchain.core.validate.signatures import Checked, LimitHit, Signed, finding
from sigchain.core.validate.verdict import (
    Evidence,
    Kind,
    Link,
    Question,
    Status,
    Verdict,
    ZoneCut,
    worst,
)

__all__ = ["Evidence", "Kind", "Link", "Question", "Status", "Verdict", "ZoneCut", "validate"]


def validate(evidence: Evidence, anchors: Sequence[dns.rrset.RRset], now: int,
             policy: DnssecPolicy = DEFAULT_POLICY, verified: Verified | None = None,
             negative: Sequence[dns.name.Name] = ()) -> Verdict:
    """Validate the evidence for one question against DS or DNSKEY trust anchors (RRsets whose
    owner is the anchored zone) at `now`, seconds since the epoch. `verified`: a caller's memo
    of signatures already verified (a resolver's, for the RRset objects it keeps).
    `negative`: negative trust anchors (RFC 7646): an RRset or a denial whose owner they
    cover is insecure, unchecked — and only those: the rest of a CNAME chain out of them, or
    into them, is validated as ever."""
    return _Run(evidence, anchors, now, policy, verified, negative).verdict()


class _Run(Denials):
    """One validation: the shape of the answer, then each RRset and proof it rests on."""

    def verdict(self) -> Verdict:
        steps, last, kind = shape(self.ev, self.authority)
        try:
            status = self._validate(steps, last, kind)
        except LimitHit as hit:
            self.findings.append(finding("WORK_LIMIT_EXCEEDED", hit.params, self.ev.question.name))
            status = Status.BOGUS
        if status is Status.INDETERMINATE:
            self.findings.append(finding("NO_TRUST_ANCHOR", {}, self.ev.question.name))
        ttl = min(self.ttls) if self.ttls and status is not Status.BOGUS else None
        return Verdict(status, kind, ttl, tuple(self.links), tuple(self.findings))


    def _validate(self, steps: list[Step], last: dns.name.Name,
                  kind: Kind) -> Status:
        status = Status.SECURE
        if self.ev.rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN) or (
            kind is Kind.ANSWER and self.ev.rcode != dns.rcode.NOERROR
        ):
            self.findings.append(finding("RCODE_MISMATCH", {
                "rcode": dns.rcode.to_text(self.ev.rcode), "kind": kind.value}, self.ev.question.name))
            status = Status.BOGUS
        for step, signed, cname in steps:
            status = worst(status, self._positive(signed))
            wrong = dname_synthesis(signed, cname) if step == "dname" else None
            if wrong is not None:
                self.findings.append(wrong)
                status = Status.BOGUS
        if kind is not Kind.ANSWER and self._untrusted(last):
            status = worst(status, Status.INSECURE)
        elif kind is Kind.REFERRAL:
            status = worst(status, self._referral(last))
        elif kind is not Kind.ANSWER:
            status = worst(status, self._negative(last, self.ev.question.rdtype, kind))
        return status

    def _untrusted(self, name: dns.name.Name) -> bool:
        """Whether a negative trust anchor covers `name`."""
        return any(name.is_subdomain(n) for n in self.negative)


    def _secure(self, signed: Signed) -> tuple[Status, dns.name.Name | None, Checked | None]:
        """(status, zone, check) for one RRset: its zone's status, then its RRSIGs."""
        if self.negative and self._untrusted(signed.name):
            return Status.INSECURE, None, None
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

    def _positive(self, signed: Signed) -> Status:
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

