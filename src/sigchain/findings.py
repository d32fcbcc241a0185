"""Problems in DNS data as data: a Finding has a stable code, severity, RFC rule, and the
parameters its code's message template is rendered from (DESIGN.md principle 4)."""

from __future__ import annotations

import enum
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime


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
    "NO_USABLE_DNSKEY": CodeInfo(
        Severity.ERROR, "RFC 4035 §2.1; RFC 4034 §2.1.1",
        "no key of the DNSKEY RRset can sign the zone (zone-key flag, protocol 3, not revoked, "
        "a supported algorithm, a well-formed public key)", 9,
    ),
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
    "RRSIG_KEY_NOT_PUBLISHED": CodeInfo(
        Severity.INFO, "RFC 6781 §4.1.4",
        "an RRSIG of an algorithm with no key in the DNSKEY RRset: no validator uses it (an "
        "algorithm roll's signatures, published ahead of the new keys)",
    ),
    "RRSIG_UNUSED": CodeInfo(
        Severity.WARNING, "RFC 4035 §5.3.3",
        "an RRSIG that cannot be used (expired, not yet valid, unknown key) beside a valid one "
        "of its algorithm: one suffices",
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
    "DNSKEY_REVOKED_NOT_SELF_SIGNED": CodeInfo(
        Severity.ERROR, "RFC 5011 §2.1",
        "a revoked KSK does not sign the DNSKEY RRset itself: resolvers never see it revoked",
    ),
    "CNAME_AND_OTHER_DATA": CodeInfo(
        Severity.ERROR, "RFC 1034 §3.6.2; RFC 2181 §10.1; RFC 4035 §2.5",
        "a name with a CNAME also has other data",
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
    # Signing (core/sign): warnings the CLI words for the user.
    "SIGN_ALGORITHM_NO_ACTIVE_KEY": CodeInfo(
        Severity.WARNING, "RFC 6840 §5.11",
        "an algorithm in the DNSKEY RRset has no active key to sign with",
    ),
    "SIGN_NO_ACTIVE_KSK": CodeInfo(
        Severity.WARNING, "RFC 4035 §2.1; RFC 6781 §3.1",
        "an algorithm has no active KSK: its ZSK signs the DNSKEY RRset",
    ),
    "CDS_NO_ACTIVE_KSK": CodeInfo(
        Severity.WARNING, "RFC 7344 §4.1",
        "CDS/CDNSKEY were asked for but no active KSK exists to publish them for",
    ),
    "SIGN_DENIAL_CHANGED": CodeInfo(
        Severity.WARNING, "RFC 5155 §10.4",
        "the signed input's denial of existence (NSEC or NSEC3 parameters) is replaced",
    ),
}

# One message template per code, shared by every path that emits it. `{x}` names a parameter;
# `{x:time}` renders seconds since the epoch as `YYYY-MM-DD HH:MM:SS UTC` (as every message
# shows a time; --json keeps the epoch seconds in `params`); a list renders as
# "a, b" ("none" when empty).
TEMPLATES: dict[str, str] = {
    "NO_DNSKEY": "no DNSKEY RRset at {zone}",
    "NO_USABLE_DNSKEY": "no key of the DNSKEY RRset of {zone} can sign it: nothing is checked",
    "RRSIG_MISSING": "no RRSIG of algorithm {algorithm} over the RRset in the signed zone {zone}",
    "RRSIG_BAD_SIGNATURE": "RRSIG {algorithm}/{tag} does not verify",
    "RRSIG_EXPIRED": "RRSIG {algorithm}/{tag} expired at {expiration:time}",
    "RRSIG_NOT_YET_VALID": "RRSIG {algorithm}/{tag} is valid only from {inception:time}",
    "RRSIG_UNKNOWN_KEY": "RRSIG {algorithm}/{tag}: no usable key of {zone} has this algorithm and "
                         "key tag",
    "RRSIG_KEY_NOT_PUBLISHED": "RRSIG {algorithm}/{tag}: {zone} publishes no DNSKEY of this "
                               "algorithm (yet)",
    "RRSIG_FIELDS_WRONG": "RRSIG {algorithm}/{tag}: {field} {found}, expected {expected}",
    "RRSIG_UNUSED": "{why}; not needed: another RRSIG of algorithm {algorithm} is valid",
    "RRSIG_ON_NON_AUTHORITATIVE": "RRSIG over {kind} data",
    "DNSKEY_NOT_SIGNED_BY_KSK": "the DNSKEY RRset is not signed by a SEP key of algorithm "
                                "{algorithm}",
    "DNSKEY_REVOKED_NOT_SELF_SIGNED": "revoked KSK {algorithm}/{tag} does not sign the DNSKEY "
                                      "RRset",
    "CNAME_AND_OTHER_DATA": "CNAME and other data: the name also has {types}",
    "DNSKEY_ALGORITHM_UNSIGNED": "algorithm {algorithm} is in the DNSKEY RRset but signs no RRset",
    "NSEC_MISSING": "authoritative name has no NSEC record",
    "NSEC_CHAIN_BROKEN": "{record} {field}: {found}, expected {expected}",
    "NSEC_BITMAP_WRONG": "type bitmap missing {missing}; lists absent {extra}",
    "NSEC_TTL_WRONG": "{record} TTL {ttl}, expected {expected} (RFC 9077)",
    "NSEC3_MISSING": "no NSEC3 record ({hash}) for this name",
    "NSEC3_CHAIN_BROKEN": "{record} {field}: {found}, expected {expected}",
    "NSEC3_BITMAP_WRONG": "{name}: type bitmap missing {missing}; lists absent {extra}",
    "NSEC3_PARAMS_INCONSISTENT": "NSEC3 {field} {found}, expected {expected}",
    "NSEC3PARAM_MISSING": "no NSEC3PARAM at the apex",
    "NSEC3_ITERATIONS_NONZERO": "NSEC3 iterations {iterations} (RFC 9276: use 0)",
    "NSEC3_SALT_PRESENT": "NSEC3 salt {salt} (RFC 9276: use none)",
    "NSEC3_OPT_OUT": "NSEC3 opt-out in use",
    "NSEC_AND_NSEC3": "the zone has both NSEC and NSEC3 records",
    "NO_DENIAL_CHAIN": "the zone has neither an NSEC nor an NSEC3 chain",
    "DNSKEY_MISSING": "the {source} for {zone} needs its DNSKEY RRset, which the evidence lacks",
    "DS_NO_MATCHING_DNSKEY": "no usable DNSKEY of {zone} matches the {source} ({records})",
    "DNSKEY_UNUSABLE": "DNSKEY {tag}/{algorithm} matches the {source} but cannot be used: {reason}",
    "ALGORITHM_UNSUPPORTED": "{source} algorithm(s) {algorithms} for {zone} cannot be validated: "
                             "the zone is treated as insecure",
    "DS_DIGEST_UNSUPPORTED": "DS digest type(s) {digests} for {zone} are not supported: the zone "
                             "is treated as insecure",
    "DS_SHA1_IGNORED": "SHA-1 {source} {tag}/{algorithm} ignored: a SHA-256 DS exists for the "
                       "same key",
    # Denial findings carry the proof's claim and its own account of what is missing.
    "DS_ABSENCE_UNPROVEN": "{claim} not proven: {detail}",
    "DENIAL_UNPROVEN": "{claim} not proven: {detail}",
    "DENIAL_WRONG_SIDE": "{claim} not proven: {detail}",
    "WILDCARD_UNPROVEN": "{claim} not proven: {detail}",
    "RCODE_MISMATCH": "RCODE {rcode} does not fit a {kind} response",
    "DNAME_SYNTHESIS_WRONG": "the CNAME at {cname} points to {target}, but the DNAME at {dname} "
                             "gives {expected}",
    "NSEC3_ITERATIONS_TOO_HIGH": "NSEC3 iterations {iterations} exceed the limit {limit}: treated "
                                 "as insecure",
    "NSEC3_OPT_OUT_INSECURE": "{detail}",
    "WORK_LIMIT_EXCEEDED": "{limit} ({value}) {what} reached",
    "NO_TRUST_ANCHOR": "no trust anchor covers the data",
    "SIGN_ALGORITHM_NO_ACTIVE_KEY": "algorithm {algorithm} is in the DNSKEY RRset but has no "
                                    "active key: every algorithm in the DNSKEY RRset must sign "
                                    "every RRset (RFC 6840 §5.11)",
    "SIGN_NO_ACTIVE_KSK": "algorithm {algorithm} has no active KSK: its ZSK signs the DNSKEY "
                          "RRset (the zone passes dnssec-verify only with -z)",
    "CDS_NO_ACTIVE_KSK": "no active KSK to publish CDS/CDNSKEY for",
    "SIGN_DENIAL_CHANGED": "denial of existence changes from the input's {found} to {signed}",
}

Param = str | int | list[str] | list[int]


class _Renderer(string.Formatter):
    """str.format with the `time` spec and list rendering the templates use."""

    def format_field(self, value: object, format_spec: str) -> str:
        if format_spec == "time":
            return datetime.fromtimestamp(value, tz=UTC).strftime(  # type: ignore[arg-type]
                "%Y-%m-%d %H:%M:%S UTC")
        if isinstance(value, list):
            return ", ".join(str(v) for v in value) or "none"
        return super().format_field(value, format_spec)


_RENDER = _Renderer()


def template_params(code: str) -> frozenset[str]:
    """The parameter names a code's template requires."""
    return frozenset(f for _, f, _, _ in _RENDER.parse(TEMPLATES[code]) if f)


def _plain(value: object) -> bool:
    if isinstance(value, list):
        return all(isinstance(v, str | int) and not isinstance(v, bool) for v in value)
    return isinstance(value, str | int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Finding:
    """One problem: its code, the values its template names (plain JSON values), and the
    owner name and type concerned. The prose is rendered from the template on demand."""

    code: str
    params: Mapping[str, Param] = field(default_factory=dict, hash=False)
    name: str | None = None  # owner name concerned, presentation form
    rdtype: str | None = None

    def __post_init__(self) -> None:
        if self.code not in CODES:
            raise ValueError(f"unregistered finding code {self.code!r}")
        want, have = template_params(self.code), set(self.params)
        if have != want:
            raise ValueError(f"{self.code} takes parameters {sorted(want)}, not {sorted(have)}")
        bad = [k for k, v in self.params.items() if not _plain(v)]
        if bad:
            raise ValueError(f"{self.code}: parameters {bad} are not str, int or a list of them")

    @property
    def message(self) -> str:
        return _RENDER.format(TEMPLATES[self.code], **self.params)

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
            "params": dict(self.params),
            "name": self.name,
            "type": self.rdtype,
            "rfc": self.rfc,
            "ede": self.ede,
        }


assert set(TEMPLATES) == set(CODES), set(TEMPLATES) ^ set(CODES)


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity is Severity.ERROR]
