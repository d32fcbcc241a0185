"""`sigchain verify`: the dnssec-verify equivalent, with stable finding codes."""

from __future__ import annotations

import os
import sys

import click

from sigchain.cli.common import emit_json, handle_errors
from sigchain.clock import SYSTEM
from sigchain.core.dnssec import algorithms, timefmt
from sigchain.edge import zonefile
from sigchain.findings import Finding, Severity
from sigchain.services import verifying

BIG_FILE = 4 << 20  # bytes


def render_findings(findings: list[Finding]) -> None:
    for f in findings:
        where = f"{f.name}/{f.rdtype}" if f.rdtype else (f.name or "")
        click.echo(f"{f.severity.value.upper()} {f.code} {where}: {f.message} ({f.rfc})", err=True)


@click.command()
@click.argument("zonefile_path", metavar="SIGNEDZONE")
@click.option("--origin", default=None, help="Zone name (default: $ORIGIN, else the file name).")
@click.option("--at", "at", default=None, help="Check validity at TIME instead of now.")
@click.option("-z", "--ignore-ksk", is_flag=True,
              help="Accept a DNSKEY RRset signed by any key (as dnssec-verify -z).")
@click.option("--threads", type=int, default=None,
              help="Processes checking signatures (default: every core).")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def verify(zonefile_path: str, origin: str | None, at: str | None, ignore_ksk: bool,
           threads: int | None, as_json: bool) -> None:
    """Verify a signed zone; exit 1 when it has errors (warnings do not fail)."""
    now = SYSTEM.now()
    when = timefmt.parse_time(at, now) if at is not None else now
    # A zone file of some megabytes has enough signatures for a pool: start its workers
    # while the file is read.
    big = os.path.getsize(zonefile_path) > BIG_FILE if os.path.isfile(zonefile_path) else False
    with verifying.Verifier(threads, start_now=big) as verifier:
        zone = zonefile.load_wire(zonefile_path, origin, require_ns=False)
        report = verifier.verify(zone, when, ignore_ksk)
    errors = [f for f in report.findings if f.severity is Severity.ERROR]
    if as_json:
        emit_json({
            "zone": zone.origin.to_text(), "at": when, "ok": not errors,
            "algorithms": report.algorithms, "denial": report.denial, "nsec3": report.nsec3,
            "rrsets_checked": report.rrsets_checked,
            "signatures_verified": report.signatures_verified,
            "findings": [f.to_dict() for f in report.findings],
        })
    else:
        render_findings(report.findings)
        names = ", ".join(algorithms.ALGORITHMS[a].mnemonic for a in report.algorithms)
        verdict = "verified" if not errors else f"FAILED with {len(errors)} error(s)"
        click.echo(
            f"zone {zone.origin} {verdict}: {report.rrsets_checked} RRsets, "
            f"{report.signatures_verified} signatures verified, algorithms {names or '-'}, "
            f"denial {report.denial}"
        )
    sys.exit(1 if errors else 0)
