"""The shape of an answer: the CNAME/DNAME chain from the question, followed by names only, and
whether it ends in an answer, a referral or a denial (RFC 6672 for DNAME)."""

from __future__ import annotations

from collections.abc import Sequence

import dns.name
import dns.rcode
import dns.rdatatype
from dns.rdatatype import RdataType

from sigchain.core.validate.signatures import Signed, finding, pair
from sigchain.core.validate.verdict import Evidence, Kind
from sigchain.core.zone.chain import answered, follow, needs_signature
from sigchain.findings import Finding

Step = tuple[str, Signed, Signed | None]  # ("answer" | "cname" | "dname", RRset, synthesised CNAME)


def shape(ev: Evidence, authority: Sequence[Signed]) -> tuple[list[Step], dns.name.Name, Kind]:
    """Follow the CNAME/DNAME chain from the question by names only (no crypto yet): the steps,
    the name the chain ends at, and what the response says about it."""
    q = ev.question
    signed = pair(ev.answer)
    chain = follow(signed, q.name, q.rdtype, lambda s: s.rrset[0].target,  # type: ignore[attr-defined]
                   any_type_ends=True)
    steps: list[Step] = [(step.kind, step.item, step.synthesized) for step in chain.steps]
    name = chain.end
    final = answered(chain, signed, q.rdtype)  # for ANY, each RRset at the name must verify
    if final:
        steps.extend(("answer", s, None) for s in needs_signature(chain, final))
        return steps, name, Kind.ANSWER
    if ev.rcode == dns.rcode.NXDOMAIN:
        return steps, name, Kind.NXDOMAIN
    if delegation_above(authority, name) is not None:
        return steps, name, Kind.REFERRAL
    return steps, name, Kind.NODATA


def delegation_above(authority: Sequence[Signed], name: dns.name.Name) -> Signed | None:
    """A referral: NS at or above `name` in the authority section and no SOA."""
    if any(s.rdtype == RdataType.SOA for s in authority):
        return None
    cuts = [s for s in authority if s.rdtype == RdataType.NS and name.is_subdomain(s.name)]
    return max(cuts, key=lambda s: len(s.name), default=None)


def dname_synthesis(dname: Signed, cname: Signed | None) -> Finding | None:
    """The CNAME a server synthesises from a DNAME is unsigned; it must be the substitution
    the validated DNAME dictates (RFC 6672 §2.2, §5.3)."""
    if cname is None:
        return None  # the validator follows the DNAME itself
    expected = cname.name.relativize(dname.name).derelativize(dname.rrset[0].target)  # type: ignore[attr-defined]
    if cname.rrset[0].target != expected:  # type: ignore[attr-defined]
        return finding("DNAME_SYNTHESIS_WRONG", {
            "cname": cname.name.to_text(), "target": cname.rrset[0].target.to_text(),  # type: ignore[attr-defined]
            "dname": dname.name.to_text(), "expected": expected.to_text()},
            cname.name, RdataType.CNAME)
    return None

