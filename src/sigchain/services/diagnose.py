"""`sigchain diagnose` as a service: ask the resolver with and without CD, trace the chain from
the authoritative servers, and hand both to the pure classifier (`core.diagnose.classify`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import dns.dnssec
import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset

from sigchain.core.diagnose import svg
from sigchain.core.diagnose.classify import (
    CLASSIC_UDP,
    Diagnosis,
    Observations,
    ResolverAnswer,
    classify,
    largest_own_reply,
)
from sigchain.core.resolve.exchange import Gathered, Query
from sigchain.core.validate.anchors import Server, parse_server
from sigchain.core.validate.validator import Question
from sigchain.edge import transport
from sigchain.errors import InputError
from sigchain.services import trace as tracing

RESOLV_CONF = "/etc/resolv.conf"


@dataclass(frozen=True)
class Asked:
    """One question to the resolver: the reply (None when none came) and what went wrong."""

    reply: dns.message.Message | None
    error: str = ""
    udp_large_lost: bool = False

    @property
    def summary(self) -> ResolverAnswer | None:
        return None if self.reply is None else summarise(self.reply)

    def lines(self) -> list[str]:
        if self.reply is None:
            return [f"no reply: {self.error}"]
        r = self.reply
        flags = dns.flags.to_text(r.flags).lower()
        head = [f"{dns.rcode.to_text(r.rcode())}, flags {flags}"]
        return head + [line for rrset in r.answer for line in rrset.to_text().splitlines()]


def summarise(reply: dns.message.Message) -> ResolverAnswer:
    types = [dns.rdatatype.to_text(r.rdtype) for r in reply.answer if r.rdtype != dns.rdatatype.RRSIG]
    signed = [dns.rdatatype.to_text(r.covers) for r in reply.answer if r.rdtype == dns.rdatatype.RRSIG]
    ede = tuple(o.code for o in reply.options if isinstance(o, dns.edns.EDEOption))
    return ResolverAnswer(reply.rcode(), bool(reply.flags & dns.flags.AD), tuple(types),
                          tuple(signed), ede)


def ask_resolver(server: Server, question: Question, cd: bool, timeout: float) -> Asked:
    """Ask as a stub does (RD, DO, EDNS 1232), with or without CD: UDP, TCP when truncated.
    A UDP answer that never comes (or comes unparseable) but arrives over TCP larger than
    512 bytes is the fingerprint of a middlebox that cuts UDP without setting TC."""
    q = Query(question.name, question.rdtype, (server,), rd=True, cd=cd).message()
    try:
        return Asked(transport.ask(server, q, timeout).message)
    except transport.NoReply as exc:
        udp_error = str(exc)
    except (OSError, EOFError, dns.exception.DNSException) as exc:
        return Asked(None, transport.describe(exc))
    try:
        reply = dns.query.tcp(q, server.host, timeout=timeout, port=server.port)
    except (OSError, EOFError, dns.exception.DNSException):
        return Asked(None, udp_error)
    return Asked(reply, f"no UDP reply ({udp_error}); TCP answered",
                 len(reply.to_wire()) > CLASSIC_UDP)


def system_resolver(path: str = RESOLV_CONF) -> Server:
    """The first `nameserver` of resolv.conf: the resolver this host's stub uses."""
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                words = line.split()
                if len(words) >= 2 and words[0] == "nameserver":
                    return parse_server(words[1].split("%")[0], what="resolver")
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}; give --resolver", file=path) from None
    raise InputError("no nameserver line: give --resolver", file=path)


@dataclass(frozen=True)
class DiagnoseResult:
    question: Question
    resolver: Server
    plain: Asked
    cd: Asked
    root: Asked | None
    root_cd: Asked | None
    traced: tracing.TraceResult
    diagnosis: Diagnosis

    @property
    def exit_code(self) -> int:
        return self.diagnosis.exit_code


def observe(plain: Asked, cd: Asked, root: Asked | None, root_cd: Asked | None,
            traced: tracing.TraceResult) -> Observations:
    verdict = traced.verdict
    reason = traced.failed.reason if traced.failed is not None else ""
    return Observations(
        trace_status=traced.status, trace_kind=verdict.kind.value if verdict else None,
        trace_reason=reason, findings=verdict.findings if verdict else (),
        plain=plain.summary, cd=cd.summary,
        resolver_error=plain.error if plain.reply is None else "",
        root_plain=root.summary if root is not None else None,
        root_cd=root_cd.summary if root_cd is not None else None,
        udp_large_lost=plain.udp_large_lost or cd.udp_large_lost,
        largest_reply=largest_own_reply(traced.outcome.exchanges))


def diagnose(question: Question, resolver: Server, anchors: Sequence[dns.rrset.RRset], now: int,
             *, root_hints: Sequence[Server] | None = None, budget: float = transport.DEFAULT_BUDGET,
             timeout: float = transport.SERVER_TIMEOUT) -> DiagnoseResult:
    """Ask, trace, classify. The resolver is asked first, so its cache is what clients see."""
    plain = ask_resolver(resolver, question, False, timeout)
    cd = ask_resolver(resolver, question, True, timeout)
    root = root_cd = None
    if plain.reply is not None and plain.reply.rcode() == dns.rcode.SERVFAIL:
        keys = Question(dns.name.root, dns.rdatatype.DNSKEY)
        root = ask_resolver(resolver, keys, False, timeout)
        root_cd = ask_resolver(resolver, keys, True, timeout)
    traced = tracing.trace(question, anchors, now, root_hints=root_hints, budget=budget,
                           server_timeout=timeout)
    return DiagnoseResult(question, resolver, plain, cd, root, root_cd, traced,
                          classify(observe(plain, cd, root, root_cd, traced)))


def chain_svg(traced: tracing.TraceResult) -> str:
    """The trace's chain of trust as an SVG picture (core.diagnose.svg)."""
    q = traced.question
    question = f"{q.name} {dns.rdatatype.to_text(q.rdtype)}"
    if not isinstance(traced.outcome, Gathered):
        return svg.render([], question, traced.verdict_line)
    cuts = {c.name: c for c in traced.outcome.evidence.zones}
    boxes = []
    for zr in traced.zones:
        cut = cuts.get(zr.zone)
        ds = [f"trust anchor {link.key_tag}/{link.algorithm}" for link in zr.links
              if link.kind == "anchor"]
        keys = []
        if cut is not None:
            ds += [f"DS {rd.key_tag}/{rd.algorithm}/{rd.digest_type}" for r in cut.ds
                   if r.rdtype == dns.rdatatype.DS for rd in r]
            for r in cut.dnskey:
                if r.rdtype != dns.rdatatype.DNSKEY:
                    continue
                for rd in r:
                    role = ("KSK" if rd.flags & 1 else "ZSK") + (" REVOKED" if rd.flags & 0x80 else "")
                    keys.append(f"DNSKEY {dns.dnssec.key_id(rd)}/{rd.algorithm} {role}")
        signs = [f"{link.key_tag} signs {dns.rdatatype.to_text(link.rdtype)} {link.name}"
                 for link in zr.links if link.kind == "rrsig"]
        failing = [f"{f.code}: {f.message}" for f in zr.findings if f.severity.value == "error"]
        boxes.append(svg.ZoneBox(zr.zone.to_text(), zr.status, ds, keys, signs, failing))
    return svg.render(boxes, question, traced.verdict_line)
