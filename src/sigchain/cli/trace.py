"""`sigchain trace`: resolve a name, walk the chain of trust and say exactly why (delv-like)."""

from __future__ import annotations

import sys

import click
import dns.exception
import dns.name
import dns.rdatatype

from sigchain.cli.common import emit_json, handle_errors
from sigchain.clock import SYSTEM
from sigchain.core.dnssec import timefmt
from sigchain.core.resolve.exchange import Failed, Gathered
from sigchain.core.validate import anchors
from sigchain.core.validate.validator import Question
from sigchain.edge.transport import DEFAULT_TIMEOUT
from sigchain.errors import InputError
from sigchain.services import trace as tracing

# RFC 8914 §4 (and the IANA registry): names for the EDE codes findings carry.
EDE_NAMES = {
    0: "Other Error", 1: "Unsupported DNSKEY Algorithm", 2: "Unsupported DS Digest Type",
    3: "Stale Answer", 4: "Forged Answer", 5: "DNSSEC Indeterminate", 6: "DNSSEC Bogus",
    7: "Signature Expired", 8: "Signature Not Yet Valid", 9: "DNSKEY Missing",
    10: "RRSIGs Missing", 11: "No Zone Key Bit Set", 12: "NSEC Missing", 13: "Cached Error",
    14: "Not Ready", 15: "Blocked", 16: "Censored", 17: "Filtered", 18: "Prohibited",
    19: "Stale NXDOMAIN Answer", 20: "Not Authoritative", 21: "Not Supported",
    22: "No Reachable Authority", 23: "Network Error", 24: "Invalid Data",
    25: "Signature Expired before Valid", 26: "Too Early", 27: "Unsupported NSEC3 Iterations Value",
    28: "Unable to conform to policy", 29: "Synthesized", 30: "Invalid Query Type",
}


def _ede(code: int | None) -> str:
    return "no EDE" if code is None else f"EDE {code} {EDE_NAMES.get(code, '')}".rstrip()


def parse_words(words: tuple[str, ...]) -> tuple[str, int, str | None]:
    """dig-style positionals in any order: NAME, TYPE, @SERVER."""
    name: str | None = None
    rdtype: int | None = None
    server: str | None = None
    for w in words:
        if w.startswith("@"):
            if server is not None:
                raise InputError(f"two servers given: @{server} and {w}")
            server = w[1:]
            continue
        if name is not None and rdtype is None:
            try:
                rdtype = dns.rdatatype.from_text(w)
                continue
            except dns.rdatatype.UnknownRdatatype:
                raise InputError(f"unknown record type {w!r}") from None
        if name is None:
            name = w
            continue
        raise InputError(f"unexpected argument {w!r}: usage NAME [TYPE] [@SERVER]")
    if name is None:
        raise InputError("a NAME to trace is required")
    return name, rdtype if rdtype is not None else dns.rdatatype.A, server


@click.command()
@click.argument("words", nargs=-1, metavar="NAME [TYPE] [@SERVER]")
@click.option("--anchor", "anchor_file", metavar="FILE",
              help="Trust anchors (DS/DNSKEY records, or BIND trust-anchors { … };) replacing "
                   "the built-in IANA root anchors.")
@click.option("--root-hints", "hints_file", metavar="FILE",
              help="Root hints for iterative resolution (default: the IANA root servers).")
@click.option("-p", "--port", type=int, default=None, help="Port of @SERVER (default 53).")
@click.option("--cd/--no-cd", "cd", default=None,
              help="With @SERVER: --cd sets RD=1 and CD=1 on every query even if the server "
                   "does not advertise recursion; --no-cd asks a recursive server with CD=0 "
                   "(it then validates, and a bogus answer comes back as SERVFAIL). Default: "
                   "CD=1 when the server sets RA.")
@click.option("--at", "at", default=None, metavar="TIME",
              help="Validate as at TIME (YYYYMMDDHHMMSS, epoch, now±N[smhdw]) instead of now.")
@click.option("--timeout", type=float, default=DEFAULT_TIMEOUT, show_default=True,
              help="Seconds to wait for each server.")
