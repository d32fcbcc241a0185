"""`sigchain sign`: the dnssec-signzone equivalent (options and output; the work is
`services.signing.sign_file`)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from sigchain.cli.common import emit_json, handle_errors, warn
from sigchain.cli.verify import render_findings
from sigchain.clock import SYSTEM
from sigchain.core.dnssec import timefmt
from sigchain.core.sign import signer
from sigchain.errors import InputError
from sigchain.services import signing

PROGRESS_MIN = 20_000  # units (RRsets to write) before a progress bar is worth showing


@contextlib.contextmanager
def _progress_bar(prep: signer.Prepared) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on a terminal for zones big enough to notice; quiet when piped."""
    if not (sys.stderr.isatty() and prep.total >= PROGRESS_MIN):
        yield None
        return
    with Progress(
        TextColumn("signing {task.fields[zone]}"), BarColumn(), MofNCompleteColumn(),
        TimeRemainingColumn(), console=Console(stderr=True), transient=True,
    ) as bar:
        task = bar.add_task("sign", total=prep.total, zone=prep.origin.to_text())
        yield lambda n: bar.advance(task, n)


@click.command()
@click.argument("zonefile_path", metavar="ZONEFILE")
@click.option("--origin", default=None, help="Zone name (default: $ORIGIN, else the file name).")
@click.option("--keys", "keydir", required=True, help="Key directory (BIND K-files).")
@click.option("-o", "--output", default=None, help="Output file (default ZONEFILE.signed).")
@click.option("--nsec3", is_flag=True, help="NSEC3 instead of NSEC.")
@click.option("--iterations", type=int, default=0, show_default=True)
@click.option("--salt", default="-", show_default=True, help="Hex salt, or - for none.")
@click.option("--opt-out", is_flag=True, help="NSEC3 opt-out for insecure delegations.")
@click.option("--serial", type=click.Choice(["keep", "increment", "unixtime"]), default="keep",
              show_default=True)
@click.option("--inception", default=None, help="YYYYMMDDHHMMSS, epoch, or now±N[smhdw]; default now-1h.")
@click.option("--validity", default="14d", show_default=True)
@click.option("--jitter", default="1d", show_default=True)
@click.option("--cds", is_flag=True, help="Publish CDS/CDNSKEY for each active KSK.")
@click.option("--deterministic", is_flag=True, help="RFC 6979 ECDSA, no jitter: reproducible output.")
@click.option("--force", is_flag=True, help="Override refusals (iterations > 150, legacy algorithms).")
@click.option("--no-verify", "-P", "no_verify", is_flag=True,
              help="Skip verifying the output before writing it (as dnssec-signzone -P).")
@click.option("--threads", type=int, default=None, help="Signing processes (default: every core).")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def sign(zonefile_path: str, origin: str | None, keydir: str, output: str | None, nsec3: bool,
         iterations: int, salt: str, opt_out: bool, serial: str, inception: str | None,
         validity: str, jitter: str, cds: bool, deterministic: bool, force: bool,
         no_verify: bool, threads: int | None, as_json: bool) -> None:
    """Sign ZONEFILE with the keys for its origin in --keys DIR."""
    now = SYSTEM.now()
    if deterministic and inception is None:
        raise InputError("--deterministic requires --inception, so the output does not depend on the clock")
    inception_t = timefmt.parse_time(inception, now) if inception is not None else now - 3600
    validity_s = timefmt.parse_duration(validity)
    jitter_s = 0 if deterministic else timefmt.parse_duration(jitter)
    if validity_s <= 0:
        raise InputError("--validity must be positive")
    if jitter_s >= validity_s:
        raise InputError(f"--jitter ({jitter}) must be shorter than --validity ({validity})")
    params = None
    if nsec3:
        params = signing.nsec3_params(iterations, salt, opt_out, force)
    elif iterations or salt not in ("-", "") or opt_out:
        raise InputError("--iterations, --salt and --opt-out need --nsec3")
    try:
        result = signing.sign_file(
            zonefile_path, keydir, now=now, inception=inception_t, validity=validity_s,
            jitter=jitter_s, origin=origin, output=output, nsec3=params, serial=serial, cds=cds,
            deterministic=deterministic, force=force, verify=not no_verify, threads=threads,
            progress=None if as_json else _progress_bar,
        )
    except signing.VerifyRefused as e:
        render_findings(e.findings)
        raise
    if as_json:
        emit_json(result.to_json())
    else:
        for w in result.warnings:
            warn(w)
        click.echo(result.output)
