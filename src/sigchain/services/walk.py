"""`sigchain walk` over the network: drive the NSEC walk, or collect the NSEC3 chain with
queries for chosen made-up names, against one server; recover NSEC3 names from a wordlist.
The logic is `core.walk`; this module sends the queries."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import dns.exception
import dns.message
import dns.name
import dns.rdatatype
from dns.rdatatype import RdataType

from sigchain.core.resolve.exchange import Query
from sigchain.core.validate.anchors import Server
from sigchain.core.walk.nsec import NsecWalk
from sigchain.core.walk.nsec3 import Nsec3Chain, recover
from sigchain.edge import transport
from sigchain.errors import OperationalError

TRIES = 3  # per query: a lost datagram should not end a walk
MAX_IDLE = 20  # NSEC3 replies in a row that bring nothing new


@dataclass
class WalkResult:
    zone: dns.name.Name
    server: Server
    denial: str  # nsec | nsec3
    queries: int
    complete: bool
    problem: str = ""
    white_lies: bool = False
    names: dict[dns.name.Name, list[str]] = field(default_factory=dict)  # NSEC walk
    chain: Nsec3Chain | None = None
    recovered: dict[bytes, dns.name.Name] = field(default_factory=dict)


def _ask(server: Server, qname: dns.name.Name, rdtype: int, timeout: float) -> dns.message.Message:
    message = Query(qname, rdtype, (server,)).message()
    why = ""
    for _ in range(TRIES):
        try:
            return transport.ask(server, message, timeout).message
        except (OSError, EOFError, ValueError, dns.exception.DNSException) as exc:
            why = transport.describe(exc)
            if isinstance(exc, ConnectionRefusedError):
                break
    raise OperationalError(f"{server}: {qname} {dns.rdatatype.to_text(rdtype)}: {why}")


def walk(zone: dns.name.Name, server: Server, words: list[dns.name.Name] | None, *,
         timeout: float = transport.SERVER_TIMEOUT, max_queries: int = 10000,
         rng: random.Random | None = None) -> WalkResult:
    """Enumerate `zone` at `server`: every name of an NSEC chain; for NSEC3 the hashed chain,
    and the names the wordlist recovers."""
    nsec = NsecWalk(zone, max_queries)
    question = nsec.next_query()
    assert question is not None
    first = _ask(server, *question, timeout)
    if any(r.rdtype == RdataType.NSEC3 for r in (*first.answer, *first.authority)):
        return _nsec3(zone, server, first, words or [], timeout, max_queries,
                      rng or random.Random())
    nsec.result(first)
    while (question := nsec.next_query()) is not None:
        try:
            reply = _ask(server, *question, timeout)
        except OperationalError as exc:
            nsec.done, nsec.problem = True, str(exc)
            break
        nsec.result(reply)
    return WalkResult(zone, server, "nsec", nsec.queries, nsec.complete, nsec.problem,
                      nsec.white_lies, nsec.names)


def _nsec3(zone: dns.name.Name, server: Server, first: dns.message.Message,
           words: list[dns.name.Name], timeout: float, max_queries: int,
           rng: random.Random) -> WalkResult:
    chain = Nsec3Chain(zone)
    chain.add_reply(first)
    queries, idle, problem = 1, 0, ""
    while not chain.closed:
        if queries >= max_queries:
            problem = f"chain not closed after {queries} queries (--max-queries)"
            break
        if idle >= MAX_IDLE:
            problem = f"{idle} replies in a row brought no new NSEC3 record"
            break
        name = chain.pick(rng)
        if name is None:
            problem = "no made-up name hashed into the unknown part of the chain"
            break
        try:
            reply = _ask(server, name, RdataType.A, timeout)
        except OperationalError as exc:
            problem = str(exc)
            break
        queries += 1
        idle = 0 if chain.add_reply(reply) else idle + 1
    problem = problem or chain.problem
    return WalkResult(zone, server, "nsec3", queries, chain.closed and not problem, problem,
                      chain=chain, recovered=recover(chain, words) if chain.params else {})
