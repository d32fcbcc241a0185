"""`sigchain sign`: the dnssec-signzone equivalent."""

from __future__ import annotations

import os

import click

from sigchain.cli.common import emit_json, handle_errors, warn
from sigchain.cli.verify import render_findings
from sigchain.clock import SYSTEM
from sigchain.core import denial, signer, timefmt, verify, zonetext
from sigchain.core.rrsig import SigWindow
from sigchain.edge import keystore, zonefile
from sigchain.errors import InputError, UnsafeRefused
from sigchain.findings import Severity

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
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def sign(zonefile_path: str, origin: str | None, keydir: str, output: str | None, nsec3: bool,
         iterations: int, salt: str, opt_out: bool, serial: str, inception: str | None,
         validity: str, jitter: str, cds: bool, deterministic: bool, force: bool,
         no_verify: bool, as_json: bool) -> None:
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
        params = denial.Nsec3Params(iterations, parse_salt(salt), opt_out)
        if iterations > 0:
            warnings.append(f"NSEC3 iterations {iterations}: RFC 9276 recommends 0")
        if params.salt:
            warnings.append("NSEC3 salt set: RFC 9276 recommends none")
        if opt_out:
            warnings.append("NSEC3 opt-out: insecure delegations are not proven (RFC 9276 §3.1)")
    elif iterations or salt not in ("-", "") or opt_out:
        raise InputError("--iterations, --salt and --opt-out need --nsec3")

    zone = zonefile.load_zone(zonefile_path, origin)
    warnings += zone.warnings
    keys = keystore.load_zone_keys(keydir, zone.origin)
    window = SigWindow(inception_t, validity_s, jitter_s, os.urandom(16))
    opts = signer.SignOptions(window, params, cds, deterministic, serial, force)
    result = signer.sign_zone(zone.nodes, zone.origin, keys, opts, now)
    warnings += result.warnings
    out_path = output or zonefile_path + ".signed"
    report = None
    if not no_verify:
        # Never publish bogus: check what we are about to write, at the time it goes live.
        report = verify.verify_zone(
            result.to_zone(), zone.origin, max(now, inception_t), ignore_ksk=not result.ksk_signs_dnskey
        )
        errs = [f for f in report.findings if f.severity is Severity.ERROR]
        if errs:
            render_findings(errs)
            raise UnsafeRefused(f"the signed zone failed verification; {out_path} not written")
    zonefile.write_atomic(out_path, zonetext.render(result))
    if as_json:
        emit_json({
            "zone": zone.origin.to_text(), "output": out_path, "signatures": result.signatures,
            "denial": "nsec3" if params else "nsec", "keys": result.keys, "warnings": warnings,
            "verified": report is not None,
        })
    else:
        for w in warnings:
            warn(w)
        click.echo(out_path)

