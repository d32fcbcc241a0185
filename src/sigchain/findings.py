"""Problems in DNS data as data: a Finding has a stable code, severity, message and RFC rule."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class CodeInfo:
    severity: Severity
    rfc: str
    summary: str
    ede: int | None = None  # RFC 8914 Extended DNS Error code, for validation findings


# The registry of codes. Codes are stable: users and tests match on them.
CODES: dict[str, CodeInfo] = {
    "NO_DNSKEY": CodeInfo(Severity.ERROR, "RFC 4035 §2.1", "no DNSKEY RRset at the zone apex", 9),
    "NO_SOA": CodeInfo(Severity.ERROR, "RFC 1035 §5.2", "no SOA record at the zone apex"),
    "RRSIG_MISSING": CodeInfo(
        Severity.ERROR, "RFC 4035 §2.2",
        "an authoritative RRset lacks an RRSIG for an algorithm in the DNSKEY RRset", 10,
    ),
    "RRSIG_BAD_SIGNATURE": CodeInfo(
        Severity.ERROR, "RFC 4035 §5.3.3", "an RRSIG does not verify over its RRset", 6
    ),
    "RRSIG_EXPIRED": CodeInfo(Severity.ERROR, "RFC 4035 §5.3.1", "an RRSIG has expired", 7),
    "RRSIG_NOT_YET_VALID": CodeInfo(
        Severity.ERROR, "RFC 4035 §5.3.1", "an RRSIG's inception is in the future", 8
    ),
    "RRSIG_UNKNOWN_KEY": CodeInfo(
        Severity.ERROR, "RFC 4035 §5.3.1",
        "an RRSIG names a key tag/algorithm not in the apex DNSKEY RRset", 9,
    ),
    "RRSIG_FIELDS_WRONG": CodeInfo(
        Severity.ERROR, "RFC 4035 §5.3.1",
        "an RRSIG's signer name, labels or original TTL does not match its RRset", 6,
    ),
    "RRSIG_ON_NON_AUTHORITATIVE": CodeInfo(
        Severity.ERROR, "RFC 4035 §2.2",
        "glue, delegation NS or occluded data carries an RRSIG", None,
    ),
    "DNSKEY_NOT_SIGNED_BY_KSK": CodeInfo(
        Severity.ERROR, "RFC 4035 §2.1; RFC 6840 §5.11",
        "the DNSKEY RRset is not signed by a SEP (KSK) key of each algorithm", 6,
    ),
    "DNSKEY_ALGORITHM_UNSIGNED": CodeInfo(
        Severity.ERROR, "RFC 6840 §5.11",
        "an algorithm in the DNSKEY RRset signs no RRset", 10,
    ),
    "NSEC_MISSING": CodeInfo(
        Severity.ERROR, "RFC 4035 §2.3", "an authoritative name has no NSEC record", 12
    ),
    "NSEC_CHAIN_BROKEN": CodeInfo(
        Severity.ERROR, "RFC 4035 §2.3",
        "the NSEC chain is not complete, ordered and closed", 12,
    ),
    "NSEC_BITMAP_WRONG": CodeInfo(
        Severity.ERROR, "RFC 4034 §4.1.2", "an NSEC type bitmap does not match the types present"
    ),
    "NSEC_TTL_WRONG": CodeInfo(
        Severity.WARNING, "RFC 9077 §3", "NSEC/NSEC3 TTL is not min(SOA MINIMUM, SOA TTL)"
    ),
    "NSEC3_MISSING": CodeInfo(
        Severity.ERROR, "RFC 5155 §7.1", "an authoritative name has no NSEC3 record", 12
    ),
    "NSEC3_CHAIN_BROKEN": CodeInfo(
        Severity.ERROR, "RFC 5155 §7.1",
        "the NSEC3 chain is not complete, ordered and closed", 12,
    ),
    "NSEC3_BITMAP_WRONG": CodeInfo(
        Severity.ERROR, "RFC 5155 §3.2.1", "an NSEC3 type bitmap does not match the types present"
    ),
    "NSEC3_PARAMS_INCONSISTENT": CodeInfo(
        Severity.ERROR, "RFC 5155 §7.1",
        "NSEC3 records do not share one hash algorithm, iteration count and salt", 12,
    ),
    "NSEC3PARAM_MISSING": CodeInfo(
        Severity.ERROR, "RFC 5155 §7.1", "an NSEC3-signed zone has no NSEC3PARAM at the apex"
    ),
    "NSEC3_ITERATIONS_NONZERO": CodeInfo(
        Severity.WARNING, "RFC 9276 §3.1", "NSEC3 iterations above 0", 27
    ),
    "NSEC3_SALT_PRESENT": CodeInfo(Severity.WARNING, "RFC 9276 §3.1", "NSEC3 salt is not empty"),
    "NSEC3_OPT_OUT": CodeInfo(
        Severity.WARNING, "RFC 9276 §3.1", "NSEC3 opt-out in use (insecure delegations unproven)"
    ),
    "NSEC_AND_NSEC3": CodeInfo(
        Severity.ERROR, "RFC 5155 §7.1", "the zone has both NSEC and NSEC3 records"
    ),
    "NO_DENIAL_CHAIN": CodeInfo(
        Severity.ERROR, "RFC 4035 §2.3", "the zone has neither an NSEC nor an NSEC3 chain", 12
    ),
    # Validation (core/validate/validator.py). The RRSIG_* codes above are shared with it.
    "DNSKEY_MISSING": CodeInfo(
        Severity.ERROR, "RFC 4035 §5.2", "a zone's DNSKEY RRset is needed but absent", 9
    ),
    "DS_NO_MATCHING_DNSKEY": CodeInfo(
        Severity.ERROR, "RFC 4035 §5.2",
        "no usable DNSKEY matches the DS RRset or trust anchor (algorithm, key tag, digest)", 9,
    ),
    "DNSKEY_UNUSABLE": CodeInfo(
        Severity.WARNING, "RFC 4034 §2.1.1, §2.1.2; RFC 5011 §2.1",
        "a DNSKEY a DS or anchor names cannot be used: protocol not 3, zone-key bit clear, "
        "revoked, or malformed",
    ),
    "ALGORITHM_UNSUPPORTED": CodeInfo(
        Severity.WARNING, "RFC 4035 §5.2; RFC 8624 §3.1; RFC 9904",
        "every DS or trust anchor of a zone uses an algorithm the validator does not (or must "
        "not) validate: the zone is insecure", 1,
    ),
    "DS_DIGEST_UNSUPPORTED": CodeInfo(
        Severity.WARNING, "RFC 4035 §5.2; RFC 6840 §4.2; RFC 8624 §3.3",
        "every DS of a zone uses an unsupported digest type: the zone is insecure", 2,
    ),
    "DS_SHA1_IGNORED": CodeInfo(
        Severity.INFO, "RFC 4509 §3", "a SHA-1 DS is ignored: a SHA-256 DS exists for the same key"
    ),
    "DS_ABSENCE_UNPROVEN": CodeInfo(
        Severity.ERROR, "RFC 4035 §5.2; RFC 6840 §3.4",
        "below a secure zone, neither a DS RRset nor a signed proof that there is none", 12,
    ),
    "DENIAL_UNPROVEN": CodeInfo(
        Severity.ERROR, "RFC 4035 §5.4; RFC 5155 §8",
        "a negative answer lacks the NSEC/NSEC3 records that prove it", 12,
    ),
    "DENIAL_WRONG_SIDE": CodeInfo(
        Severity.ERROR, "RFC 6840 §3.1; RFC 4035 §3.1.4.1",
        "an NSEC/NSEC3 record from the wrong side of a zone cut was offered as proof", 6,
    ),
    "WILDCARD_UNPROVEN": CodeInfo(
        Severity.ERROR, "RFC 4035 §5.3.4; RFC 5155 §8.8",
        "a wildcard-expanded answer lacks proof that the next closer name does not exist", 12,
    ),
    "RCODE_MISMATCH": CodeInfo(
        Severity.ERROR, "RFC 4035 §5.4; RFC 5155 §8",
        "the RCODE does not match the records or what they prove", 6,
    ),
    "DNAME_SYNTHESIS_WRONG": CodeInfo(
        Severity.ERROR, "RFC 6672 §2.2, §5.3",
        "a CNAME synthesised from a DNAME is not the DNAME substitution", 6,
    ),
    "NSEC3_ITERATIONS_TOO_HIGH": CodeInfo(
        Severity.WARNING, "RFC 9276 §3.2",
        "NSEC3 iterations above the validator's limit: the answer is insecure", 27,
    ),
    "NSEC3_OPT_OUT_INSECURE": CodeInfo(
        Severity.INFO, "RFC 5155 §9.2",
        "the proof rests on an opt-out NSEC3 record: the answer is insecure",
    ),
    "WORK_LIMIT_EXCEEDED": CodeInfo(
        Severity.ERROR, "CVE-2023-50387; CVE-2023-50868",
        "validation stopped at a work limit (signature verifications, keys per tag, NSEC3 hashes)",
        6,
    ),
    "NO_TRUST_ANCHOR": CodeInfo(
        Severity.INFO, "RFC 4033 §5; RFC 4035 §4.3",
        "no trust anchor covers the data: the answer is indeterminate",
    ),
}


@dataclass(frozen=True)
class Finding:
    code: str
    message: str
    name: str | None = None  # owner name concerned, presentation form
    rdtype: str | None = None

    def __post_init__(self) -> None:
        if self.code not in CODES:
            raise ValueError(f"unregistered finding code {self.code!r}")

    @property
    def info(self) -> CodeInfo:
        return CODES[self.code]

    @property
    def severity(self) -> Severity:
        return self.info.severity

    @property
    def rfc(self) -> str:
        return self.info.rfc

    @property
    def ede(self) -> int | None:
        return self.info.ede

    def to_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "name": self.name,
            "type": self.rdtype,
            "rfc": self.rfc,
            "ede": self.ede,
        }


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity is Severity.ERROR]
