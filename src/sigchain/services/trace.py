"""`sigchain trace` as a service: resolve one question (iteratively from root hints, or through
one server), gather the chain of trust, validate it, and say per zone what was checked.

The resolution logic is `core.resolution` (sans-I/O), the judgement is `core.validator`; this
module only wires them to the network (`edge.transport`) and to files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dns.dnssec
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
from dns.rdatatype import RdataType

from sigchain.core.dnssec.policy import DEFAULT_POLICY, DnssecPolicy
from sigchain.core.resolve.exchange import Failed, Gathered, ResolutionLimits
from sigchain.core.resolve.resolution import Resolution
from sigchain.core.validate import anchors as anchors_mod
from sigchain.core.validate.anchors import Server
from sigchain.core.validate.validator import Kind, Link, Question, Status, Verdict, validate
from sigchain.edge import transport
from sigchain.errors import InputError
from sigchain.findings import Finding

# delv's verdict lines (bin/delv/delv.c), which users and scripts already know.
FULLY_VALIDATED = "; fully validated"
NEGATIVE_VALIDATED = "; negative response, fully validated"
UNSIGNED = "; unsigned answer"
NEGATIVE_UNSIGNED = "; negative response, unsigned answer"

DEFAULT_LIMITS = ResolutionLimits()


def read_anchors(path: str) -> list[dns.rrset.RRset]:
    return anchors_mod.parse_anchors(_read(path), path)


def read_root_hints(path: str) -> tuple[Server, ...]:
    return anchors_mod.parse_root_hints(_read(path), path)


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", file=path) from None
    except UnicodeDecodeError:
        raise InputError("not a text file", file=path) from None


@dataclass(frozen=True)
class ZoneReport:
    """One zone of the chain, from the anchor down: what was checked and what it came to."""

    zone: dns.name.Name
    status: str  # secure | insecure | bogus | not reached | no anchor
    links: tuple[Link, ...]
    findings: tuple[Finding, ...]

    def to_dict(self) -> dict[str, object]:
        return {"zone": self.zone.to_text(), "status": self.status,
                "links": [link.to_dict() for link in self.links],
                "findings": [f.to_dict() for f in self.findings]}


@dataclass(frozen=True)
class KeyTags:
    """A DS link that matches no key, side by side: the key tags the DS RRset (or trust
    anchor) names and those of the zone's DNSKEY RRset — what an operator needs to fix it."""

    zone: dns.name.Name
    ds: tuple[tuple[int, int, int], ...]  # (key tag, algorithm, digest type)
    dnskey: tuple[tuple[int, int, int], ...]  # (key tag, algorithm, flags)

    def to_dict(self) -> dict[str, object]:
        return {"zone": self.zone.to_text(),
                "ds": [{"tag": t, "algorithm": a, "digest_type": d} for t, a, d in self.ds],
                "dnskey": [{"tag": t, "algorithm": a, "flags": f} for t, a, f in self.dnskey]}


@dataclass(frozen=True)
class TraceResult:
    question: Question
    mode: str  # "iterative" | "server"
    server: Server | None
    now: int
    outcome: Gathered | Failed
    verdict: Verdict | None = None
    zones: tuple[ZoneReport, ...] = field(default=())
    key_tags: tuple[KeyTags, ...] = ()  # per DS link that matches no key
    ignored: int = 0  # datagrams ignored as not the reply to their query (RFC 5452)
    unanswered: tuple[tuple[str, str], ...] = ()  # servers that did not answer, and how

    @property
    def failed(self) -> Failed | None:
        return self.outcome if isinstance(self.outcome, Failed) else None

    @property
    def status(self) -> str:
        """secure | insecure | bogus | indeterminate | failed | unreachable"""
        if isinstance(self.outcome, Failed):
            return "unreachable" if self.outcome.unreachable else "failed"
        assert self.verdict is not None
        return self.verdict.status.value

    @property
    def verdict_lines(self) -> list[str]:
        """delv's wording for the outcome. As delv prints a verdict per RRset, a CNAME/DNAME
        chain that ends in NXDOMAIN or NODATA gets the positive line (for the chain) first,
        then the negative one (for its end)."""
        if isinstance(self.outcome, Failed):
            return [f";; resolution failed: {self.outcome.reason}"]
        v = self.verdict
        assert v is not None
        negative = v.kind in (Kind.NXDOMAIN, Kind.NODATA)
        chain = negative and any(r.rdtype in (RdataType.CNAME, RdataType.DNAME)
                                 for r in self.outcome.evidence.answer)
        if v.status is Status.SECURE:
            lines = [NEGATIVE_VALIDATED] if negative else [FULLY_VALIDATED]
            return [FULLY_VALIDATED, *lines] if chain else lines
        if v.status is Status.INSECURE:
            lines = [NEGATIVE_UNSIGNED] if negative else [UNSIGNED]
            return [UNSIGNED, *lines] if chain else lines
        first = next((f for f in v.findings if f.severity.value == "error"), None) or (
            v.findings[0] if v.findings else None)
        why = f": {first.code} ({first.message})" if first else ""
        return [f";; resolution failed: {v.status.value}{why}"]

    @property
    def verdict_line(self) -> str:
        return self.verdict_lines[0]

    def exit_code(self, require_secure: bool = False) -> int:
        status = self.status
        if status == "unreachable":
            return 3
        if status == "secure" or (status == "insecure" and not require_secure):
            return 0
        return 1


