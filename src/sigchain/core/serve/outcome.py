"""What a lookup produces: the typed outcome of each step (`Outcome`) and the sections it
fills (`Sections`), before any message framing."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import dns.rcode
import dns.rrset

Item = tuple[bytes | None, dns.rrset.RRset]  # (owner when synthesised — a wildcard — else None, RRset)


class Kind(enum.Enum):
    """How one lookup step ended (as Knot's `solve_*` steps: hit, miss, nodata, delegation,
    follow CNAME, DNAME)."""

    HIT = "hit"  # the data asked for (or every RRset, for ANY)
    CNAME = "cname"  # a CNAME answered: follow its target
    DNAME = "dname"  # DNAME substitution: follow the synthesised CNAME's target
    YXDOMAIN = "yxdomain"  # DNAME substitution made a name too long (RFC 6672 §2.2)
    NODATA = "nodata"  # the name exists (or is an empty non-terminal), the type does not
    NXDOMAIN = "nxdomain"  # no such name and no wildcard
    DELEGATION = "delegation"  # a referral to the zone cut `cut`
    BELOW_CUT = "below-cut"  # a CNAME chain led below a zone cut: the answer so far stands


@dataclass(frozen=True, slots=True)
class Outcome:
    """One step of the lookup for `key`: what it found and where to go next. `ce` is the
    closest encloser and `wildcard` the wildcard owner when the name does not exist (a
    wildcard answered, or NODATA/NXDOMAIN); `existing` says the name has a node of its own."""

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
