"""`sigchain check` as a service: the five-point verify checklist for one zone — the zone
verifies, the chain validates, the DS at every parent server matches a live KSK, each resolver
validates, each resolver refuses a known-broken name."""

from __future__ import annotations

from collections.abc import Sequence

import dns.exception
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.zone

from sigchain.core.diagnose.checklist import Row, ds_row
from sigchain.core.resolve.exchange import Gathered, Query
from sigchain.core.validate.anchors import Server
from sigchain.core.validate.validator import Question
from sigchain.core.zone import wire
from sigchain.edge import transport, zonefile
from sigchain.errors import SigchainError
from sigchain.findings import Severity
from sigchain.services import trace as tracing
from sigchain.services.diagnose import ask_resolver
from sigchain.services.verifying import verify_wire

XFR_TIMEOUT = 10.0


def zone_servers(traced: tracing.TraceResult, zone: dns.name.Name, rdtype: int) -> tuple[Server, ...]:
    """The servers the trace asked for `zone`'s own records (rdtype DS: the parent's)."""
    for ex in traced.outcome.exchanges:
        q = ex.query
        if q.qname == zone and q.rdtype == rdtype and (rdtype == dns.rdatatype.DS or q.zone == zone):
            return q.servers
    return ()


def axfr(zone: dns.name.Name, servers: Sequence[Server]) -> tuple[zonefile.WireZone | None, str]:
    """The zone by AXFR from the first of its servers that allows it (or why none did)."""
    errors = []
    for s in servers:
        z = dns.zone.Zone(zone)
        try:
            dns.query.inbound_xfr(s.host, z, port=s.port, timeout=XFR_TIMEOUT, lifetime=XFR_TIMEOUT)
        except (OSError, EOFError, dns.exception.DNSException) as exc:
            errors.append(f"{s}: {str(exc) or type(exc).__name__}")
            continue
        return zonefile.WireZone(zone, wire.from_nodes(z.nodes), f"AXFR from {s}"), ""
    return None, "; ".join(errors) or "no server of the zone known"


def verify_row(zone: dns.name.Name, traced: tracing.TraceResult, zone_file: str | None,
               now: int) -> Row:
    title = "the zone verifies"
    if zone_file is not None:
        loaded = zonefile.load_wire(zone_file, zone.to_text(), require_ns=False)
    else:
        got, why = axfr(zone, zone_servers(traced, zone, dns.rdatatype.SOA))
        if got is None:
            return Row(1, title, False, f"AXFR failed ({why}): give --zone-file")
        loaded = got
    report = verify_wire(loaded, now)
    errors = [f for f in report.findings if f.severity is Severity.ERROR]
    where = loaded.path
    if errors:
        first = errors[0]
        return Row(1, title, False, f"{where}: {len(errors)} error(s), first {first.code} "
                   f"{first.name or ''}: {first.message}")
    return Row(1, title, True, f"{where}: {report.signatures_checked} signatures checked, "
               f"{report.signatures_valid} valid, denial {report.denial}")


def parent_ds(zone: dns.name.Name, servers: Sequence[Server]) -> dict[str, Sequence[object] | str]:
    out: dict[str, Sequence[object] | str] = {}
    for s in servers:
        q = Query(zone, dns.rdatatype.DS, (s,))  # iterative: the parent's own data
        try:
            reply = transport.ask(s, q.message()).message
        except (OSError, EOFError, dns.exception.DNSException) as exc:
            out[str(s)] = str(exc) or type(exc).__name__
            continue
        if reply.rcode() != dns.rcode.NOERROR:
            out[str(s)] = dns.rcode.to_text(reply.rcode())
            continue
        out[str(s)] = [rd for r in reply.answer if r.name == zone and r.rdtype == dns.rdatatype.DS
                       for rd in r]
    return out


def resolver_rows(zone: dns.name.Name, resolvers: Sequence[Server],
                  broken: dns.name.Name) -> list[Row]:
    ad, refuse = [], []
    for r in resolvers:
        a = ask_resolver(r, Question(zone, dns.rdatatype.SOA), False, transport.SERVER_TIMEOUT)
        s = a.summary
        ad.append((s is not None and s.ad and s.rcode == dns.rcode.NOERROR,
                   f"{r}: " + (a.lines()[0] if s else f"no reply ({a.error})")))
        b = ask_resolver(r, Question(broken, dns.rdatatype.A), False, transport.SERVER_TIMEOUT)
        t = b.summary
        refuse.append((t is not None and t.servfail,
                       f"{r}: " + (b.lines()[0] if t else f"no reply ({b.error})")))
    return [Row(4, f"each resolver validates (AD on {zone} SOA)", bool(ad) and all(ok for ok, _ in ad),
                "; ".join(d for _, d in ad) or "no resolver given"),
            Row(5, f"each resolver refuses the broken {broken} (SERVFAIL)",
                bool(refuse) and all(ok for ok, _ in refuse),
                "; ".join(d for _, d in refuse) or "no resolver given")]


def check(zone: dns.name.Name, anchors: Sequence[dns.rrset.RRset], now: int, *,
          root_hints: Sequence[Server] | None, resolvers: Sequence[Server],
          broken: dns.name.Name, zone_file: str | None = None,
          budget: float = transport.DEFAULT_BUDGET) -> list[Row]:
    """The five rows, in order; each is judged on its own (one failing hides no other)."""
    traced = tracing.trace(Question(zone, dns.rdatatype.SOA), anchors, now,
                           root_hints=root_hints, budget=budget)
    try:
        row1 = verify_row(zone, traced, zone_file, now)
    except SigchainError as exc:
        row1 = Row(1, "the zone verifies", False, str(exc))
    row2 = Row(2, "the chain validates from the anchor", traced.status == "secure",
               traced.verdict_line)
    dnskey: list[dns.rrset.RRset] = []
    if isinstance(traced.outcome, Gathered):
        dnskey = [r for c in traced.outcome.evidence.zones if c.name == zone for r in c.dnskey]
    row3 = ds_row(zone, parent_ds(zone, zone_servers(traced, zone, dns.rdatatype.DS)), dnskey)
    return [row1, row2, row3, *resolver_rows(zone, resolvers, broken)]
