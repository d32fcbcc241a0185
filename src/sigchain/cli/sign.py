"""`sigchain sign`: the dnssec-signzone equivalent (options and output; the work is
`services.signing.sign_file`)."""

from __future__ import annotations

import sys
from collections import Counter
from typing import NoReturn

import click

from sigchain.cli.common import (
    JSON_OPTION,
    emit_json,
    error_json,
    fail_json,
    handle_errors,
    json_keys,
    warn,
)
from sigchain.cli.progress import phases_for
from sigchain.cli.verify import render_findings
from sigchain.clock import SYSTEM
from sigchain.core.dnssec import timefmt
from sigchain.core.sign.denial import DenialRequest
from sigchain.errors import InputError
from sigchain.services import signing

JITTER_AUTO_MAX = 86400  # the automatic --jitter: min(1d, validity/4)
JSON_KEYS = ("zone", "output", "signatures", "denial", "nsec3", "keys", "warnings", "verified",
             "resign_at", "elapsed", "findings")


def _denial_request(nsec: bool, nsec3: bool, iterations: int | None, salt: str | None,
                    opt_out: bool | None) -> DenialRequest:
    if nsec and nsec3:
        raise InputError("--nsec and --nsec3 ask for different chains: give one")
    kind = "nsec" if nsec else "nsec3" if nsec3 else None
    return DenialRequest(kind, iterations, None if salt is None else signing.parse_salt(salt),
                         opt_out)


