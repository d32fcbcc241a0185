"""What the answer and authority sections of upstream replies say for a question (pure): the
signers and SOA owners they name, where a CNAME/DNAME chain leads on, what a zone's servers
may say at all (the scrubber), the chain's own RRsets, and RRsets of several replies merged."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence

import dns.message
import dns.name
import dns.rcode
import dns.rrset
from dns.rdatatype import RdataType

from sigchain.core.resolve.exchange import rcode_of
from sigchain.core.zone.chain import answered, follow


def signers(rrsets: Iterable[dns.rrset.RRset]) -> set[dns.name.Name]:
    return {rd.signer for r in rrsets if r.rdtype == RdataType.RRSIG for rd in r}  # type: ignore[attr-defined]


def soa_owners(rrsets: Iterable[dns.rrset.RRset]) -> set[dns.name.Name]:
    return {r.name for r in rrsets if r.rdtype == RdataType.SOA}


class ChainLoop(ValueError):
    """An alias chain that comes back to a name it passed (RFC 1034 §5.2.2: "Alias loops …
    should be caught and an error condition passed back to the client")."""


def chain_target(message: dns.message.Message, name: dns.name.Name, rdtype: int) -> dns.name.Name | None:
    """Where the CNAME/DNAME chain in `message`'s answer leads from `name`, when the response
    does not itself finish it (no data of `rdtype` at the end and no negative answer that
    covers the end); None when the response is complete. Raises ChainLoop for a chain that
    loops within the response: no answer to give, signed or not, CD or not."""
    chain = follow(message.answer, name, rdtype, lambda r: r[0].target, any_type_ends=True)  # type: ignore[attr-defined]
    if chain.stop == "loop":
        raise ChainLoop(f"CNAME/DNAME loop: {name} leads back to {chain.end}")
    if chain.stop != "open":
        return None  # complete, or an overlong name: the validator sees what there is
    n = chain.end
    if n == name or rcode_of(message) == dns.rcode.NXDOMAIN:
        return None
    if any(n.is_subdomain(owner) for owner in soa_owners(message.authority)):
        return None
    return n


def in_zone(message: dns.message.Message, zone: dns.name.Name, name: dns.name.Name,
            rdtype: int) -> dns.message.Message:
    """What an answer from `zone`'s servers (asked for `name`) may tell: RRsets owned at or
    below `zone` (RFC 2181 §5.4.1, RFC 5452 §6; Unbound's scrubber). A CNAME/DNAME chain
    that leaves the zone is believed as far as the zone goes, and the target is then asked
    of its own servers; an NXDOMAIN past that point is not believed either (NOERROR: the
    chain goes on). `message` is left alone (a cached reply may be shared): a copy is made
    only when something goes."""
    answer = [r for r in message.answer if r.name.is_subdomain(zone)]
    authority = [r for r in message.authority if r.name.is_subdomain(zone)]
    nxdomain = rcode_of(message) == dns.rcode.NXDOMAIN and any(
        r.rdtype in (RdataType.CNAME, RdataType.DNAME) for r in answer)
    if nxdomain:  # about the chain's end only when that end is in the zone
        end = follow(answer, name, rdtype, lambda r: r[0].target, any_type_ends=True).end  # type: ignore[attr-defined]
        nxdomain = not end.is_subdomain(zone)
    if len(answer) == len(message.answer) and len(authority) == len(message.authority) and not nxdomain:
        return message
    kept = copy.copy(message)
    kept.sections = [message.question, answer, authority, message.additional]
    kept.index = None
    if nxdomain:
        kept.set_rcode(dns.rcode.NOERROR)
    return kept


def on_chain(answer: Sequence[dns.rrset.RRset], name: dns.name.Name,
             rdtype: int) -> list[dns.rrset.RRset]:
    """The answer RRsets on the CNAME/DNAME chain from (name, rdtype) — its CNAMEs and DNAMEs,
    the data it ends at (for ANY, every RRset there) — and their RRSIGs. Whatever else a
    server put in the answer section is dropped (as Unbound's scrubber does): the validator
    checks only the chain, so anything beside it would reach the client unchecked, with AD."""
    data = [r for r in answer if r.rdtype != RdataType.RRSIG]
    chain = follow(data, name, rdtype, lambda r: r[0].target, any_type_ends=True)  # type: ignore[attr-defined]
    keep = {(s.item.name, s.item.rdtype) for s in chain.steps}
    keep |= {(s.synthesized.name, s.synthesized.rdtype) for s in chain.steps if s.synthesized}
    keep |= {(r.name, r.rdtype) for r in answered(chain, data, rdtype)}
    if rdtype == RdataType.RRSIG:  # the records asked for, whatever they cover
        return [r for r in answer if (r.name, r.rdtype) in keep
                or (r.rdtype == RdataType.RRSIG and r.name == chain.end)]
    return [r for r in answer
            if (r.name, r.covers if r.rdtype == RdataType.RRSIG else r.rdtype) in keep]


def merge(rrsets: Iterable[dns.rrset.RRset]) -> list[dns.rrset.RRset]:
    """RRsets from several responses, each (owner, type, covered) once, first seen first. One
    met once is the response's own object (nothing changes the RRsets of a response, the
    evidence or the cache: TTLs are counted down on copies); one met again becomes a copy
    that takes in the others' records, so no response's RRset is changed."""
    out: dict[tuple[dns.name.Name, int, int], dns.rrset.RRset] = {}
    copied: set[tuple[dns.name.Name, int, int]] = set()
    for r in rrsets:
        key = (r.name, r.rdtype, r.covers)
        first = out.get(key)
        if first is None:
            out[key] = r
            continue
        if key not in copied:
            first = out[key] = first.copy()  # the rdata as they are: no re-hashing
            copied.add(key)
        first.union_update(r)
    return list(out.values())