def trace(question: Question, anchors: Sequence[dns.rrset.RRset], now: int, *,
          root_hints: Sequence[Server] | None = None, server: Server | None = None,
          cd: bool | None = None, budget: float = transport.DEFAULT_BUDGET,
          server_timeout: float = transport.SERVER_TIMEOUT,
          limits: ResolutionLimits = DEFAULT_LIMITS, policy: DnssecPolicy = DEFAULT_POLICY,
          ) -> TraceResult:
    """Resolve and validate one question within `budget` seconds, waiting at most
    `server_timeout` for each server. Without `server`, iteratively from `root_hints`
    (default: the IANA root servers)."""
    names = {r.name for r in anchors}
    if server is not None:
        resolution = Resolution(question, names, server=server, cd=cd, limits=limits)
    else:
        hints = tuple(root_hints) if root_hints else anchors_mod.root_hint_servers()
        resolution = Resolution(question, names, hints=hints, limits=limits)
    net = transport.Transport(budget, server_timeout)
    outcome = net.run(resolution)
    mode = "server" if server is not None else "iterative"
    seen = {"ignored": net.ignored,
            "unanswered": tuple((str(s), why) for s, why in net.unanswered.items())}
    if isinstance(outcome, Failed):
        return TraceResult(question, mode, server, now, outcome, **seen)  # type: ignore[arg-type]
    verdict = validate(outcome.evidence, anchors, now, policy)
    return TraceResult(question, mode, server, now, outcome, verdict,
                       zone_reports(outcome, verdict, names),
                       key_tags(outcome, verdict, anchors), **seen)  # type: ignore[arg-type]


def key_tags(gathered: Gathered, verdict: Verdict,
             anchors: Sequence[dns.rrset.RRset]) -> tuple[KeyTags, ...]:
    """For each zone whose DS RRset (or trust anchor) matches no DNSKEY: the key tags on
    both sides, from the evidence the validator was given."""
    cuts = {c.name: c for c in gathered.evidence.zones}
    out = []
    for f in verdict.findings:
        if f.code != "DS_NO_MATCHING_DNSKEY":
            continue
        zone = dns.name.from_text(str(f.params["zone"]))
        cut = cuts.get(zone)
        if cut is None:
            continue
        named = [r for r in (anchors if f.params.get("source") == "trust anchor" else cut.ds)
                 if r.name == zone]
        ds = [(rd.key_tag, rd.algorithm, rd.digest_type) for r in named
              if r.rdtype == RdataType.DS for rd in r]  # type: ignore[attr-defined]
        ds += [(dns.dnssec.key_id(rd), rd.algorithm, 0) for r in named  # type: ignore[arg-type]
               if r.rdtype == RdataType.DNSKEY for rd in r]  # type: ignore[attr-defined]
        keys = [(dns.dnssec.key_id(rd), rd.algorithm, rd.flags) for r in cut.dnskey  # type: ignore[arg-type]
                if r.rdtype == RdataType.DNSKEY for rd in r]  # type: ignore[attr-defined]
        out.append(KeyTags(zone, tuple(sorted(set(ds))), tuple(sorted(set(keys)))))
    return tuple(out)


def _zone_of_finding(f: Finding, zones: Sequence[dns.name.Name]) -> dns.name.Name | None:
    """The zone a finding is about: the deepest zone holding its owner name (a DS record and
    the DS_* codes belong to the parent side)."""
    if f.name is None:
        return None
    name = dns.name.from_text(f.name)
    parent_side = f.rdtype == "DS" and f.code not in ("ALGORITHM_UNSUPPORTED", "DS_DIGEST_UNSUPPORTED")
    holding = [z for z in zones if name.is_subdomain(z) and not (parent_side and z == name)]
    return max(holding, key=len, default=None)


def zone_reports(gathered: Gathered, verdict: Verdict,
                 anchor_names: set[dns.name.Name]) -> tuple[ZoneReport, ...]:
    """Group the verdict's links and findings per zone, from the anchor down, and give each
    zone its status: its DNSKEY RRset authenticated (secure), proven unsigned or of an
    unsupported algorithm (insecure), failed (bogus), or below where the walk stopped."""
    zones = [c.name for c in gathered.evidence.zones]
    by_zone: dict[dns.name.Name, list[Link]] = {z: [] for z in zones}
    for link in verdict.links:
        by_zone.setdefault(link.zone, []).append(link)
    findings: dict[dns.name.Name | None, list[Finding]] = {}
    for f in verdict.findings:
        findings.setdefault(_zone_of_finding(f, list(by_zone)), []).append(f)
    no_ds = {link.name for link in verdict.links if link.kind == "no-ds"}
    reports = []
    insecure: set[dns.name.Name] = set()
    for z in sorted(by_zone, key=lambda n: (len(n), n)):
        links = by_zone[z]
        zf = findings.get(z, [])
        keys_ok = any(link.kind == "rrsig" and link.rdtype == RdataType.DNSKEY and link.name == z
                      for link in links)
        if any(f.code in ("ALGORITHM_UNSUPPORTED", "DS_DIGEST_UNSUPPORTED") and f.name == z.to_text()
               for f in verdict.findings):
            status = "insecure"
        elif z in no_ds or any(z.is_subdomain(i) for i in insecure):
            status = "insecure"
        elif keys_ok:
            status = "secure" if not any(f.severity.value == "error" for f in zf) else "bogus"
        elif any(f.severity.value == "error" for f in zf):
            status = "bogus"
        elif not any(z.is_subdomain(a) for a in anchor_names):
            status = "no anchor"
        else:
            status = "not reached"
        if status == "insecure":
            insecure.add(z)
        reports.append(ZoneReport(z, status, tuple(links), tuple(zf)))
    return tuple(reports)


def rcode_text(result: TraceResult) -> str:
    if isinstance(result.outcome, Gathered):
        return dns.rcode.to_text(result.outcome.evidence.rcode)
    return dns.rcode.to_text(result.outcome.rcode) if result.outcome.rcode is not None else "-"
