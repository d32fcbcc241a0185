"""Where a resolver's trust anchors come from: one object asked at each validation, so that a
managed (RFC 5011) source can replace the static one without the resolver changing."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import dns.rrset


class AnchorSource(Protocol):
    def trusted(self, now: int) -> list[dns.rrset.RRset]:
        """The DS/DNSKEY RRsets trusted at `now`, one RRset per zone and type."""
        ...


class StaticAnchors:
    """Anchors fixed at start: the built-in root anchors or those of `--anchor FILE`."""

    def __init__(self, rrsets: Iterable[dns.rrset.RRset]):
        self._rrsets = list(rrsets)

    def trusted(self, now: int) -> list[dns.rrset.RRset]:
        return list(self._rrsets)
