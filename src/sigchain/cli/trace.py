"""`sigchain trace`: resolve a name, walk the chain of trust and say exactly why (delv-like)."""

from __future__ import annotations

import sys

import click
import dns.exception
import dns.name
import dns.rdatatype

from sigchain.cli.common import emit_json, handle_errors, json_keys
from sigchain.clock import SYSTEM
from sigchain.core.dnssec import timefmt
from sigchain.core.resolve.exchange import Failed, Gathered
from sigchain.core.validate import anchors
from sigchain.core.validate.validator import Question
from sigchain.edge.transport import DEFAULT_BUDGET, SERVER_TIMEOUT
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


def _rdtype(word: str) -> int | None:
    try:
        return dns.rdatatype.from_text(word)
    except dns.rdatatype.UnknownRdatatype:
        return None


def parse_words(words: tuple[str, ...]) -> tuple[str, int, str | None]:
    """dig-style positionals in any order: NAME, TYPE, @SERVER. As dig does, a word that is
    a record type name (`A`, `dnskey`, `TYPE65534`) is the type, so `A NAME` and `NAME A`
    both work; once the type is known, the next other word is the name."""
    name: str | None = None
    rdtype: int | None = None
    server: str | None = None
    for w in words:
        if w.startswith("@"):
            if server is not None:
                raise InputError(f"two servers given: @{server} and {w}")
            server = w[1:]
            continue
        as_type = _rdtype(w) if rdtype is None else None
        if as_type is not None:
            rdtype = as_type
        elif name is None:
            name = w
        elif rdtype is None:
            raise InputError(f"unknown record type {w!r}")
        else:
            raise InputError(f"unexpected argument {w!r}: usage NAME [TYPE] [@SERVER]")
    if name is None:
        raise InputError("a NAME to trace is required")
    return name, rdtype if rdtype is not None else dns.rdatatype.A, server


def parse_question(words: tuple[str, ...], timeout: float) -> tuple[dns.name.Name, int, str | None]:
    """NAME, TYPE and @SERVER from the positionals (see parse_words), the name parsed, and a
    positive --timeout checked."""
    text, rdtype, server_text = parse_words(words)
    try:
        qname = dns.name.from_text(text)
    except dns.exception.DNSException as exc:
        raise InputError(f"bad name {text!r}: {exc}") from None
    if timeout <= 0:
        raise InputError("--timeout must be positive")
    return qname, rdtype, server_text


ANCHOR_OPTION = click.option(
    "--anchor", "anchor_file", metavar="FILE",
    help="Trust anchors (DS/DNSKEY records, or BIND trust-anchors { … };) replacing the "
         "built-in IANA root anchors.")
SVG_OPTION = click.option(
    "--svg", "svg_path", metavar="OUT",
    help="Also draw the chain of trust as an SVG picture into OUT (the failing link in red).")


def write_svg(path: str | None, result: tracing.TraceResult) -> None:
    """The picture of the chain, written atomically (nothing half-written)."""
    if path is None:
        return
    from sigchain.edge import zonefile
    from sigchain.services.diagnose import chain_svg

    zonefile.write_atomic(path, [chain_svg(result)])


HINTS_OPTION = click.option(
    "--root-hints", "hints_file", metavar="FILE",
    help="Root hints for iterative resolution (default: the IANA root servers).")

# The top-level keys of `trace --json`, the same on success, on a failed trace and on an error.
TRACE_KEYS = ("question", "mode", "server", "at", "status", "verdict_line", "verdict_lines",
              "rcode", "exit_code", "queries", "ignored_replies", "unanswered", "key_tags",
              "recursive", "answer", "authority", "verdict", "zones", "notes", "failure")


@click.command()
@click.argument("words", nargs=-1, metavar="NAME [TYPE] [@SERVER]")
@ANCHOR_OPTION
@HINTS_OPTION
@click.option("-p", "--port", type=int, default=None, help="Port of @SERVER (default 53).")
@click.option("--cd/--no-cd", "cd", default=None,
              help="With @SERVER: --cd sets RD=1 and CD=1 on every query even if the server "
                   "does not advertise recursion; --no-cd asks a recursive server with CD=0 "
                   "(it then validates, and a bogus answer comes back as SERVFAIL). Default: "
                   "CD=1 when the server sets RA.")
