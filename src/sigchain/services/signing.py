"""Zone signing across processes: prepare once, share the units out to a pool of workers in
large batches, write the signed text as a stream in canonical order."""

from __future__ import annotations

import collections
import contextlib
import itertools
import os
import signal
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from multiprocessing.pool import AsyncResult, Pool
from typing import Any, Protocol

import dns.name
import dns.rdatatype
from cryptography.hazmat.primitives import serialization

from sigchain.core.dnssec import timefmt
from sigchain.core.dnssec.algorithms import TokenKey
from sigchain.core.dnssec.policy import DEFAULT_POLICY
from sigchain.core.dnssec.rrsig import SigWindow
from sigchain.core.rollover.policy import KeyPolicy
from sigchain.core.sign import denial as denialcore
from sigchain.core.sign import signer
from sigchain.core.sign.batches import Batch, SigningContext, sign_units
from sigchain.core.sign.denial import Denial, DenialRequest
from sigchain.core.sign.keyset import key_summary
from sigchain.core.zone import nsec3hash
from sigchain.core.zone.records import RRsetRec, key_of
from sigchain.edge import forkserver, keystore, zonefile
from sigchain.errors import InputError, OperationalError, UnsafeRefused
from sigchain.findings import Finding, Severity
from sigchain.model.keys import KeyPair

BATCH = 2000  # units per task: large enough that pickling and scheduling stay cheap
EARLY_POOL_BYTES = 1 << 20  # zone files this big get their workers started before reading

_worker_ctx: tuple[bytes, SigningContext] | None = None


def _portable(ctx: SigningContext) -> tuple[SigningContext, list[bytes | None]]:
    """Private keys do not pickle: send them as PKCS#8 DER (in memory, to our own children).
    A token's key (PKCS#11) goes as itself, its URI: each worker opens its own session."""
    ders = [
        None if isinstance(k.private, TokenKey) else k.private.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        for k in ctx.keys
    ]
    keys = tuple(k if der is None else replace(k, private=None)
                 for k, der in zip(ctx.keys, ders, strict=True))
    return replace(ctx, keys=keys), ders


def _sign_batch(
    token: bytes, ctx: SigningContext, ders: list[bytes | None], batch: Batch
) -> tuple[str, list[int], int | None]:
    """A worker's task. The context comes with every batch (a pool may be started before the
    zone is read, so before the context exists); its keys are loaded once per signing run."""
    global _worker_ctx
    if _worker_ctx is None or _worker_ctx[0] != token:
        keys: list[KeyPair] = [
            k if der is None else replace(k, private=serialization.load_der_private_key(der, None))
            for k, der in zip(ctx.keys, ders, strict=True)
        ]
        _worker_ctx = token, replace(ctx, keys=tuple(keys))
    return sign_units(batch, _worker_ctx[1])


