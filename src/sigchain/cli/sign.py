"""`sigchain sign`: the dnssec-signzone equivalent."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from sigchain.cli.common import emit_json, handle_errors, warn
from sigchain.cli.verify import render_findings
from sigchain.clock import SYSTEM
from sigchain.core.dnssec import timefmt
from sigchain.core.dnssec.rrsig import SigWindow
from sigchain.core.sign import signer
from sigchain.core.zone import nsec3hash
from sigchain.edge import keystore, zonefile
from sigchain.errors import InputError, UnsafeRefused
from sigchain.findings import Finding, Severity
from sigchain.services import signing, verifying

PROGRESS_MIN = 20_000  # units (RRsets to write) before a progress bar is worth showing
MAX_ITERATIONS = 150  # RFC 9276 §3.2: validators may treat more as insecure (BIND, Unbound)


def parse_salt(text: str) -> bytes:
    if text in ("-", ""):
        return b""
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise InputError(f"bad salt {text!r}: use hex digits or '-'") from None


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
    warnings: list[str] = []
    params = None
    if nsec3:
        if not 0 <= iterations <= 65535:
            raise InputError(f"--iterations {iterations} out of range 0..65535")
        if iterations > MAX_ITERATIONS and not force:
            raise UnsafeRefused(
                f"--iterations {iterations} is above {MAX_ITERATIONS}: validators treat the zone "
                "as insecure (RFC 9276 §3.2); use 0, or --force for a test zone"
            )
        params = nsec3hash.Nsec3Params(iterations, parse_salt(salt), opt_out)
        if iterations > 0:
            warnings.append(f"NSEC3 iterations {iterations}: RFC 9276 recommends 0")
        if params.salt:
            warnings.append("NSEC3 salt set: RFC 9276 recommends none")
        if opt_out:
            warnings.append("NSEC3 opt-out: insecure delegations are not proven (RFC 9276 §3.1)")
    elif iterations or salt not in ("-", "") or opt_out:
        raise InputError("--iterations, --salt and --opt-out need --nsec3")

    nthreads = threads if threads is not None else signing.default_threads()
    try:
        big = os.path.getsize(zonefile_path) >= signing.EARLY_POOL_BYTES
    except OSError:
        big = False  # reading it says what is wrong
    # For a big zone, the workers start while this process reads and prepares it.
    with signing.worker_pool(nthreads if big else 1) as pool:
        zorigin, rrsets, zone_warnings = zonefile.load_records(zonefile_path, origin)
        warnings += zone_warnings
        keys = keystore.load_zone_keys(keydir, zorigin)
        window = SigWindow(inception_t, validity_s, jitter_s, os.urandom(16))
        opts = signer.SignOptions(window, params, cds, deterministic, serial, force)
        prep = signer.prepare(rrsets, zorigin, keys, opts, now)
        del rrsets
        warnings += [_word(w) for w in prep.warnings]
        out_path = output or zonefile_path + ".signed"
        counts = [0] * len(prep.ctx.keys)

        def check(tmp_path: str) -> None:
            # Never publish bogus: verify what is about to replace OUT, at the time it goes live.
            if no_verify:
                return
            written = zonefile.load_wire(tmp_path, prep.origin.to_text(), require_ns=False)
            report = verifying.verify_wire(
                written, max(now, inception_t), ignore_ksk=not prep.ksk_signs_dnskey, threads=nthreads
            )
            errs = [f for f in report.findings if f.severity is Severity.ERROR]
            if errs:
                render_findings(errs)
                raise UnsafeRefused(f"the signed zone failed verification; {out_path} not written")

        header = f"; signed by sigchain\n$ORIGIN {prep.origin.to_text()}\n"
        if sys.stderr.isatty() and prep.total >= PROGRESS_MIN and not as_json:
            # A progress bar on a terminal for zones big enough to notice; quiet when piped.
            with Progress(
                TextColumn("signing {task.fields[zone]}"), BarColumn(), MofNCompleteColumn(),
                TimeRemainingColumn(), console=Console(stderr=True), transient=True,
            ) as bar:
                task = bar.add_task("sign", total=prep.total, zone=prep.origin.to_text())
                stream = signing.sign_stream(prep, nthreads, counts, lambda n: bar.advance(task, n), pool)
                zonefile.write_atomic(out_path, _chain([header], stream), before_rename=check)
        else:
            stream = signing.sign_stream(prep, nthreads, counts, pool=pool)
            zonefile.write_atomic(out_path, _chain([header], stream), before_rename=check)
    signatures = sum(counts)
    key_info = signer.key_summary(prep.published, prep.ctx, counts)
    if as_json:
        emit_json({
            "zone": prep.origin.to_text(), "output": out_path, "signatures": signatures,
            "denial": "nsec3" if params else "nsec", "keys": key_info, "warnings": warnings,
            "verified": not no_verify,
        })
    else:
        for w in warnings:
            warn(w)
        click.echo(out_path)


def _word(finding: Finding) -> str:
    """A signer warning as this command words it: naming the flag that asked for the work."""
    if finding.code == "CDS_NO_ACTIVE_KSK":
        return f"--cds: {finding.message}"
    return finding.message


def _chain(*parts: Iterable[str]) -> Iterator[str]:
    for p in parts:
        yield from p
