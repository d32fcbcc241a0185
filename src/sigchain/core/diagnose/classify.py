"""The `+cd` fingerprint as a function: what a resolver said (with and without CD) and what the
chain from the authoritative servers came to → one cause, its class, the failing link and the
fix an operator would apply. Pure: the observations are gathered elsewhere."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

import dns.rcode

from sigchain.core.resolve.exchange import Exchange
from sigchain.findings import Finding

CLASSIC_UDP = 512  # the pre-EDNS UDP limit (RFC 1035 §4.2.1)


class Cause(enum.Enum):
    SECURE = "SECURE"
    INSECURE = "INSECURE"
    DS_MISMATCH = "DS_MISMATCH"
    RRSIG_EXPIRED = "RRSIG_EXPIRED"
    RRSIG_NOT_YET_VALID = "RRSIG_NOT_YET_VALID"
    RRSIGS_STRIPPED = "RRSIGS_STRIPPED"
    DNSKEY_MISSING = "DNSKEY_MISSING"
    TRUST_ANCHOR_STALE = "TRUST_ANCHOR_STALE"
    EDNS_TRUNCATION = "EDNS_TRUNCATION"
    UNSUPPORTED_ALGORITHM = "UNSUPPORTED_ALGORITHM"
    BOGUS = "BOGUS"  # another validation failure (bad signature, unproven denial, …)
    RESOLVER_FAILURE = "RESOLVER_FAILURE"  # the resolver SERVFAILs data that validates
    RESOLVER_OUTAGE = "RESOLVER_OUTAGE"  # it SERVFAILs with CD too: it cannot resolve at all
    SERVERS_UNREACHABLE = "SERVERS_UNREACHABLE"
    RESOLVER_UNREACHABLE = "RESOLVER_UNREACHABLE"  # the resolver asked did not answer at all
    NXDOMAIN = "NXDOMAIN"
    ANCHOR_GIVEN_STALE = "ANCHOR_GIVEN_STALE"  # diagnose's own anchor; the resolver validates


class Category(enum.Enum):
    OK = "secure and working"
    DNSSEC = "DNSSEC validation failure"
    NOT_DNSSEC = "not a DNSSEC problem"
    ANCHOR_GIVEN = "the trust anchor given to diagnose is out of date"


CATEGORY = {
    Cause.SECURE: Category.OK, Cause.INSECURE: Category.OK,
    Cause.SERVERS_UNREACHABLE: Category.NOT_DNSSEC, Cause.NXDOMAIN: Category.NOT_DNSSEC,
    Cause.RESOLVER_OUTAGE: Category.NOT_DNSSEC, Cause.RESOLVER_UNREACHABLE: Category.NOT_DNSSEC,
    Cause.ANCHOR_GIVEN_STALE: Category.ANCHOR_GIVEN,
}
# (the anchor file given is bad input: exit 2, as an unreadable one would be)
EXIT = {Category.OK: 0, Category.DNSSEC: 1, Category.NOT_DNSSEC: 3, Category.ANCHOR_GIVEN: 2}

FIXES = {
    Cause.SECURE: "nothing to fix",
    Cause.INSECURE: "nothing to fix for resolution; to protect the zone, sign it and publish "
                    "its DS at the parent",
    Cause.DS_MISMATCH: "publish at the parent a DS for a KSK the zone serves (e.g. "
                       "`sigchain ds` of the live KSK), or put the retired KSK back into the "
                       "DNSKEY RRset until the parent's DS is updated",
    Cause.RRSIG_EXPIRED: "re-sign the zone and reload every authoritative server; find why "
                         "re-signing stalled (signer down, zone transfer stuck)",
    Cause.RRSIG_NOT_YET_VALID: "check the signer's clock and the signature inception "
                               "(backdate inception, e.g. by an hour), then re-sign",
    Cause.RRSIGS_STRIPPED: "something between the resolver and the authoritative servers drops "
                           "RRSIG/DNSKEY records (a firewall, middlebox or non-DNSSEC "
                           "forwarder): point the resolver at a DNSSEC-transparent path or "
                           "let it resolve directly, and keep validating locally",
    Cause.DNSKEY_MISSING: "publish the DNSKEY RRset at the zone apex on every authoritative "
                          "server (or withdraw the DS at the parent if the zone is going "
                          "unsigned)",
    Cause.TRUST_ANCHOR_STALE: "update the resolver's trust anchor to the current root KSK "
                              "(RFC 5011 managed keys, or the current anchor file) and restart it",
    Cause.EDNS_TRUNCATION: "a middlebox cuts UDP answers over 512 bytes without setting TC: "
                           "fix or bypass it (allow EDNS0 UDP up to 1232 bytes and DNS over TCP)",
    Cause.UNSUPPORTED_ALGORITHM: "sign with an algorithm validators support (RFC 8624: e.g. "
                                 "13 ECDSAP256SHA256) and roll the DS at the parent",
    Cause.BOGUS: "re-sign the zone and check it with `sigchain verify`; see the findings",
    Cause.RESOLVER_FAILURE: "the data validates from the anchor: check the resolver (its "
                            "clock, trust anchor, forwarders and log) and flush its cache",
    Cause.RESOLVER_OUTAGE: "not a DNSSEC problem: with validation off (CD) the resolver still "
                           "fails, while the authoritative servers answer and validate from "
                           "here: check its path to them (firewall, routing, its forwarders), "
                           "its log, and flush a cached failure",
    Cause.SERVERS_UNREACHABLE: "bring the authoritative servers back (or fix the delegation "
                               "and glue that point at them); not a DNSSEC problem",
    Cause.RESOLVER_UNREACHABLE: "the resolver did not answer at all: check that it runs and "
                                "listens on that address, and that this host may query it "
                                "(its access list, a firewall); not a DNSSEC problem",
    Cause.NXDOMAIN: "the name does not exist: add it to the zone if it should; not a DNSSEC "
                    "problem",
    Cause.ANCHOR_GIVEN_STALE: "give diagnose (--anchor) the current root trust anchor, e.g. "
                              "the one the resolver uses; the resolver itself validates",
}


@dataclass(frozen=True)
class ResolverAnswer:
    """One reply of the resolver: RCODE, AD, the types in the answer section (RRSIGs by the
    type they cover), and its EDE codes."""

    rcode: int
    ad: bool
    answer_types: tuple[str, ...] = ()
    signed_types: tuple[str, ...] = ()  # types in the answer covered by an RRSIG
    ede: tuple[int, ...] = ()

    @property
    def has_data(self) -> bool:
        return self.rcode == dns.rcode.NOERROR and bool(self.answer_types)

    @property
    def servfail(self) -> bool:
        return self.rcode == dns.rcode.SERVFAIL

    def to_dict(self) -> dict[str, object]:
        return {"rcode": dns.rcode.to_text(self.rcode), "ad": self.ad,
                "answer_types": list(self.answer_types),
                "signed_types": list(self.signed_types), "ede": list(self.ede)}


@dataclass(frozen=True)
class Observations:
    """What diagnose saw. `plain`/`cd`: the resolver's replies without and with CD (None: no
    reply, `resolver_error` says why; both None and no error: no resolver asked).
    `trace_status`: the chain from the authoritative servers (secure | insecure | bogus |
    indeterminate | failed | unreachable), `trace_kind` its answer kind (answer | nxdomain |
    nodata), `findings` its findings. `root_plain`: the resolver's reply to `. DNSKEY` with CD=0
    (does it validate anything at all). `udp_large_lost`: a large UDP answer of the resolver
    never came (or came cut, TC unset) while TCP delivered it."""

    def large_answers_fail(self) -> bool:
        """The fingerprint of a 512-byte middlebox on the resolver's path: it fails even with
        CD (no data at all, not a validation failure) on a question whose authoritative
        replies exceed 512 bytes, while it validates the small `. DNSKEY` answer."""
        return (self.udp_large_lost or (
            self.cd is not None and self.cd.servfail and self.largest_reply > CLASSIC_UDP
            and self.root_plain is not None and self.root_plain.ad))

    trace_status: str
    trace_kind: str | None = None
    trace_reason: str = ""
    findings: tuple[Finding, ...] = ()
    plain: ResolverAnswer | None = None
    cd: ResolverAnswer | None = None
    resolver_error: str = ""
    root_plain: ResolverAnswer | None = None
    root_cd: ResolverAnswer | None = None  # `. DNSKEY` with CD: do DNSKEYs reach it signed?
    udp_large_lost: bool = False
    largest_reply: int = 0  # bytes: the largest authoritative reply the trace needed


@dataclass(frozen=True)
class Diagnosis:
    cause: Cause
    reason: str  # one line: why this cause
    failing: Finding | None = None  # the link that breaks, when the chain shows it
    notes: tuple[str, ...] = field(default=())

    @property
    def category(self) -> Category:
        return CATEGORY.get(self.cause, Category.DNSSEC)

    @property
    def exit_code(self) -> int:
        return EXIT[self.category]

    @property
    def fix(self) -> str:
        return FIXES[self.cause]

    def to_dict(self) -> dict[str, object]:
        return {"cause": self.cause.value, "category": self.category.value,
                "reason": self.reason, "fix": self.fix,
                "failing_link": self.failing.to_dict() if self.failing else None,
                "notes": list(self.notes), "exit_code": self.exit_code}


# Finding codes of a bogus chain → cause, most specific first.
_BY_FINDING: tuple[tuple[str, Cause], ...] = (
    ("DS_NO_MATCHING_DNSKEY", Cause.DS_MISMATCH),
    ("NO_DNSKEY", Cause.DNSKEY_MISSING),
    ("DNSKEY_MISSING", Cause.DNSKEY_MISSING),
    ("RRSIG_EXPIRED", Cause.RRSIG_EXPIRED),
    ("RRSIG_NOT_YET_VALID", Cause.RRSIG_NOT_YET_VALID),
    ("RRSIG_MISSING", Cause.RRSIGS_STRIPPED),
    ("ALGORITHM_UNSUPPORTED", Cause.UNSUPPORTED_ALGORITHM),
    ("DS_DIGEST_UNSUPPORTED", Cause.UNSUPPORTED_ALGORITHM),
)


def _from_findings(findings: Sequence[Finding], plain: ResolverAnswer | None) -> Diagnosis | None:
    for code, cause in _BY_FINDING:
        f = next((f for f in findings if f.code == code), None)
        if f is None:
            continue
        if code == "DS_NO_MATCHING_DNSKEY" and f.params.get("source") == "trust anchor":
            if plain is not None and plain.ad and plain.rcode in (dns.rcode.NOERROR,
                                                                  dns.rcode.NXDOMAIN):
                return Diagnosis(Cause.ANCHOR_GIVEN_STALE, "the trust anchor given to diagnose "
                                 f"matches no key of {f.params['zone']}, while the resolver "
                                 "validates the answer (AD): its anchor is current", f)
            return Diagnosis(Cause.TRUST_ANCHOR_STALE,
                             f"the trust anchor matches no key of {f.params['zone']}", f)
        return Diagnosis(cause, f.message, f)
    return None


def largest_own_reply(exchanges: Sequence[Exchange]) -> int:
    """The largest reply of the question's own zone in a trace: the servers that answered
    the question (their answer, its proofs, the zone's DNSKEY RRset) — not the root's or a
    TLD's key sets, which a resolver that validates the root at all gets through whatever
    its path does to large answers. Through one server (no zones known), every reply."""
    own = next((ex.query.zone for ex in reversed(exchanges)
                if ex.query.purpose == "question" and ex.rcode is not None), None)
    return max((ex.size for ex in exchanges if own is None or ex.query.zone == own), default=0)


def _resolver_side(obs: Observations) -> Diagnosis | None:
    """The chain validates from the anchor, yet the resolver fails: why, from its replies."""
    plain, cd = obs.plain, obs.cd
    if plain is None or not plain.servfail:
        return None
    if obs.large_answers_fail():
        return Diagnosis(Cause.EDNS_TRUNCATION, "answers over 512 bytes fail on the resolver's "
                         f"path (the authoritative replies reach {obs.largest_reply} bytes; "
                         "the resolver SERVFAILs even with CD) while small ones validate")
    if cd is not None and cd.has_data and not cd.signed_types and obs.trace_status == "secure":
        return Diagnosis(Cause.RRSIGS_STRIPPED, "the resolver SERVFAILs; with CD it returns the "
                         "data without RRSIGs, while the authoritative servers sign it")
    if obs.root_plain is not None and obs.root_plain.servfail and obs.trace_status == "secure":
        rc = obs.root_cd
        if rc is not None and not (rc.has_data and "DNSKEY" in rc.answer_types
                                   and "DNSKEY" in rc.signed_types):
            return Diagnosis(Cause.RRSIGS_STRIPPED, "the resolver SERVFAILs even the root's "
                             "DNSKEY RRset, and with CD it gets that RRset without its RRSIGs "
                             "(or not at all), while the root serves it signed")
        return Diagnosis(Cause.TRUST_ANCHOR_STALE, "the resolver SERVFAILs even the root's "
                         "DNSKEY RRset, which validates from the anchor: its own trust anchor "
                         "matches no root key")
    if cd is not None and cd.servfail:  # the +cd test: validation off, and still no answer
        return Diagnosis(Cause.RESOLVER_OUTAGE, "the resolver SERVFAILs with CD as well "
                         "(no validation), while the chain from the authoritative servers is "
                         f"{obs.trace_status}: it cannot resolve the name at all")
    with_cd = "has the data" if cd is not None and cd.has_data else "does not help"
    return Diagnosis(Cause.RESOLVER_FAILURE, f"the resolver SERVFAILs (CD {with_cd}), while "
                     f"the chain from the authoritative servers is {obs.trace_status}")


def _notes(obs: Observations) -> tuple[str, ...]:
    notes = []
    if obs.resolver_error:
        notes.append(f"resolver: {obs.resolver_error}")
    p = obs.plain
    if p is not None and obs.trace_status == "secure" and p.has_data and not p.ad:
        notes.append("the resolver answers without AD: it does not validate")
    if p is not None and p.servfail and obs.trace_status == "insecure":
        notes.append("the resolver SERVFAILs an insecure name: look at the resolver")
    if obs.udp_large_lost and p is not None and not p.servfail:
        notes.append("the resolver's large answer over UDP never came (or came cut without TC) "
                     "while TCP delivered it: clients that ask over UDP only time out (a path "
                     "that drops big UDP answers: EDNS_TRUNCATION on the client's side)")
    return tuple(notes)


def classify(obs: Observations) -> Diagnosis:
    """One cause for the observations; a broken chain names its failing link."""
    notes = _notes(obs)
    if obs.trace_status in ("unreachable", "failed"):
        return Diagnosis(Cause.SERVERS_UNREACHABLE, obs.trace_reason or "no server answered",
                         notes=notes)
    if obs.trace_status in ("bogus", "indeterminate") or (
            obs.trace_status == "insecure" and any(
                f.code in ("ALGORITHM_UNSUPPORTED", "DS_DIGEST_UNSUPPORTED") for f in obs.findings)):
        found = _from_findings(obs.findings, obs.plain)
        if found is None:
            first = next((f for f in obs.findings if f.severity.value == "error"), None)
            found = Diagnosis(Cause.BOGUS, first.message if first else "the chain is bogus", first)
        return Diagnosis(found.cause, found.reason, found.failing, notes)
    resolver = _resolver_side(obs)
    if resolver is not None:
        return Diagnosis(resolver.cause, resolver.reason, None, notes)
    if obs.plain is None and obs.resolver_error and obs.cd is None:
        return Diagnosis(Cause.RESOLVER_UNREACHABLE, f"the resolver did not answer "
                         f"({obs.resolver_error}), while the chain from the authoritative "
                         f"servers is {obs.trace_status}", notes=notes)
    if obs.trace_kind == "nxdomain":
        return Diagnosis(Cause.NXDOMAIN, f"the name does not exist ({obs.trace_status} "
                         "denial)", notes=notes)
    if obs.trace_status == "secure":
        return Diagnosis(Cause.SECURE, "the chain validates from the anchor", notes=notes)
    return Diagnosis(Cause.INSECURE, "the chain proves the answer unsigned", notes=notes)
