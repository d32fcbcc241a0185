"""Walk a zone's NSEC chain: ask each name for its NSEC, follow the next-owner field until
it comes back to the apex (pure: queries out, replies in). A delegation point is asked about
by the name just past its subtree, whose NXDOMAIN carries the delegation's NSEC. Minimally
covering NSEC records ("white lies", RFC 4470; "black lies", RFC 9824) stop the walk: they
name no real neighbours."""

from __future__ import annotations

from dataclasses import dataclass, field

import dns.message
import dns.name
import dns.rdatatype
import dns.rrset
from dns.rdatatype import RdataType

from sigchain.core.zone import shape

Question = tuple[dns.name.Name, int]


def past_subtree(name: dns.name.Name) -> dns.name.Name | None:
    """The name that sorts right after every name at or below `name` (a zero byte appended to
    its first label: `sub` → `sub\\000`), or None when that would be too long."""
    first, rest = name.labels[0], name.labels[1:]
    if len(first) >= 63:
        return None
    try:
        return dns.name.Name((first + b"\x00", *rest))
    except dns.name.NameTooLong:
        return None


def covers(owner: dns.name.Name, nxt: dns.name.Name, name: dns.name.Name,
           apex: dns.name.Name) -> bool:
    """Whether NSEC (owner → nxt) covers `name` in canonical order (the last one wraps)."""
    if nxt == apex or nxt <= owner:
        return owner < name
    return owner < name < nxt


def is_white_lie(owner: dns.name.Name, nxt: dns.name.Name, asked: dns.name.Name) -> bool:
    """Synthesised minimal NSEC: the next name is the owner with a zero label prepended, or
    the owner is the made-up name just asked about."""
    epsilon = len(nxt) == len(owner) + 1 and nxt.parent() == owner and nxt.labels[0] == b"\x00"
    return epsilon or (owner == asked and owner.labels[0].endswith(b"\x00"))


@dataclass
class NsecWalk:
    """The walk's state: where it is, the names found with their types, what stopped it."""

    apex: dns.name.Name
    max_queries: int = 10000
    names: dict[dns.name.Name, list[str]] = field(default_factory=dict)
    queries: int = 0
    done: bool = False
    complete: bool = False
    white_lies: bool = False
    problem: str = ""
    current: dns.name.Name | None = None
    _asked: Question | None = None
    _delegations: set[dns.name.Name] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.current = self.apex

    def next_query(self) -> Question | None:
        if self.done or self.current is None:
            return None
        if self.queries >= self.max_queries:
            return self._stop(f"stopped after {self.queries} queries (--max-queries)")
        if self.current in self._delegations:
            past = past_subtree(self.current)
            if past is None:
                return self._stop(f"cannot step past {self.current}: its first label is too long")
            self._asked = (past, RdataType.A)
        else:
            self._asked = (self.current, RdataType.NSEC)
        self.queries += 1
        return self._asked

    def _stop(self, problem: str) -> None:
        self.done, self.problem = True, problem
        return None

    def _nsec_for(self, reply: dns.message.Message) -> dns.rrset.RRset | None:
        assert self._asked is not None and self.current is not None
        asked = self._asked[0]
        for rrset in reply.answer:
            if rrset.rdtype == RdataType.NSEC and rrset.name == asked:
                return rrset
        for rrset in reply.authority:
            if rrset.rdtype != RdataType.NSEC or not rrset.name.is_subdomain(self.apex):
                continue
            if rrset.name == self.current or covers(rrset.name, rrset[0].next, asked, self.apex):  # type: ignore[attr-defined]
                return rrset
        return None

    def result(self, reply: dns.message.Message) -> None:
        """Take the reply to the last query; move to the next owner name."""
        assert self.current is not None and self._asked is not None
        nsec = self._nsec_for(reply)
        if nsec is None:
            referral = any(r.rdtype == RdataType.NS and r.name == self.current
                           for r in reply.authority) and not reply.answer
            if referral and self.current not in self._delegations:
                self._delegations.add(self.current)  # ask past its subtree instead
                return
            self._stop(f"no NSEC for {self._asked[0]} in the reply (rcode {reply.rcode()}): "
                       "the zone is unsigned, NSEC3-signed, or the server strips them")
            return
        owner, nxt = nsec.name, nsec[0].next  # type: ignore[attr-defined]
        if is_white_lie(owner, nxt, self._asked[0]):
            if owner == self.apex:  # the apex is real, and so are its types
                self.names[owner] = bitmap_types(nsec[0])
            self.white_lies = True
            self._stop("the server synthesises minimal NSEC records (white lies, RFC 4470/9824):"
                       " the chain names no real neighbours")
            return
        self.names[owner] = bitmap_types(nsec[0])
        if nxt == self.apex:
            self.done = self.complete = True
        elif nxt in self.names or not nxt.is_subdomain(self.apex):
            self._stop(f"the chain goes from {owner} back to {nxt}: it loops or leaves the zone")
        else:
            self.current = nxt


def bitmap_types(rd: object) -> list[str]:
    """The type names in an NSEC/NSEC3 type bitmap, sorted."""
    return sorted(dns.rdatatype.to_text(t) for t in shape.bitmap_types(rd.windows))  # type: ignore[attr-defined]
