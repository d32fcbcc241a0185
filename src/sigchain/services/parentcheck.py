"""`sigchain keys checkds`: find a zone's parent servers, ask every one over TCP for the zone's
DS RRset, validate each answer from the trust anchor, judge whether they agree, and record in
the key state what every server shows (the observations the rollover planner waits for)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
from dns.rdatatype import RdataType

from sigchain.clock import SYSTEM, Clock
from sigchain.core.parent.agreement import (
    Agreement,
    Changes,
    ServerDs,
    ZoneKey,
    judge,
    observations,
)
from sigchain.core.resolve.exchange import Failed, Query, Reply, ResolutionLimits
from sigchain.core.resolve.resolution import Resolution
from sigchain.core.validate.anchors import Server
from sigchain.core.validate.validator import Evidence, Question, Status, ZoneCut, validate
from sigchain.edge import transport
from sigchain.errors import OperationalError
from sigchain.services import keymanager, keystate

TIMEOUT = 5.0  # seconds per server and query
BUDGET = 60.0  # seconds for finding the parent and its chain
MAX_PARENT_NS = 16  # the parent's name servers (without glue) whose addresses are looked up


def ask_tcp(server: Server, qname: dns.name.Name, rdtype: int,
            timeout: float = TIMEOUT) -> dns.message.Message:
    """One query over TCP (DO=1, as the resolver asks); OSError/DNSException when it fails."""
    message = Query(qname, rdtype, (server,)).message()
    return dns.query.tcp(message, server.host, port=server.port, timeout=timeout)


def _drive(res: Resolution, clock: Clock, budget: float = BUDGET) -> object:
    """Run a resolution over TCP only (what a parent check asks for), within `budget`."""
    deadline = clock.monotonic() + budget
    while (q := res.next_query()) is not None:
        if clock.monotonic() >= deadline:
            res.give_up(f"time budget of {budget:g} s spent")
            break
        reply, errors = None, []
        for s in q.servers:
            try:
                m = ask_tcp(s, q.qname, q.rdtype)
            except (OSError, EOFError, dns.exception.DNSException) as exc:
                errors.append(f"{s}: {transport.describe(exc)}")
                continue
            reply = Reply(s, m, True, len(m.to_wire()))
            break
        res.result(reply, "; ".join(errors))
    return res.outcome


@dataclass(frozen=True)
class Parent:
    zone: dns.name.Name  # the parent zone
    servers: tuple[Server, ...]  # every one of its servers to ask
    chain: tuple[ZoneCut, ...]  # trust anchor down to the parent: DS and DNSKEY links


def find_parent(zone: dns.name.Name, anchors: Sequence[dns.rrset.RRset], *,
                servers: Sequence[Server] = (), hints: Sequence[Server] = (),
                clock: Clock = SYSTEM) -> Parent:
    """The parent zone, its servers and the chain of trust down to it: through the listed
    servers (with a trust anchor for the parent or above it that they serve), or iteratively
    from root hints (the parent's servers are then those the referral to the zone names)."""
    names = {r.name for r in anchors}
    question = Question(zone, RdataType.DS)
    tried = []
    for via in servers or [None]:
        if via is None:
            # every parent server is asked for the DS: all their addresses, glue or not
            res = Resolution(question, names, hints=hints, every_server=True,
                             limits=ResolutionLimits(max_ns_names=MAX_PARENT_NS))
        else:
            res = Resolution(question, names, server=via, cd=True)
        outcome = _drive(res, clock)
        if isinstance(outcome, Failed):
            tried.append(f"{via}: {outcome.reason}" if via else outcome.reason)
            continue
        cuts = tuple(c for c in outcome.evidence.zones  # type: ignore[attr-defined]
                     if zone.is_subdomain(c.name) and c.name != zone)
        if not cuts:
            tried.append(f"{via or 'root hints'}: no zone above {zone} under the trust anchor")
            continue
        parent = max((c.name for c in cuts), key=len)
        if via is None:
            found = [z for z in res.zones if zone.is_subdomain(z) and z != zone]
            parent = max(found, key=len)
            return Parent(parent, tuple(res.zones[parent].servers), cuts)
        return Parent(parent, tuple(servers), cuts)
    raise OperationalError(f"cannot find the parent of {zone}: " + "; ".join(tried))


def server_ds(zone: dns.name.Name, server: Server, parent: Parent,
              anchors: Sequence[dns.rrset.RRset], now: int) -> ServerDs:
    """One parent server's DS RRset for the zone over TCP, validated through the chain."""
    try:
        m = ask_tcp(server, zone, RdataType.DS)
    except (OSError, EOFError, dns.exception.DNSException) as exc:
        return ServerDs(str(server), None, transport.describe(exc))
    if m.rcode() != dns.rcode.NOERROR:
        return ServerDs(str(server), None, f"{dns.rcode.to_text(m.rcode())}")
    if not m.flags & dns.flags.AA:
        return ServerDs(str(server), None, f"not authoritative for {parent.zone}")
    evidence = Evidence(Question(zone, RdataType.DS), m.rcode(), tuple(m.answer),
                        tuple(m.authority), parent.chain)
    verdict = validate(evidence, anchors, now)
    if verdict.status is not Status.SECURE:
        first = next((f for f in verdict.findings if f.severity.value == "error"), None)
        why = f": {first.code} ({first.message})" if first else ""
        return ServerDs(str(server), None, f"DS answer is {verdict.status.value}{why}")
    rds = tuple(rd for r in m.answer if r.name == zone and r.rdtype == RdataType.DS
                for rd in r)
    return ServerDs(str(server), rds)  # type: ignore[arg-type]


def zone_keys(directory: str, state: keystate.ZoneState) -> list[ZoneKey]:
    """The zone's keys whose DS the parent may hold (KSK/CSK still in the key directory)."""
    return [ZoneKey(sk.key.id, sk.tag, dnskey, sk.key.ds_published,  # type: ignore[arg-type]
                    sk.key.cds_withdrawn, sk.key.ds_withdrawn, sk.key.cds_published)
            for sk, dnskey in keymanager.ds_keys(directory, state)]


@dataclass(frozen=True)
class CheckResult:
    agreement: Agreement
    parent: Parent
    changes: Changes
    since: dict[str, int]  # key id → since when its DS is at every server (as stored)


def check(zone: dns.name.Name, directory: str, now: int, anchors: Sequence[dns.rrset.RRset], *,
          servers: Sequence[Server] = (), hints: Sequence[Server] = (), record: bool = True,
          clock: Clock = SYSTEM) -> CheckResult:
    """Ask every parent server, judge, and (with `record`) store the observations."""
    state, _ = keymanager.stored_zone(zone, directory)
    keys = zone_keys(directory, state)
    parent = find_parent(zone, anchors, servers=servers, hints=hints, clock=clock)
    views = [server_ds(zone, s, parent, anchors, now) for s in parent.servers]
    agreement = judge(zone, views, keys)
    changes = observations(agreement, state.observations, now)
    if record and (changes.record or changes.forget):
        with keystate.locked(directory, clock):
            for ob in changes.record:
                keystate.observe(directory, zone.to_text(), ob)
            for key_id, kind in changes.forget:
                keystate.forget(directory, zone.to_text(), key_id, kind)
    since = {o.key: o.since for o in state.observations if o.kind == "ds-published"}
    since |= {o.key: o.since for o in changes.record if o.kind == "ds-published"}
    for key_id, kind in changes.forget:
        if kind == "ds-published":
            since.pop(key_id, None)
    for k in keys:
        if k.ds_published is not None:
            since.setdefault(k.id, k.ds_published)
    return CheckResult(agreement, parent, changes, since)