def _warm() -> None:
    """Worker start-up: importing this module imports the signer, dnspython and cryptography.
    Ctrl-C is the parent's to handle (it ends the pool): no traceback from every worker."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def default_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@contextlib.contextmanager
def worker_pool(threads: int) -> Iterator[Pool | None]:
    """The signing processes, started now: a fresh interpreter importing cryptography and
    dnspython takes a second or more, which can overlap reading and preparing the zone."""
    if threads <= 1:
        yield None
        return
    # forkserver: workers start from a small clean process, not as copies of this one with
    # the whole zone in it (the garbage collector would touch, and so copy, every page).
    pool = forkserver.context().Pool(threads, initializer=_warm)
    interrupted = False
    try:
        yield pool
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        forkserver.stop(pool, failed=interrupted)


@dataclass
class Tally:
    """What the signed batches add up to: signatures per key (indexed as `prep.ctx.keys`)
    and the earliest signature expiration (epoch seconds; None before any signature)."""

    counts: list[int]
    earliest: int | None = None

    def add(self, counts: list[int], earliest: int | None) -> None:
        for i, v in enumerate(counts):
            self.counts[i] += v
        if earliest is not None and (self.earliest is None or earliest < self.earliest):
            self.earliest = earliest


def sign_stream(
    prep: signer.Prepared,
    threads: int,
    tally: Tally,
    progress: Callable[[int], None] | None = None,
    pool: Pool | None = None,
) -> Iterator[str]:
    """Yield the signed zone's text in canonical order; `tally` adds up the signatures per
    key and the earliest expiration. At most a few batches per worker are in flight, so
    memory stays bounded. `pool` is one from `worker_pool` started earlier (closed here when
    the stream ends); without it, one is started here when worth it."""
    batches = prep.batches(BATCH)

    def done(result: tuple[str, list[int], int | None], n: int) -> str:
        text, counts, earliest = result
        tally.add(counts, earliest)
        if progress is not None:
            progress(n)
        return text

    if threads <= 1 or prep.total <= BATCH:
        for b in batches:
            yield done(sign_units(b, prep.ctx), b.units)
        return
    if pool is None:
        with worker_pool(threads) as own:
            yield from sign_stream(prep, threads, tally, progress, own)
        return
    ctx, ders = _portable(prep.ctx)
    token = os.urandom(8)
    pending: collections.deque[tuple[int, AsyncResult]] = collections.deque()
    for b in batches:
        pending.append((b.units, pool.apply_async(_sign_batch, (token, ctx, ders, b))))
        while len(pending) > 3 * threads:
            n, res = pending.popleft()
            yield done(res.get(), n)
    while pending:
        n, res = pending.popleft()
        yield done(res.get(), n)
    pool.close()  # done with it: the workers exit (and free their memory) before any verifying


class VerifyRefused(UnsafeRefused):
    """The signed zone failed verification, so it was not written; `findings` says why."""

    def __init__(self, message: str, findings: list[Finding]):
        super().__init__(message)
        self.findings = findings


@dataclass(frozen=True)
class SignFileResult:
    """What `sign_file` did: the CLI prints it (`--json` as `to_json()`)."""

    zone: str  # origin, absolute text
    output: str  # the path written
    signatures: int
    denial: Denial  # the chain signed with (NSEC, or NSEC3 and its parameters)
    keys: list[dict[str, object]]  # per published key: tag, algorithm, flags, file, signatures
    warnings: list[str]
    verified: bool  # verified before it was written, and passed
    resign_at: int | None  # epoch seconds: re-sign by then (`signer.resign_at`); None: no RRSIGs

    @property
    def nsec3(self) -> bool:
        return self.denial.nsec3 is not None

    def to_json(self) -> dict[str, object]:
        p = self.denial.nsec3
        return {
            "zone": self.zone, "output": self.output, "signatures": self.signatures,
            "denial": self.denial.kind,
            "nsec3": None if p is None else {
                "iterations": p.iterations, "salt": p.salt.hex().upper() or None,
                "opt_out": p.opt_out,
            },
            "keys": self.keys, "warnings": self.warnings, "verified": self.verified,
            "resign_at": self.resign_at,
        }


class Phases(Protocol):
    """Progress by phase (read, prepare, sign, verify): `phase(name, total)` is a context
    manager yielding a callback taking the number of units done (total None: no count)."""

    def phase(self, name: str, total: int | None = None) -> contextlib.AbstractContextManager[
            Callable[[int], None]]: ...


class NoPhases:
    """No progress shown."""

    @contextlib.contextmanager
    def phase(self, name: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
        yield lambda n: None


def parse_salt(text: str) -> bytes:
    """Hex salt, or '-' / '' for none."""
    if text in ("-", ""):
        return b""
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise InputError(f"bad salt {text!r}: use hex digits or '-'") from None


def _word(finding: Finding) -> str:
    """A signer finding as the sign command words it: naming the flag that asked for the work."""
    if finding.code == "CDS_NO_ACTIVE_KSK":
        return f"--cds: {finding.message}"
    if finding.code == "SIGN_DENIAL_CHANGED":
        return f"{finding.message}, as asked (without --nsec, --nsec3 or NSEC3 options the " \
               "input's chain is kept)"
    return finding.message


def _nsec3_warnings(params: nsec3hash.Nsec3Params) -> list[str]:
    warnings = []
    if params.iterations > 0:
        warnings.append(f"NSEC3 iterations {params.iterations}: RFC 9276 recommends 0")
    if params.salt:
        warnings.append("NSEC3 salt set: RFC 9276 recommends none")
    if params.opt_out:
        warnings.append("NSEC3 opt-out: insecure delegations are not proven (RFC 9276 §3.1)")
    return warnings


def _verifier(
    prep: signer.Prepared, out_path: str, at: int, threads: int, phases: Phases
) -> Callable[[str], None]:
    """Never publish bogus: the check of what is about to replace OUT, at the time it goes
    live; raises VerifyRefused with the errors."""
    from sigchain.services import verifying  # it imports this module's default_threads

    def check(tmp_path: str) -> None:
        with phases.phase("verify"), verifying.Verifier(threads) as verifier:
            try:
                _, report = verifier.read_and_verify(tmp_path, prep.origin.to_text(), at,
                                                     not prep.ksk_signs_dnskey, require_ns=False,
                                                     records=False, learn=False)
            except InputError as exc:  # what we wrote does not read back: a bug of ours,
                # told of the output (the temp file it names is gone once this is raised)
                where = f"line {exc.line}: " if exc.line is not None else ""
                raise VerifyRefused(f"the signed zone could not be read back for its check "
                                    f"({where}{exc.message}); {out_path} not written", []) from None
            assert report is not None
        errs = [f for f in report.findings if f.severity is Severity.ERROR]
        if errs:
            raise VerifyRefused(f"the signed zone failed verification; {out_path} not written", errs)

    return check


def check_window(window: SigWindow, now: int, force: bool) -> None:
    """Before any work: refuse a signature window not valid at the signing moment `now`
    (inception in the future, or some expiration already past) unless `force`; signing
    such a zone takes the whole run only to give signatures validators reject."""
    latest = window.inception + window.validity
    earliest = latest - window.jitter
    if force or window.inception <= now < earliest:
        return
    if window.inception > now:
        why = f"inception {timefmt.format_utc(window.inception)} is in the future"
    elif latest <= now:
        why = f"expiration {timefmt.format_utc(latest)} is already past"
    else:
        why = f"with --jitter, expirations from {timefmt.format_utc(earliest)} are already past"
    raise UnsafeRefused(f"signature window not valid now ({timefmt.format_utc(now)}): {why}; "
                        "validators would reject the signatures (--force signs anyway)")


def check_output(path: str) -> None:
    """Before any work: the output's folder exists and can be written (exit 3 otherwise)."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise OperationalError(f"cannot write: no such directory {folder}", file=path)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OperationalError(f"cannot write: permission denied in {folder}", file=path)
    if os.path.isdir(path):
        raise OperationalError("cannot write: is a directory", file=path)


