"""Render signed zones as master-file text (pure): absolute names, one RR per line."""

from __future__ import annotations

from collections.abc import Iterator

import dns.rdataclass
import dns.rdatatype

from sigchain.core.signer import SignResult


def render(result: SignResult) -> Iterator[str]:
    """Yield lines in canonical name order; each RRset is followed by its RRSIGs."""
    yield f"; signed by sigchain\n$ORIGIN {result.origin.to_text()}\n"
    for name, rrsets in result.nodes:
        owner = name.to_text()
        lines: list[str] = []
        for s in rrsets:
            rds = s.rdataset
            rtype = dns.rdatatype.to_text(rds.rdtype)
            for rd in rds:
                lines.append(f"{owner} {rds.ttl} IN {rtype} {rd.to_text(relativize=False)}\n")
            for sig in s.rrsigs:
                lines.append(f"{owner} {rds.ttl} IN RRSIG {sig.to_text(relativize=False)}\n")
        yield "".join(lines)