@click.option("--at", "at", default=None, metavar="TIME",
              help="Validate as at TIME (YYYYMMDDHHMMSS, epoch, now±N[smhdw]) instead of now.")
@click.option("--timeout", type=float, default=DEFAULT_BUDGET, show_default=True,
              metavar="SECONDS",
              help=f"Time budget for the whole trace, in seconds (each server is given at most "
                   f"{SERVER_TIMEOUT:g} s; one that does not answer is skipped from then on).")
@click.option("--require-secure", is_flag=True, help="Exit 1 unless the answer is secure.")
@SVG_OPTION
@click.option("-v", "--verbose", is_flag=True, help="Also list every query sent.")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
@json_keys(*TRACE_KEYS)
def trace(words: tuple[str, ...], anchor_file: str | None, hints_file: str | None,
          port: int | None, cd: bool | None, at: str | None, timeout: float,
          require_secure: bool, svg_path: str | None, verbose: bool, as_json: bool) -> None:
    """Resolve NAME/TYPE and validate the chain of trust from the anchors down.

    Without @SERVER it resolves iteratively from the root hints; with @SERVER (ADDR or
    ADDR#PORT) it asks that server for every link. Exit 0 secure or insecure, 1 bogus,
    indeterminate or failed, 3 when no server answers or the time budget is spent.
    """
    qname, rdtype, server_text = parse_question(words, timeout)
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
                           cd=cd, budget=timeout)
    code = result.exit_code(require_secure)
    write_svg(svg_path, result)
    if as_json:
        emit_json(to_json(result, code))
    else:
        render(result, verbose)
    sys.exit(code)


def render(result: tracing.TraceResult, verbose: bool) -> None:
    """The report on stdout. A trace that could not be done (no server answered, the time
    budget spent: exit 3) says so once, on stderr, as delv does."""
    out = click.echo
    unreachable = isinstance(result.outcome, Failed) and result.outcome.unreachable
    for line in result.verdict_lines:
        click.echo(line, err=unreachable)
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
                for tags in result.key_tags if f.code == "DS_NO_MATCHING_DNSKEY" else ():
                    if tags.zone.to_text() == f.params["zone"]:
                        for line in key_tag_table(tags):
                            out(f";;       {line}")
        for note in outcome.notes:
            out(f";; note: {note}")
        for server, why in result.unanswered:
            out(f";; note: no answer from {server} ({why}): skipped for the rest of the trace")
    if verbose:
        out(";;")
        out(f";; Queries: ({result.ignored} non-matching "
            f"{'reply' if result.ignored == 1 else 'replies'} ignored, RFC 5452)")
        for ex in outcome.exchanges:
            out(f";;   {ex}")


def key_tag_table(tags: tracing.KeyTags) -> list[str]:
    """The DS RRset's key tags and the zone's DNSKEYs side by side, one row per key tag."""
    rows: dict[tuple[int, int], list[str]] = {}
    for tag, alg, digest in tags.ds:
        rows.setdefault((tag, alg), ["-", "-"])[0] = f"digest {digest}" if digest else "anchor key"
    for tag, alg, flags in tags.dnskey:
        role = "KSK" if flags & 1 else "ZSK"
        rows.setdefault((tag, alg), ["-", "-"])[1] = role + (" REVOKED" if flags & 0x80 else "")
    lines = [f"{'key tag':>7}  {'alg':>3}  {'DS':<11}  DNSKEY in {tags.zone}"]
    for (tag, alg), (ds, key) in sorted(rows.items()):
        lines.append(f"{tag:>7}  {alg:>3}  {ds:<11}  {key}")
    return lines


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
        "ignored_replies": result.ignored,
        "unanswered": [{"server": s, "error": why} for s, why in result.unanswered],
        "key_tags": [t.to_dict() for t in result.key_tags], "error": None,
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
        data.update({"recursive": None, "answer": None, "authority": None,
                     "verdict": None, "zones": [], "notes": [],
                     "failure": {"reason": outcome.reason, "unreachable": outcome.unreachable,
                                 "ede": [{"code": c, "text": t} for c, t in outcome.ede]}})
    return data
