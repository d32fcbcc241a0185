"""The verify checklist's judgements (pure): whether the DS RRset each parent server serves
matches a live KSK of the zone, from the records gathered by `services.check`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import dns.dnssec
import dns.name
import dns.rdatatype
import dns.rrset

from sigchain.core.dnssec.ds import ds_matches

ZONE_KEY, REVOKE = 0x0100, 0x0080


@dataclass(frozen=True)
class Row:
    """One row of `sigchain check`: pass or fail, and what was seen."""

    number: int
    title: str
    ok: bool
    detail: str

    def to_dict(self) -> dict[str, object]:
        return {"row": self.number, "check": self.title, "ok": self.ok, "detail": self.detail}


def live_ksks(zone: dns.name.Name, rrsets: Sequence[dns.rrset.RRset]) -> dict[int, object]:
    """Key tag → DNSKEY for each zone key (not revoked) in the zone's DNSKEY RRset that signs
    that RRset: the keys a DS may point at today. The SEP flag is not asked for: validators
    ignore it (RFC 4034 §2.1.1), and a DS for a key of flags 256 that signs the RRset
    validates (the exporter's DS metric counts it too)."""
    keys = [rd for r in rrsets if r.name == zone and r.rdtype == dns.rdatatype.DNSKEY for rd in r]
    signers = {(rd.key_tag, rd.algorithm) for r in rrsets  # type: ignore[attr-defined]
               if r.rdtype == dns.rdatatype.RRSIG and r.covers == dns.rdatatype.DNSKEY for rd in r}
    out: dict[int, object] = {}
    for k in keys:
        tag = dns.dnssec.key_id(k)  # type: ignore[arg-type]
        if k.flags & ZONE_KEY and not k.flags & REVOKE and (tag, k.algorithm) in signers:  # type: ignore[attr-defined]
            out[tag] = k
    return out


def ds_row(zone: dns.name.Name, per_server: Mapping[str, Sequence[object] | str],
           dnskey: Sequence[dns.rrset.RRset]) -> Row:
    """Row 3: every parent server serves a DS that matches a live KSK (a DS for a key that
    is gone is reported, but one good DS per server is what validation needs)."""
    title = "DS at every parent server matches a live KSK"
    ksks = live_ksks(zone, dnskey)
    if not per_server:
        return Row(3, title, False, f"no parent server of {zone} found")
    problems, seen = [], []
    for server, found in per_server.items():
        if isinstance(found, str):
            problems.append(f"{server}: {found}")
            continue
        good = sorted({d.key_tag for d in found for k in ksks.values()  # type: ignore[attr-defined]
                       if ds_matches(zone, d, k)})  # type: ignore[arg-type]
        stale = sorted({d.key_tag for d in found} - set(good))  # type: ignore[attr-defined]
        if not found:
            problems.append(f"{server}: no DS")
        elif not good:
            problems.append(f"{server}: DS {' '.join(map(str, stale))} matches no live KSK")
        else:
            seen.append(f"{server}: DS {' '.join(map(str, good))}"
                        + (f" (also {' '.join(map(str, stale))}, matching no live KSK)" if stale else ""))
    live = " ".join(map(str, sorted(ksks))) or "none"
    if problems:
        return Row(3, title, False, "; ".join(problems) + f" (live KSKs: {live})")
    return Row(3, title, True, "; ".join(seen) + f" (live KSKs: {live})")
