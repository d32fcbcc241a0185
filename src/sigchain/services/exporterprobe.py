"""One probe round of one zone over the network: find its servers, ask each for the apex
SOA/DNSKEY/NS (or the whole zone by AXFR), the parents for the DS, the resolvers for AD (on
the SOA and on the zone's large answers).
The judging is `core.probe.zone`; this module only sends the queries."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.xfr
from dns.rdatatype import RdataType

from sigchain.clock import SYSTEM, Clock
from sigchain.core.probe import zone as judge
from sigchain.core.probe.zone import DsProbe, ResolverProbe, ServerProbe, ZoneSnapshot
from sigchain.core.resolve.exchange import Query
from sigchain.core.validate.anchors import Server, ipv4_first
from sigchain.core.validate.validator import Question
from sigchain.edge import transport
from sigchain.services import trace as tracing
from sigchain.services.exporterconfig import ZoneTarget

APEX_TYPES = (RdataType.SOA, RdataType.DNSKEY, RdataType.NS)
NETWORK_ERRORS = (OSError, EOFError, ValueError, dns.exception.DNSException)


class ProbeFailed(Exception):
    """A server did not give a usable answer; the message says why."""


def _query(server: Server, qname: dns.name.Name, rdtype: int, timeout: float,
           rd: bool = False, what: str = "") -> dns.message.Message:
    msg = Query(qname, rdtype, (server,), rd=rd).message()
    try:
        return transport.ask(server, msg, timeout).message
    except NETWORK_ERRORS as exc:
        what = what or f"{qname} {dns.rdatatype.to_text(rdtype)}"
        raise ProbeFailed(f"{what}: {transport.describe(exc)}") from None


def _axfr(zone: dns.name.Name, server: Server, timeout: float) -> list[dns.rrset.RRset]:
    rrsets: list[dns.rrset.RRset] = []
    try:
        for msg in dns.query.xfr(server.host, zone, port=server.port, timeout=timeout,
                                 lifetime=timeout * 10, relativize=False):
            if msg.rcode() != 0:
                raise ProbeFailed(f"{zone} AXFR: {dns.rcode.to_text(msg.rcode())}")
            rrsets.extend(msg.answer)
    except dns.xfr.TransferError as exc:
        raise ProbeFailed(f"{zone} AXFR: {dns.rcode.to_text(exc.rcode)}") from None
    except NETWORK_ERRORS as exc:
        raise ProbeFailed(f"{zone} AXFR: {transport.describe(exc)}") from None
    return rrsets


def probe_server(target: ZoneTarget, server: Server, timeout: float,
                 clock: Clock = SYSTEM) -> tuple[ServerProbe, list[dns.rrset.RRset]]:
    """The server's answers for the apex (and the zone by AXFR when asked); also the DNSKEY
    answer, for the DS comparison."""
    start = clock.monotonic()
    zone = target.zone
    dnskey: list[dns.rrset.RRset] = []
    try:
        answers: list[dns.rrset.RRset] = []
        for rdtype in APEX_TYPES:
            rrsets, error = judge.authoritative_answer(_query(server, zone, rdtype, timeout),
                                                       zone, rdtype)
            if error:
                raise ProbeFailed(error)
            answers += rrsets
            if rdtype == RdataType.DNSKEY:
                dnskey = rrsets
        serial = judge.soa_serial(answers)
        if target.axfr:
            answers += _axfr(zone, server, timeout)
    except ProbeFailed as exc:
        return ServerProbe(zone.to_text(), str(server), False, clock.monotonic() - start,
                           str(exc)), []
    return ServerProbe(zone.to_text(), str(server), True, clock.monotonic() - start, "", serial,
                       judge.signature_times(answers)), dnskey


def find_servers(target: ZoneTarget, timeout: float) -> tuple[tuple[Server, ...], str]:
    """The zone's servers: the listed ones, plus (find-servers) the addresses of its NS names,
    from the first listed server's NS RRset (addresses from the zone itself, port kept), or
    from a parent server's referral and glue. Also a note when finding failed."""
    found: list[Server] = list(target.servers)
    if not target.find_servers:
        return tuple(found), ""
    via = target.servers[:1] or target.parent_servers
    notes = []
    for server in via:
        try:
            found += _ns_addresses(target.zone, server, timeout, parent=not target.servers)
            break
        except ProbeFailed as exc:
            notes.append(f"finding servers at {server}: {exc}")
    return ipv4_first(found), "; ".join(notes)


