"""`sigchain verify`: the dnssec-verify equivalent, with stable finding codes, grouped by code."""

from __future__ import annotations

import sys
from collections import Counter

import click

from sigchain.cli.common import JSON_OPTION, emit_json, handle_errors, json_keys, warn
from sigchain.cli.progress import phases_for
from sigchain.clock import SYSTEM
from sigchain.core.dnssec import timefmt
from sigchain.findings import Finding, Severity

EXAMPLES = 3  # findings shown per code without --all
JSON_KEYS = ("zone", "at", "ok", "algorithms", "denial", "nsec3", "rrsets_checked",
             "signatures_checked", "signatures_valid", "signatures_verified", "errors",
             "warnings", "counts", "findings", "load_warnings")


def _line(f: Finding) -> str:
    where = f"{f.name}/{f.rdtype}" if f.rdtype else (f.name or "")
    return f"{where}: {f.message}" if where else f.message


def render_findings(findings: list[Finding], show_all: bool = False) -> None:
    """Findings on stderr grouped by code, errors first: a header with the count, then every
    finding (`show_all`) or the first few and how many more."""
    order = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
    groups: dict[str, list[Finding]] = {}
    for f in findings:
        groups.setdefault(f.code, []).append(f)
    for code, group in sorted(groups.items(), key=lambda kv: (order[kv[1][0].severity], kv[0])):
        first = group[0]
        click.echo(f"{first.severity.value.upper()} {code} ({len(group)}): {first.info.summary} "
                   f"({first.rfc})", err=True)
        shown = group if show_all else group[:EXAMPLES]
        for f in shown:
            click.echo(f"  {code} {_line(f)}", err=True)
        if len(group) > len(shown):
            click.echo(f"  ... and {len(group) - len(shown)} more {code} (--all lists every one)",
                       err=True)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def totals(errors: list[Finding], warnings: int, checked: int, valid: int, correct: int) -> str:
    """The verdict's counts, worded so they cannot be misread: `valid` signatures verify, are
    in their window and have the right fields; `correct` ones only verify."""
    kinds = len({f.code for f in errors})
    if errors:
        head = f"FAILED: {_plural(len(errors), 'error')} of {_plural(kinds, 'kind')}"
    else:
        head = "verified: no errors"
    text = (f"{head}, {_plural(warnings, 'warning')}; {_plural(checked, 'signature')} checked, "
            f"{valid} valid")
    if correct != valid:
        text += f" ({correct} cryptographically correct)"
    return text


def _nsec3(params: dict[str, object] | None) -> dict[str, object] | None:
    """The NSEC3 parameters for --json: no salt is null, not "-"."""
    if params is None:
        return None
    return {**params, "salt": None if params["salt"] in ("-", "") else params["salt"]}


@click.command()
@click.argument("zonefile_path", metavar="SIGNEDZONE")
@click.option("--origin", default=None, help="Zone name (default: $ORIGIN, else the file name).")
@click.option("--at", "at", default=None,
              help="Check the signatures' validity at TIME (YYYYMMDDHHMMSS UTC, epoch seconds, or "
                   "now±DURATION; default: now).")
@click.option("-z", "--ignore-ksk", is_flag=True,
              help="Accept a DNSKEY RRset signed by any key (as dnssec-verify -z).")
@click.option("--all", "show_all", is_flag=True,
              help=f"List every finding (default: the first {EXAMPLES} of each code and a count; "
                   "--json always has every one).")
@click.option("--threads", type=click.IntRange(1), default=None,
              help="Processes checking signatures (default: every core).")
@JSON_OPTION
@handle_errors
@json_keys(*JSON_KEYS)
def verify(zonefile_path: str, origin: str | None, at: str | None, ignore_ksk: bool,
           show_all: bool, threads: int | None, as_json: bool) -> None:
    """Verify a signed zone; exit 1 when it has errors (warnings do not fail)."""
    from sigchain.services import verifying

    now = SYSTEM.now()
    when = timefmt.parse_time(at, now) if at is not None else now
    with phases_for("verify", as_json) as phases, verifying.Verifier(threads) as verifier, \
            phases.phase("read and check"):
        zone, report = verifier.read_and_verify(zonefile_path, origin, when, ignore_ksk,
                                                require_ns=False, refuse_cname_clash=False,
                                                records=False, learn=False)
    assert report is not None  # every zone is verified (only_signed is off)
    errors = [f for f in report.findings if f.severity is Severity.ERROR]
    # the reader's warnings (data skipped, TTLs evened out: `load_warnings`) count as well
    warnings = sum(1 for f in report.findings if f.severity is Severity.WARNING) + len(zone.warnings)
    if as_json:
        emit_json({
            "zone": zone.origin.to_text(), "at": when, "ok": not errors,
            "algorithms": report.algorithms, "denial": report.denial, "nsec3": _nsec3(report.nsec3),
            "rrsets_checked": report.rrsets_checked,
            "signatures_checked": report.signatures_checked,
            "signatures_valid": report.signatures_valid,
            "signatures_verified": report.signatures_verified,
            "errors": len(errors), "warnings": warnings,
            "counts": dict(Counter(f.code for f in report.findings)),
            "findings": [f.to_dict() for f in report.findings], "load_warnings": zone.warnings,
            "error": None,
        })
    else:
        from sigchain.core.dnssec import algorithms

        for w in zone.warnings:  # what the reader skipped or took in another way (as sign says)
            warn(w)
        render_findings(report.findings, show_all)
        names = ", ".join(algorithms.ALGORITHMS[a].mnemonic for a in report.algorithms)
        counts = totals(errors, warnings, report.signatures_checked, report.signatures_valid,
                        report.signatures_verified)
        click.echo(f"zone {zone.origin} {counts}; at {timefmt.format_utc(when)}; "
                   f"{report.rrsets_checked} RRsets, algorithms {names or '-'}, "
                   f"denial {report.denial}")
    sys.exit(1 if errors else 0)

