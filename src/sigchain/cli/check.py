"""`sigchain check`: the five-point DNSSEC verify checklist for a zone, one row each."""

from __future__ import annotations

import sys

import click
import dns.exception
import dns.name

from sigchain.cli.common import JSON_OPTION, emit_json, handle_errors, json_keys
from sigchain.cli.trace import ANCHOR_OPTION, HINTS_OPTION
from sigchain.clock import SYSTEM
from sigchain.core.validate import anchors
from sigchain.edge.transport import DEFAULT_BUDGET
from sigchain.errors import InputError
from sigchain.services import check as checking
from sigchain.services import diagnose as diag
from sigchain.services import trace as tracing

CHECK_KEYS = ("zone", "ok", "rows", "exit_code")


def _name(text: str, what: str) -> dns.name.Name:
    try:
        return dns.name.from_text(text)
    except dns.exception.DNSException as exc:
        raise InputError(f"bad {what} {text!r}: {exc}") from None


@click.command()
@click.argument("zone_text", metavar="ZONE")
@ANCHOR_OPTION
@HINTS_OPTION
@click.option("--resolver", "resolver_texts", multiple=True, metavar="ADDR[#PORT]",
              help="A validating resolver to check (repeatable; default: the first nameserver "
                   "of /etc/resolv.conf).")
@click.option("--broken-name", default="dnssec-failed.test", show_default=True,
              help="A name whose DNSSEC is known broken: each resolver must SERVFAIL it.")
@click.option("--zone-file", metavar="FILE",
              help="Verify this signed zone file instead of an AXFR from the zone's servers.")
@click.option("--timeout", type=float, default=DEFAULT_BUDGET, show_default=True,
              metavar="SECONDS", help="Time budget for the chain trace.")
@JSON_OPTION
@handle_errors
@json_keys(*CHECK_KEYS)
def check(zone_text: str, anchor_file: str | None, hints_file: str | None,
          resolver_texts: tuple[str, ...], broken_name: str, zone_file: str | None,
          timeout: float, as_json: bool) -> None:
    """1 the zone verifies (AXFR or --zone-file); 2 the chain validates from the anchor;
    3 the DS at every parent server matches a live KSK; 4 each resolver gives AD on the
    zone's SOA; 5 each resolver SERVFAILs the broken name. Exit 0 only when all pass."""
    zone = _name(zone_text, "zone")
    broken = _name(broken_name, "--broken-name")
    if timeout <= 0:
        raise InputError("--timeout must be positive")
    resolvers = ([anchors.parse_server(t, what="resolver") for t in resolver_texts]
                 if resolver_texts else [diag.system_resolver()])
    trust = tracing.read_anchors(anchor_file) if anchor_file else anchors.iana_root_anchors()
    hints = tracing.read_root_hints(hints_file) if hints_file else None
    rows = checking.check(zone, trust, SYSTEM.now(), root_hints=hints, resolvers=resolvers,
                          broken=broken, zone_file=zone_file, budget=timeout)
    ok = all(r.ok for r in rows)
    code = 0 if ok else 1
    if as_json:
        emit_json({"zone": zone.to_text(), "ok": ok, "rows": [r.to_dict() for r in rows],
                   "exit_code": code, "error": None})
    else:
        for r in rows:
            click.echo(f"{r.number}  {'PASS' if r.ok else 'FAIL'}  {r.title}")
            click.echo(f"         {r.detail}")
        passed = sum(r.ok for r in rows)
        click.echo(f"{zone}: {passed}/{len(rows)} passed")
    sys.exit(code)