@click.option("--require-secure", is_flag=True, help="Exit 1 unless the answer is secure.")
@click.option("-v", "--verbose", is_flag=True, help="Also list every query sent.")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def trace(words: tuple[str, ...], anchor_file: str | None, hints_file: str | None,
          port: int | None, cd: bool | None, at: str | None, timeout: float,
          require_secure: bool, verbose: bool, as_json: bool) -> None:
    """Resolve NAME/TYPE and validate the chain of trust from the anchors down.

    Without @SERVER it resolves iteratively from the root hints; with @SERVER (ADDR or
    ADDR#PORT) it asks that server for every link. Exit 0 secure or insecure, 1 bogus,
    indeterminate or failed, 3 when no server answers.
    """
    text, rdtype, server_text = parse_words(words)
    try:
        qname = dns.name.from_text(text)
    except dns.exception.DNSException as exc:
        raise InputError(f"bad name {text!r}: {exc}") from None
    if timeout <= 0:
        raise InputError("--timeout must be positive")
    server = anchors.parse_server(server_text, port) if server_text is not None else None
    if server is None and port is not None:
        raise InputError("-p PORT applies to @SERVER; none was given")
    if server is not None and hints_file is not None:
        raise InputError("--root-hints is for iterative resolution; it cannot go with @SERVER")
    if server is None and cd is not None:
        raise InputError("--cd/--no-cd apply to queries to @SERVER")
    trust = tracing.read_anchors(anchor_file) if anchor_file else anchors.iana_root_anchors()
    hints = tracing.read_root_hints(hints_file) if hints_file else None
    clock_now = SYSTEM.now()
    now = timefmt.parse_time(at, clock_now) if at is not None else clock_now

    result = tracing.trace(Question(qname, rdtype), trust, now, root_hints=hints, server=server,
                           cd=cd, timeout=timeout)
    code = result.exit_code(require_secure)
    if as_json:
        emit_json(to_json(result, code))
    else:
        render(result, verbose)
        if isinstance(result.outcome, Failed) and result.outcome.unreachable:
            click.echo(f"sigchain: error: {result.outcome.reason}", err=True)
    sys.exit(code)


def render(result: tracing.TraceResult, verbose: bool) -> None:
    out = click.echo
    for line in result.verdict_lines:
        out(line)
    outcome = result.outcome
    if isinstance(outcome, Failed):
        for code, text in outcome.ede:
            out(f";; {_ede(code)}{': ' + text if text else ''}")
    else:
        for rrset in outcome.evidence.answer:
            out(rrset.to_text())
        v = result.verdict
        assert v is not None
        where = f"server {result.server}" if result.server else "iterative from the root hints"
        recursive = ""
        if result.server is not None and outcome.recursive is not None:
            recursive = ", recursive, asked with CD=1" if outcome.recursive else ", not recursive"
        out(f";; {dns.rdatatype.to_text(result.question.rdtype)} {result.question.name}: "
            f"{tracing.rcode_text(result)}, {v.status.value} ({v.kind.value}), "
            f"validated TTL {v.ttl if v.ttl is not None else '-'}; {where}{recursive}")
        out(";;")
        out(";; Chain of trust, from the anchor down:")
        for zone in result.zones:
            out(f";;   {zone.zone}  [{zone.status}]")
            for link in zone.links:
                key = f" key {link.key_tag}/{link.algorithm}" if link.key_tag is not None else ""
                out(f";;     {link.kind:6} {link.name} {dns.rdatatype.to_text(link.rdtype)}{key}: {link.detail}")
        if v.findings:
            out(";;")
            out(";; Findings:")
            for f in v.findings:
                what = f"{f.name} {f.rdtype}" if f.rdtype else (f.name or "")
                out(f";;   {f.severity.value.upper()} {f.code} {what}: {f.message}")
                out(f";;       ({f.rfc}; {_ede(f.ede)})")
        for note in outcome.notes:
            out(f";; note: {note}")
    if verbose:
        out(";;")
        out(";; Queries:")
        for ex in outcome.exchanges:
            out(f";;   {ex}")


def to_json(result: tracing.TraceResult, code: int) -> dict[str, object]:
    outcome = result.outcome
    data: dict[str, object] = {
        "question": {"name": result.question.name.to_text(),
                     "type": dns.rdatatype.to_text(result.question.rdtype)},
        "mode": result.mode, "server": str(result.server) if result.server else None,
        "at": result.now, "status": result.status, "verdict_line": result.verdict_line,
        "verdict_lines": result.verdict_lines,
        "rcode": tracing.rcode_text(result), "exit_code": code,
        "queries": [ex.to_dict() for ex in outcome.exchanges],
    }
    if isinstance(outcome, Gathered):
        assert result.verdict is not None
        data.update({
            "recursive": outcome.recursive,
            "answer": [line for r in outcome.evidence.answer for line in r.to_text().splitlines()],
            "authority": [line for r in outcome.evidence.authority for line in r.to_text().splitlines()],
            "verdict": result.verdict.to_dict(),
            "zones": [z.to_dict() for z in result.zones],
            "notes": list(outcome.notes), "failure": None,
        })
    else:
        data.update({"verdict": None, "zones": [], "notes": [],
                     "failure": {"reason": outcome.reason, "unreachable": outcome.unreachable,
                                 "ede": [{"code": c, "text": t} for c, t in outcome.ede]}})
    return data