def _ns_addresses(zone: dns.name.Name, server: Server, timeout: float,
                  parent: bool) -> list[Server]:
    reply = _query(server, zone, RdataType.NS, timeout)
    section = reply.authority if parent else reply.answer
    names = [rd.target for r in section if r.rdtype == RdataType.NS and r.name == zone
             for rd in r]  # type: ignore[attr-defined]
    if not names:
        raise ProbeFailed(f"{zone} NS: none in the {'referral' if parent else 'answer'}")
    out: list[Server] = []
    for name in names:
        glue = [rd.address for r in reply.additional if r.name == name
                and r.rdtype in (RdataType.A, RdataType.AAAA) for rd in r]  # type: ignore[attr-defined]
        if not glue and name.is_subdomain(zone) and not parent:
            for rdtype in (RdataType.A, RdataType.AAAA):
                ans = _query(server, name, rdtype, timeout)
                glue += [rd.address for r in ans.answer if r.rdtype == rdtype for rd in r]  # type: ignore[attr-defined]
        out += [Server(a, server.port) for a in glue]
    return out


def probe_ds(target: ZoneTarget, parent: Server, dnskey: list[dns.rrset.RRset],
             timeout: float, clock: Clock = SYSTEM) -> DsProbe:
    start = clock.monotonic()
    zone = target.zone
    try:
        ds, error = judge.ds_rrset(_query(parent, zone, RdataType.DS, timeout), zone)
    except ProbeFailed as exc:
        ds, error = None, str(exc)
    took = clock.monotonic() - start
    if error:
        return DsProbe(zone.to_text(), str(parent), False, took, error)
    # with no DNSKEY answer (every server down or refusing) there is nothing to compare the
    # DS with: no match is said, rather than a mismatch an outage would raise as a DS drift
    return DsProbe(zone.to_text(), str(parent), True, took, "", len(ds) if ds else 0,
                   judge.ds_match(zone, ds, dnskey) if dnskey else None)


def probe_resolver(target: ZoneTarget, resolver: Server, timeout: float,
                   anchors: Sequence[dns.rrset.RRset] = (), clock: Clock = SYSTEM,
                   ) -> ResolverProbe:
    """AD on the zone's SOA, and on its large answers; with anchors, also sigchain's own
    validation of the SOA from the anchors through the resolver with CD=1 (as `sigchain
    trace @resolver`)."""
    start = clock.monotonic()
    try:
        reply = _query(resolver, target.zone, RdataType.SOA, timeout, rd=True)
    except ProbeFailed as exc:
        return ResolverProbe(target.zone.to_text(), str(resolver), False,
                             clock.monotonic() - start, str(exc))
    validates, why = judge.resolver_validates(reply)
    large = large_answers(target.zone, resolver, timeout)
    chain = None
    if anchors:
        traced = tracing.trace(Question(target.zone, RdataType.SOA), anchors, clock.now(),
                               server=resolver, cd=True, budget=timeout * 5,
                               server_timeout=timeout)
        chain = None if traced.status == "unreachable" else traced.status == "secure"
    return ResolverProbe(target.zone.to_text(), str(resolver), True, clock.monotonic() - start,
                         why, validates, chain, not large, large)


def large_answers(zone: dns.name.Name, resolver: Server, timeout: float) -> str:
    """Why the resolver does not give the zone's large answers whole and validated ("" when
    it does): the DNSKEY RRset with its RRSIGs (big with RSA keys or mid-rollover) and the
    denial of a made-up name with its NSEC/NSEC3 proofs — a new name each round, so that the
    answer crosses the resolver's path to the zone rather than coming from its cache. A
    middlebox that cuts UDP answers at 512 bytes, or drops fragments, loses these first."""
    absent = dns.name.Name((f"sigchain-probe-{secrets.token_hex(4)}".encode(),)) + zone
    for qname, rdtype, what in ((zone, RdataType.DNSKEY, "DNSKEY"),
                                (absent, RdataType.A, "denial of a made-up name")):
        try:
            reply = _query(resolver, qname, rdtype, timeout, rd=True, what=what)
        except ProbeFailed as exc:
            return str(exc)
        if why := judge.large_answer(reply, rdtype):
            return f"{what}: {why}"
    return ""


def probe_zone(target: ZoneTarget, timeout: float, clock: Clock = SYSTEM,
               anchors: Sequence[dns.rrset.RRset] = ()) -> ZoneSnapshot:
    """One round: every server of the zone, then the DS at each parent server (against the
    first DNSKEY answer got), then each resolver."""
    servers, note = find_servers(target, timeout)
    results = []
    dnskey: list[dns.rrset.RRset] = []
    for server in servers:
        result, keys = probe_server(target, server, timeout, clock)
        results.append(result)
        dnskey = dnskey or keys
    if not servers:
        results.append(ServerProbe(target.zone.to_text(), "-", False, 0.0, note or "no server"))
    ds = tuple(probe_ds(target, p, dnskey, timeout, clock) for p in target.parent_servers)
    res = tuple(probe_resolver(target, r, timeout, anchors, clock) for r in target.resolvers)
    return ZoneSnapshot(target.zone.to_text(), clock.now(), tuple(results), ds, res)
