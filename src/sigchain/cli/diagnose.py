"""`sigchain diagnose`: the `+cd` fingerprint automated — why a name fails to resolve securely,
with the evidence and the fix."""

from __future__ import annotations

import sys

import click
import dns.name
import dns.rdatatype

from sigchain.cli.common import JSON_OPTION, emit_json, handle_errors, json_keys
from sigchain.cli.trace import ANCHOR_OPTION, HINTS_OPTION, SVG_OPTION, parse_question, write_svg
from sigchain.clock import SYSTEM
from sigchain.core.validate import anchors
from sigchain.core.validate.validator import Question
from sigchain.edge.transport import DEFAULT_BUDGET
from sigchain.errors import InputError
from sigchain.services import diagnose as diag
from sigchain.services import trace as tracing

DIAGNOSE_KEYS = ("question", "resolver", "cause", "category", "reason", "fix", "failing_link",
                 "notes", "exit_code", "resolver_answer", "resolver_answer_cd", "resolver_root",
                 "resolver_root_cd",
                 "trace", "key_tags")


@click.command()
@click.argument("words", nargs=-1, metavar="NAME [TYPE]")
@click.option("--resolver", "resolver_text", metavar="ADDR[#PORT]",
              help="The validating resolver clients use (default: the first nameserver of "
                   "/etc/resolv.conf).")
@ANCHOR_OPTION
@HINTS_OPTION
@click.option("--timeout", type=float, default=DEFAULT_BUDGET, show_default=True,
              metavar="SECONDS", help="Time budget for the trace.")
@SVG_OPTION
@JSON_OPTION
@handle_errors
@json_keys(*DIAGNOSE_KEYS)
def diagnose(words: tuple[str, ...], resolver_text: str | None, anchor_file: str | None,
             hints_file: str | None, timeout: float, svg_path: str | None, as_json: bool) -> None:
    """Ask the resolver with and without CD, trace the chain from the authoritative servers,
    and name the cause. Exit 0 secure or insecure, 1 DNSSEC failure, 3 not a DNSSEC problem
    (servers unreachable, NXDOMAIN)."""
    qname, rdtype, at_server = parse_question(words, timeout)
    if at_server is not None:
        raise InputError("give the resolver with --resolver ADDR, not @ADDR")
    resolver = (anchors.parse_server(resolver_text, what="resolver") if resolver_text
                else diag.system_resolver())
    trust = tracing.read_anchors(anchor_file) if anchor_file else anchors.iana_root_anchors()
    hints = tracing.read_root_hints(hints_file) if hints_file else None
    result = diag.diagnose(Question(qname, rdtype), resolver, trust, SYSTEM.now(),
                           root_hints=hints, budget=timeout)
    write_svg(svg_path, result.traced)
    if as_json:
        emit_json(to_json(result))
    else:
        render(result)
    sys.exit(result.exit_code)


def _asked(asked: diag.Asked | None) -> dict[str, object] | None:
    if asked is None:
        return None
    summary = asked.summary
    return {"reply": summary.to_dict() if summary else None, "error": asked.error or None,
            "lines": asked.lines()}


def to_json(result: diag.DiagnoseResult) -> dict[str, object]:
    from sigchain.cli.trace import to_json as trace_json

    t = result.traced
    return {
        "question": {"name": result.question.name.to_text(),
                     "type": dns.rdatatype.to_text(result.question.rdtype)},
        "resolver": str(result.resolver), **result.diagnosis.to_dict(),
        "resolver_answer": _asked(result.plain), "resolver_answer_cd": _asked(result.cd),
        "resolver_root": _asked(result.root), "resolver_root_cd": _asked(result.root_cd),
        "trace": trace_json(t, t.exit_code()), "key_tags": [k.to_dict() for k in t.key_tags],
        "error": None,
    }


def render(result: diag.DiagnoseResult) -> None:
    from sigchain.cli.trace import key_tag_table

    d, out = result.diagnosis, click.echo
    q = f"{result.question.name} {dns.rdatatype.to_text(result.question.rdtype)}"
    out(f"{q}: {d.category.value}: {d.cause.value}")
    out(f"  why: {d.reason}")
    out(f"  fix: {d.fix}")
    out(f"evidence from resolver {result.resolver}:")
    for label, asked in (("asked normally", result.plain), ("asked with CD", result.cd),
                         (". DNSKEY, normally", result.root), (". DNSKEY, with CD", result.root_cd)):
        if asked is None:
            continue
        lines = asked.lines()
        out(f"  {label}: {lines[0]}")
        for line in lines[1:]:
            out(f"    {line}")
    t = result.traced
    out(f"chain from the authoritative servers: {t.verdict_line}")
    for zone in t.zones:
        out(f"  {zone.zone}  [{zone.status}]")
    if d.failing is not None:
        f = d.failing
        out(f"failing link: {f.name} {f.rdtype or ''}: {f.code}: {f.message} ({f.rfc})")
        for tags in t.key_tags:
            for line in key_tag_table(tags):
                out(f"  {line}")
    for note in d.notes:
        out(f"note: {note}")