def _jitter(text: str, validity: int, deterministic: bool) -> int:
    if deterministic:
        return 0
    if text == "auto":
        return min(JITTER_AUTO_MAX, validity // 4)
    jitter = timefmt.parse_duration(text)
    if jitter >= validity:
        raise InputError(f"--jitter ({text}) must be shorter than --validity")
    return jitter


@click.command()
@click.argument("zonefile_path", metavar="ZONEFILE")
@click.option("--origin", default=None, help="Zone name (default: $ORIGIN, else the file name).")
@click.option("--keys", "keydir", required=True, help="Key directory (BIND K-files).")
@click.option("-o", "--output", default=None, help="Output file (default: ZONEFILE.signed).")
@click.option("--nsec3", is_flag=True,
              help="Sign with NSEC3. Default: the input's own chain (NSEC3 with its NSEC3PARAM, "
                   "or NSEC); NSEC for an unsigned zone.")
@click.option("--nsec", is_flag=True, help="Sign with NSEC, even if the input is NSEC3-signed.")
@click.option("--iterations", type=click.IntRange(0, 65535), default=None,
              help="NSEC3 extra hash iterations (default: the input's, else 0 as RFC 9276 "
                   "asks; above 150 needs --force).")
@click.option("--salt", default=None,
              help="NSEC3 salt in hex, or - for none (default: the input's, else none).")
@click.option("--opt-out/--no-opt-out", default=None,
              help="NSEC3 opt-out: leave insecure delegations out of the chain (default: the "
                   "input's, else no).")
@click.option("--serial", type=click.Choice(["keep", "increment", "unixtime"]), default="keep",
              show_default=True,
              help="SOA serial: as in the file, +1, or the time in seconds since the epoch "
                   "(never going back).")
@click.option("--at", "at", default=None, metavar="TIME",
              help="Sign as if it were TIME: the instant at which the keys' timing metadata "
                   "is read and signatures begin (YYYYMMDDHHMMSS UTC, epoch seconds or "
                   "now±DURATION; default: now).")
@click.option("--inception", default=None,
              help="Signature inception: YYYYMMDDHHMMSS (UTC), epoch seconds, or now±DURATION "
                   "(now is --at; default: now-1h, for clock skew).")
@click.option("--validity", default="14d", show_default=True,
              help="Signature lifetime from the inception: seconds, or units s m h d w y, "
                   "compound as 1d12h.")
@click.option("--jitter", default="auto", show_default=True,
              help="Up to this much is taken off each expiration so they do not all fall due "
                   "together (a DURATION; auto: min(1d, validity/4)).")
@click.option("--cds", is_flag=True, help="Publish CDS/CDNSKEY for each active KSK.")
@click.option("--deterministic", is_flag=True,
              help="RFC 6979 ECDSA and no jitter: reproducible output (needs --inception).")
@click.option("--force", is_flag=True,
              help="Override refusals: NSEC3 iterations > 150, legacy algorithms, a signature "
                   "window not valid now.")
@click.option("--no-verify", "-P", "no_verify", is_flag=True,
              help="Skip verifying the output before writing it (as dnssec-signzone -P).")
@click.option("--threads", type=click.IntRange(1), default=None,
              help="Signing processes (default: every core).")
@JSON_OPTION
@handle_errors
@json_keys(*JSON_KEYS)
def sign(zonefile_path: str, origin: str | None, keydir: str, output: str | None, nsec3: bool,
         nsec: bool, iterations: int | None, salt: str | None, opt_out: bool | None,
         serial: str, at: str | None, inception: str | None, validity: str, jitter: str, cds: bool,
         deterministic: bool, force: bool, no_verify: bool, threads: int | None,
         as_json: bool) -> None:
    """Sign ZONEFILE with the keys for its origin in --keys DIR; verify it, then write it."""
    now = SYSTEM.now() if at is None else timefmt.parse_time(at, SYSTEM.now())
    if deterministic and inception is None:
        raise InputError("--deterministic requires --inception, so the output does not depend on the clock")
    inception_t = timefmt.parse_time(inception, now) if inception is not None else now - 3600
    validity_s = timefmt.parse_duration(validity)
    if validity_s <= 0:
        raise InputError("--validity must be positive")
    jitter_s = _jitter(jitter, validity_s, deterministic)
    request = _denial_request(nsec, nsec3, iterations, salt, opt_out)
    started = SYSTEM.monotonic()
    try:
        with phases_for("sign", as_json) as phases:
            result = signing.sign_file(
                zonefile_path, keydir, now=now, inception=inception_t, validity=validity_s,
                jitter=jitter_s, origin=origin, output=output, denial=request, serial=serial,
                cds=cds, deterministic=deterministic, force=force, verify=not no_verify,
                threads=threads, progress=phases,
            )
    except signing.VerifyRefused as e:
        _refused(e, as_json)
    elapsed = round(SYSTEM.monotonic() - started, 3)
    if as_json:
        emit_json({**result.to_json(), "elapsed": elapsed, "findings": [], "error": None})
        return
    for w in result.warnings:
        warn(w)
    for line in summary(result, elapsed):
        click.echo(line)


def _refused(e: signing.VerifyRefused, as_json: bool) -> NoReturn:
    """The signed zone failed verification: the findings, then the error (exit 4)."""
    if as_json:
        fail_json(JSON_KEYS, error_json("verify-failed", str(e), e.exit_code), verified=False,
                  findings=[f.to_dict() for f in e.findings])
    else:
        render_findings(e.findings)
        click.echo(f"sigchain: error: {e}", err=True)
    sys.exit(e.exit_code)


def _state(key: dict[str, object]) -> str:
    """As dnssec-signzone counts keys: revoked, else active (signing), else stand-by."""
    if int(key["flags"]) & 0x80:  # type: ignore[call-overload]
        return "revoked"
    return "active" if key["state"] == "active" else "stand-by"


def summary(result: signing.SignFileResult, elapsed: float) -> list[str]:
    """What was written and with what, as dnssec-signzone sums it up."""
    from sigchain.core.dnssec import algorithms

    lines = [result.output, f"zone {result.zone} signed with {result.denial.describe()}"]
    for alg in sorted({int(k["algorithm"]) for k in result.keys}):  # type: ignore[call-overload]
        keys = [k for k in result.keys if k["algorithm"] == alg]
        roles = []
        for role, sep in (("KSKs", 1), ("ZSKs", 0)):
            states = Counter(_state(k) for k in keys if int(k["flags"]) & 1 == sep)  # type: ignore[call-overload]
            roles.append(f"{role}: {states['active']} active, {states['stand-by']} stand-by, "
                         f"{states['revoked']} revoked")
        name = algorithms.ALGORITHMS[alg].mnemonic if alg in algorithms.ALGORITHMS else str(alg)
        lines.append(f"algorithm {name}: {'; '.join(roles)}")
    rate = f" ({result.signatures / elapsed:.0f}/s)" if elapsed > 0 else ""
    checked = "verified before writing" if result.verified else "not verified (-P)"
    lines.append(f"signatures made: {result.signatures} in {elapsed:.2f} s{rate}; {checked}")
    if result.resign_at is not None:
        lines.append(f"re-sign by {timefmt.format_utc(result.resign_at)} ({result.resign_at})")
    return lines

