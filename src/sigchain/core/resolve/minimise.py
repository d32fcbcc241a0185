"""QNAME minimisation (RFC 9156): which name to show a zone's servers."""

from __future__ import annotations

import dns.name


def minimised(qname: dns.name.Name, zone: dns.name.Name, extra: int) -> dns.name.Name:
    """The name to ask `zone`'s servers: one label below the zone, plus `extra` labels for
    names found to exist without being a cut; `qname` itself once that reaches it."""
    depth = len(zone) + 1 + extra
    return qname if depth >= len(qname) else qname.split(depth)[1]
