"""Following a CNAME/DNAME chain through an answer section by names alone (pure; RFC 1034
§3.6.2, RFC 6672 §3.3): the one rule the resolver (is the answer complete?) and the validator
(which RRsets must verify?) share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import dns.name
from dns.rdatatype import RdataType


class _Owned(Protocol):
    @property
    def name(self) -> dns.name.Name: ...

    @property
    def rdtype(self) -> int: ...


T = TypeVar("T", bound=_Owned)


@dataclass(frozen=True)
class ChainStep(Generic[T]):
    kind: str  # "cname" | "dname"
    item: T  # the CNAME or DNAME RRset
    synthesized: T | None = None  # for a DNAME step: the CNAME at the name, when present


@dataclass(frozen=True)
class Chain(Generic[T]):
    steps: tuple[ChainStep[T], ...]
    end: dns.name.Name  # the last name reached
    final: T | None  # the RRset of the asked type at `end`, when the chain reaches one
    stop: str  # "answer" | "open" (no further link) | "loop" | "too-long"


def follow(
    items: Sequence[T], name: dns.name.Name, rdtype: int, target: Callable[[T], dns.name.Name],
    *, any_type_ends: bool = False,
) -> Chain[T]:
    """Walk from `name`: data of `rdtype` there ends the chain; otherwise the deepest DNAME
    strictly above the name rewrites it, or else its CNAME (unless CNAME is asked) leads on.
    With `any_type_ends`, a question of type ANY ends at any RRset of the name. A CNAME that
    ends the chain (CNAME or ANY asked) below a DNAME is the one synthesised from it (RFC 6672
    §3.2): the DNAME is then the chain's last step, with that CNAME as its `synthesized`. A
    name seen twice is a loop; a DNAME substitution longer than 255 octets ends the chain."""
    steps: list[ChainStep[T]] = []
    seen: set[dns.name.Name] = set()
    while name not in seen:
        seen.add(name)
        final = next((i for i in items if i.name == name and (
            i.rdtype == rdtype or (any_type_ends and rdtype == RdataType.ANY))), None)
        dname = max((i for i in items if i.rdtype == RdataType.DNAME and name.is_subdomain(i.name)
                     and name != i.name), key=lambda i: len(i.name), default=None)
        if final is not None:
            if dname is not None and final.rdtype == RdataType.CNAME:
                steps.append(ChainStep("dname", dname, final))
            return Chain(tuple(steps), name, final, "answer")
        cname = next((i for i in items if i.name == name and i.rdtype == RdataType.CNAME), None)
        if dname is not None:
            steps.append(ChainStep("dname", dname, cname))
            try:
                name = name.relativize(dname.name).derelativize(target(dname))
            except dns.name.NameTooLong:
                return Chain(tuple(steps), name, None, "too-long")
        elif cname is not None and rdtype != RdataType.CNAME:
            steps.append(ChainStep("cname", cname))
            name = target(cname)
        else:
            return Chain(tuple(steps), name, None, "open")
    return Chain(tuple(steps), name, None, "loop")


def answered(chain: Chain[T], items: Sequence[T], rdtype: int) -> list[T]:
    """The data `chain` (of `follow(items, …, rdtype, any_type_ends=True)`) ends at: its final
    item, or for a question of type ANY every item at the name it ends at; [] when it ends at
    no data."""
    if chain.final is None:
        return []
    if rdtype == RdataType.ANY:
        return [i for i in items if i.name == chain.end]
    return [chain.final]


def needs_signature(chain: Chain[T], items: Sequence[T]) -> list[T]:
    """`items` less the CNAMEs `chain`'s DNAME steps synthesised: what must carry a signature
    of its own (a synthesised CNAME is proven by its DNAME instead, RFC 6672 §5.3)."""
    made = [s.synthesized for s in chain.steps if s.synthesized is not None]
    return [i for i in items if not any(i is m for m in made)]