def _denial(
    rrsets: list[RRsetRec], zorigin: dns.name.Name, request: DenialRequest, force: bool,
) -> tuple[Denial, list[str]]:
    """The chain to sign with: `request` resolved against the input's own chain; with the
    warnings to print."""
    chosen, found = denialcore.choose(request, denialcore.found_denial(rrsets, key_of(zorigin)))
    warnings = [_word(f) for f in found]
    if chosen.nsec3 is not None:
        try:
            DEFAULT_POLICY.check_nsec3_iterations(chosen.nsec3.iterations, force)
        except UnsafeRefused as exc:
            if request.iterations is not None:
                raise
            raise UnsafeRefused(f"{exc} (kept from the input's NSEC3 chain; --iterations 0 "
                                "changes it)") from None
        warnings += _nsec3_warnings(chosen.nsec3)
    return chosen, warnings


KEEP_DENIAL = DenialRequest()  # the input's own chain; NSEC for an unsigned zone


def _key_policy(keydir: str, origin: dns.name.Name) -> KeyPolicy | None:
    """The policy `keys run` runs the zone by (None: its keys are not run by sigchain)."""
    from sigchain.services import keystate

    return keystate.load(keydir, origin.to_text()).policy


def cds_options(policy: KeyPolicy | None) -> dict[str, Any]:
    """The CDS digests and CDNSKEY the key policy asks for (cds-digest-types, cdnskey)."""
    if policy is None:
        return {}
    return {"cds_digests": policy.cds_digest_types, "cdnskey": policy.cdnskey}


# Records the signer makes, with TTLs of its own (the DNSKEY RRset's is the policy's dnskey-ttl).
_SIGNER_TTLS = frozenset((dns.rdatatype.DNSKEY, dns.rdatatype.CDS, dns.rdatatype.CDNSKEY,
                          dns.rdatatype.RRSIG))


def check_max_zone_ttl(rrsets: Iterable[RRsetRec], policy: KeyPolicy | None, path: str) -> None:
    """As BIND's dnssec-policy, refuse a zone with a TTL above the policy's max-zone-ttl: the
    rolls are timed on it, so such a record would stay cached, signed by a key already gone."""
    if policy is None:
        return
    over = [r for r in rrsets if r.ttl > policy.max_zone_ttl and r.rdtype not in _SIGNER_TTLS]
    if over:
        r = max(over, key=lambda r: r.ttl)
        raise InputError(f"TTL {r.ttl} of {r.owner} {dns.rdatatype.to_text(r.rdtype)} "
                         f"exceeds the key policy's max-zone-ttl {policy.max_zone_ttl} "
                         f"({len(over)} RRset(s) over it): the key rolls are timed on it",
                         file=path)


