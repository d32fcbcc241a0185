"""What a whole-zone verification returns: the findings, the denial chain kind, the
algorithms and counts, in a report the checks add to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import dns.name

from sigchain.core.zone.shape import type_text
from sigchain.findings import Finding, Param


@dataclass
class VerifyReport:
    origin: dns.name.Name
    findings: list[Finding] = field(default_factory=list)
    denial: str = "none"  # nsec | nsec3 | none
    algorithms: list[int] = field(default_factory=list)
    rrsets_checked: int = 0
    signatures_verified: int = 0  # RRSIGs whose signature verifies (in their window or not)
    signatures_checked: int = 0  # every RRSIG over an authoritative RRset
    signatures_valid: int = 0  # verifies, in its validity window, with the right fields
    signatures_known: int = 0  # of those verified: known from the last load, crypto skipped
    verified_digests: bytes = b""  # of every signature verified (core/verify/known)
    nsec3: dict[str, object] | None = None

    def add(self, code: str, params: Mapping[str, Param], name: dns.name.Name | str | None = None,
            rdtype: int | None = None) -> None:
        self.findings.append(self.finding(code, params, name, rdtype))

    @staticmethod
    def finding(code: str, params: Mapping[str, Param], name: dns.name.Name | str | None = None,
                rdtype: int | None = None) -> Finding:
        if isinstance(name, dns.name.Name):
            name = name.to_text()
        return Finding(code, params, name, type_text(rdtype) if rdtype is not None else None)
