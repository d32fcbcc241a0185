"""What a validation proved that a resolver keeps for the questions after it (pure): the
zones whose DNSKEY RRset it authenticated, kept as anchors so that the next question under
them starts there, and the zones whose parent proved they have no DS, kept as insecure so
that nothing below them is fetched or checked; each for as long as the proof may be kept:
its records' TTLs, never more than their RRSIGs' Original TTL (RFC 4035 §5.3.3: a record
replayed with a longer TTL than its signer gave it must not be trusted longer), and never past
their RRSIGs' expiration."""

from __future__ import annotations

from collections.abc import Sequence

import dns.name
import dns.rrset
from dns.rdatatype import RdataType

from sigchain.core.validate.verdict import Evidence, Link


def zone_keys(ev: Evidence, links: Sequence[Link], anchored: set[dns.name.Name],
              now: int) -> list[tuple[dns.rrset.RRset, int]]:
    """Each zone's DNSKEY RRset the verdict's `links` authenticated (not those of zones
    `anchored` already), with the seconds it may be kept."""
    verified = {link.zone for link in links if link.kind == "rrsig"
                and link.rdtype == RdataType.DNSKEY and link.name == link.zone}
    out = []
    for cut in ev.zones:
        if cut.name not in verified or cut.name in anchored:
            continue
        keys = [r for r in cut.dnskey if r.rdtype == RdataType.DNSKEY]
        sigs = [rd for r in cut.dnskey if r.rdtype == RdataType.RRSIG for rd in r]
        if keys and sigs:
            expires = min(rd.expiration for rd in sigs)  # type: ignore[attr-defined]
            signed_ttl = min(rd.original_ttl for rd in sigs)  # type: ignore[attr-defined]
            out.append((keys[0], min(keys[0].ttl, signed_ttl, expires - now)))
    return out


def insecure_cuts(ev: Evidence, links: Sequence[Link], now: int) -> list[tuple[dns.name.Name, int]]:
    """Each zone whose parent proved (a "no-ds" link) it has no DS, with the seconds that
    proof may be kept."""
    out = []
    for link in links:
        if link.kind != "no-ds":
            continue
        cut = next((c for c in ev.zones if c.name == link.name), None)
        if cut is None or not cut.ds_denial:
            continue
        sigs = [rd for r in cut.ds_denial if r.rdtype == RdataType.RRSIG for rd in r]
        expiry = [rd.expiration - now for rd in sigs]  # type: ignore[attr-defined]
        signed_ttls = [rd.original_ttl for rd in sigs]  # type: ignore[attr-defined]
        out.append((link.name, min([r.ttl for r in cut.ds_denial] + expiry + signed_ttls)))
    return out
