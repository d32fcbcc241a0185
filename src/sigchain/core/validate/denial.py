"""Negative answers and referrals: the NSEC/NSEC3 records offered as proof are verified, then
tested for the claim (RFC 4035 §5.4, RFC 5155 §8, RFC 9276 §3.2 iteration limit)."""

from __future__ import annotations

from collections.abc import Sequence

import dns.name
import dns.rcode
import dns.rdatatype
from dns.rdatatype import RdataType

from sigchain.core.dnssec.rrsig import rrsig_labels
from sigchain.core.validate import proofs
from sigchain.core.validate.proofs import Nsec3Record, NsecRecord, Proof, ProofStatus
from sigchain.core.validate.shape import delegation_above
from sigchain.core.validate.signatures import Checked, Signed, ZoneKeys, find, finding
from sigchain.core.validate.trust import TrustChain
from sigchain.core.validate.verdict import Kind, Link, Status, worst
from sigchain.findings import Finding


class Denials(TrustChain):
    """NXDOMAIN, NODATA, no-DS and wildcard proofs for one validation."""

    def _negative(self, name: dns.name.Name, qtype: int, kind: Kind) -> Status:
        """NXDOMAIN or NODATA for `name`: the zone that holds it must prove it (RFC 4035 §5.4)."""
        denial_sigs = [sig for s in self.authority for sig in s.sigs]
        zone = self._zone_of(name, qtype, denial_sigs)
        if zone is None:
            return Status.INDETERMINATE
        keys = self._zone(zone)
        soa = find(self.authority, zone, RdataType.SOA)
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
                self.findings.append(finding("RCODE_MISMATCH", {
                    "rcode": dns.rcode.to_text(self.ev.rcode), "kind": other}, name, qtype))
        return worst(status, self._proof_status(proof))

    def _referral(self, name: dns.name.Name) -> Status:
        """A delegation in the authority section (RFC 4035 §5.2): its DS authenticated makes it
        a secure delegation; a signed proof of no DS makes the child insecure."""
        ns = delegation_above(self.authority, name)
        assert ns is not None
        child = ns.name
        ds = find(self.authority, child, RdataType.DS)
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

    def _denial(self, zone: dns.name.Name, keys: ZoneKeys, rrsets: Sequence[Signed], claim: str,
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
                problems.append(finding("DENIAL_WRONG_SIDE", {"claim": claim, "detail": (
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
                record = proofs.parsed(s.name, rd)
                if s.rdtype == RdataType.NSEC:
                    nsecs.append(record)  # type: ignore[arg-type]
                elif record is not None:
                    nsec3s.append(record)  # type: ignore[arg-type]

        proof = self._prove(zone, nsecs, nsec3s, claim, name, qtype, closest_encloser)
        if not report:
            return proof
        if proof.holds:
            self.ttls.extend(ttls)
            self.links.append(Link(zone, "denial", name, qtype, detail=f"{proof.claim}: {proof.detail}"))
            if proof.status is ProofStatus.INSECURE:
                code = proof.code or "NSEC3_OPT_OUT_INSECURE"
                self.findings.append(finding(code, proof.params or {"detail": proof.detail}, name, qtype))
        else:
            self.findings.extend(problems)
            code = proof.code or "DENIAL_UNPROVEN"
            if claim == "no-ds" and code == "DENIAL_UNPROVEN":
                code = "DS_ABSENCE_UNPROVEN"
            self.findings.append(finding(code, {"claim": proof.claim, "detail": proof.detail}, name, qtype))
        return proof

    def _cached_check(self, signed: Signed, zone: dns.name.Name, keys: ZoneKeys) -> Checked:
        """Denial RRsets may be tested for two claims; verify each one once. One whose RRSIG
        verifies only as a wildcard expansion (labels field below its owner's) proves nothing:
        the signature covers the record at the wildcard, not at the owner it came with, and
        renamed it would deny any name its range then covers (CVE-2017-15105; RFC 4035
        §5.3.2: an NSEC is used under its own owner name or not at all)."""
        key = (signed.name, signed.rdtype, zone)
        if key not in self.denial_checks:
            checked = self._check(signed, zone, keys.keys)
            if checked.ok and checked.closest_encloser is not None:
                sig = min(signed.sigs, key=lambda s: s.labels)
                checked = Checked(False, problems=(finding("RRSIG_FIELDS_WRONG", {
                    "algorithm": sig.algorithm, "tag": sig.key_tag, "field": "labels",
                    "found": sig.labels, "expected": f"{rrsig_labels(signed.name)} (an "
                    f"{dns.rdatatype.to_text(signed.rdtype)} expanded from a wildcard proves "
                    "nothing)"}, signed.name, signed.rdtype),))
            else:
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

