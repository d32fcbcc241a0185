"""What a lookup produces: the typed outcome of each step (`Outcome`) and the sections it
fills (`Sections`), before any message framing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, NamedTuple

import dns.rcode
import dns.rrset

# (the owner when a wildcard synthesises the RRset, else None; the RRset)
Item = tuple[bytes | None, dns.rrset.RRset]


# How one lookup step ended (as Knot's `solve_*` steps: hit, miss, nodata, delegation, follow
# CNAME, DNAME). Plain strings, not an Enum: an Enum member lookup costs ~70 ns on 3.11 and
# every step of every uncached answer makes and tests one.
Kind = Literal[
    "hit",  # the data asked for (or every RRset, for ANY)
    "cname",  # a CNAME answered: follow its target
    "dname",  # DNAME substitution: follow the synthesised CNAME's target
    "yxdomain",  # DNAME substitution made a name too long (RFC 6672 §2.2)
    "nodata",  # the name exists (or is an empty non-terminal), the type does not
    "nxdomain",  # no such name and no wildcard
    "delegation",  # a referral to the zone cut `cut`
]


class Outcome(NamedTuple):
    """One step of the lookup for `key`: what it found and where to go next. `ce` is the
    closest encloser and `wildcard` the wildcard owner when the name does not exist (a
    wildcard answered, or NODATA/NXDOMAIN); `existing` says the name has a node of its own.
    (A NamedTuple: made for every step of every uncached answer, it must be cheap.)"""

    kind: Kind
    key: bytes
    target: bytes | None = None  # CNAME/DNAME target to follow
    ce: bytes | None = None
    wildcard: bytes | None = None
    existing: bool = False
    cut: bytes | None = None


@dataclass
class Sections:
    """What a lookup produced, before it is put in a message: RRsets of the zone, each with
    the owner it is given when a wildcard synthesises it (RFC 4592 §4.3.3)."""

    rcode: int = dns.rcode.NOERROR
    aa: bool = True
    answer: list[Item] = field(default_factory=list)
    authority: list[Item] = field(default_factory=list)
    additional: list[Item] = field(default_factory=list)
    transient: set[int] = field(default_factory=set)  # ids of RRsets made for this answer
    _seen: set[tuple[str, bytes | None, int]] = field(default_factory=set)

    def add(self, section: str, rrset: dns.rrset.RRset | None, owner: bytes | None = None) -> None:
        if rrset is None:
            return
        key = (section, owner, id(rrset))  # the zone's RRsets live as long as the lookup
        if key in self._seen:
            return
        self._seen.add(key)
        getattr(self, section).append((owner, rrset))