def sign_file(
    zonefile_path: str,
    keydir: str,
    *,
    now: int,
    inception: int,
    validity: int,
    jitter: int = 0,
    origin: str | None = None,
    output: str | None = None,
    denial: DenialRequest = KEEP_DENIAL,
    serial: str = "keep",
    cds: bool = False,
    deterministic: bool = False,
    force: bool = False,
    verify: bool = True,
    threads: int | None = None,
    progress: Phases | None = None,
) -> SignFileResult:
    """Sign ZONEFILE_PATH with the keys for its origin in KEYDIR (BIND K-files) and write the
    signed zone to OUTPUT (default ZONEFILE_PATH + ".signed") atomically: what `sigchain sign`
    does. Check the window and the output first, read the zone, select the keys valid at `now`,
    sign over `threads` worker processes (default every core), verify the result at max(now,
    inception) unless `verify` is false (never publish bogus: `VerifyRefused`, with the
    findings, and nothing written), then rename it into place.

    Times are epoch seconds; `validity` and `jitter` are durations in seconds (RRSIG
    expiration = inception + validity - a per-RRset share of jitter); a window not valid at
    `now` is refused unless `force`. The denial is `denial` resolved against the input's own
    chain (kept unless the request changes it; NSEC for an unsigned input by default);
    iterations above the policy limit are refused unless `force`. `serial` is keep |
    increment | unixtime. `deterministic` uses RFC 6979 ECDSA (pass jitter 0 for reproducible
    output). `progress` shows the phases. The result's `resign_at` is when the zone must next
    be re-signed: the earliest expiration minus validity/4 (dnssec-signzone's default -i).
    Raises InputError (exit 2), UnsafeRefused (exit 4) or OperationalError (exit 3).
    """
    window = SigWindow(inception, validity, jitter, os.urandom(16))
    check_window(window, now, force)
    out_path = output or zonefile_path + ".signed"
    check_output(out_path)
    phases = progress or NoPhases()
    nthreads = threads if threads is not None else default_threads()
    try:
        big = os.path.getsize(zonefile_path) >= EARLY_POOL_BYTES
    except OSError:
        big = False  # reading it says what is wrong
    # For a big zone, the workers start while this process reads and prepares it.
    with worker_pool(nthreads if big else 1) as pool:
        with phases.phase("read"):
            zorigin, rrsets, warnings = zonefile.load_records(zonefile_path, origin)
        key_policy = _key_policy(keydir, zorigin)
        check_max_zone_ttl(rrsets, key_policy, zonefile_path)
        chosen, denial_warnings = _denial(rrsets, zorigin, denial, force)
        warnings = denial_warnings + warnings
        keys = keystore.load_zone_keys(keydir, zorigin, force=force)
        if deterministic and any(isinstance(k.private, TokenKey) for k in keys):
            warnings.append("--deterministic: keys in a PKCS#11 token sign with the token's "
                            "own nonces, so their signatures differ from run to run")
        opts = signer.SignOptions(window, chosen.nsec3, cds, deterministic, serial, force,
                                  cds_delete=key_policy is not None and key_policy.insecure,
                                  **cds_options(key_policy))
        with phases.phase("prepare"):
            prep = signer.prepare(rrsets, zorigin, keys, opts, now)
        del rrsets
        warnings += [_word(w) for w in prep.warnings]
        tally = Tally([0] * len(prep.ctx.keys))
        header = f"; signed by sigchain\n$ORIGIN {prep.origin.to_text()}\n"
        check = _verifier(prep, out_path, max(now, inception), nthreads, phases) if verify else None
        with phases.phase("sign", prep.total) as advance:
            stream = sign_stream(prep, nthreads, tally, advance, pool)
            zonefile.write_atomic(out_path, itertools.chain([header], stream), before_rename=check)
    resign = None if tally.earliest is None else signer.resign_at(tally.earliest, window)
    return SignFileResult(
        prep.origin.to_text(), out_path, sum(tally.counts), chosen,
        key_summary(prep.published, prep.ctx.keys, tally.counts), warnings, verify, resign,
    )
