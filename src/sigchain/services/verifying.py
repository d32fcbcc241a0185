"""Zone verification with the reading and the signature checks spread over processes.

core/verify plans every check and hands the signatures to a `Checker`; here that checker is
a pool of worker processes, started only when a zone has enough signatures to pay for it.
A big zone file is read and verified in parts instead (`Verifier.read_and_verify`).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Sequence
from multiprocessing.pool import Pool
from typing import Any

from dns.rdatatype import RdataType

from sigchain.core.verify import verifier
from sigchain.core.verify.known import known_set
from sigchain.edge import forkserver, zonefile, zonesplit
from sigchain.edge.zonefile import WireZone
from sigchain.services import partverify
from sigchain.services.reloadmem import collector_held_off
from sigchain.services.signing import default_threads

BATCH = 1000  # signatures per task
POOL_MIN = verifier.CHUNK  # fewer signatures than one chunk are checked in this process
PARALLEL_READ = 8 << 20  # bytes: a smaller file is read in one process
# bytes per part when the parts are read one at a time (`alone`): what the reading process
# holds parsed at once is about 30 times this (a 100k-name signed zone is ~66 MB)
ALONE_PART = 4 << 20


def _warm() -> None:
    """Worker start: the imports the first batch would otherwise wait for; Ctrl-C is the
    parent's to handle (it ends the pool)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    verifier.check_jobs([], [])


class _PoolChecker:
    def __init__(self, threads: int):
        self.threads = threads
        self.pool: Pool | None = None

    def start(self) -> Pool:
        if self.pool is None:
            # forkserver: workers start small, not as copies of this process and its zone.
            self.pool = forkserver.context().Pool(self.threads, initializer=_warm)
        return self.pool

    def __call__(self, dnskeys: Sequence[bytes], jobs: Sequence[verifier.Job]) -> Callable[[], list[int]]:
        if self.pool is None:
            if len(jobs) < POOL_MIN:
                return verifier.serial_checker(dnskeys, jobs)
            self.start()
        assert self.pool is not None
        keys = list(dnskeys)
        pending = [
            self.pool.apply_async(verifier.check_jobs, (keys, jobs[i : i + BATCH]))
            for i in range(0, len(jobs), BATCH)
        ]
        return lambda: [hit for r in pending for hit in r.get()]

    def close(self, failed: bool = False) -> None:
        """End the workers; `failed`: after Ctrl-C (see `forkserver.stop`)."""
        if self.pool is not None:
            forkserver.stop(self.pool, failed)
            self.pool = None


class Verifier:
    """verifier.verify_records with the signature checks over `threads` processes (default:
    every core). The pool starts when a zone first has enough signatures, or at once with
    `start_now` (a caller expecting a large zone can then read it while the workers start)."""

    def __init__(self, threads: int | None = None, start_now: bool = False):
        n = self.threads = threads if threads is not None else default_threads()
        self.checker = _PoolChecker(n) if n > 1 else None
        if start_now and self.checker is not None:
            self.checker.start()

    def read_and_verify(
        self, path: str, origin: str | None, now: int, ignore_ksk: bool = False, *,
        require_ns: bool = True, refuse_cname_clash: bool = True, records: bool = True,
        only_signed: bool = False, served: bool = False,
        sink: Callable[[list[Any]], object] | None = None,
        known: bytes = b"", alone: int | None = None, learn: bool = True,
        verified: Callable[[verifier.VerifyReport | None], object] | None = None,
    ) -> tuple[WireZone, verifier.VerifyReport | None]:
        """Read a zone file (`zonefile.load_wire`) and verify it: (the zone, with its RRsets
        when `records`, or with `served`, maybe as `WireZone.served`; its report, None when
        `only_signed` and it is not signed). A big
        file is read and verified in parts by one process per core (services/partverify):
        the same records, warnings, errors and findings; a file that cannot be cut into
        parts of whole owners, or whose parts find an error, is read whole. The crypto of
        the signatures in `known` (core/verify/known: an earlier report's `verified_digests`)
        is skipped; without `learn` the report's `verified_digests` stay empty (a one-off
        check has no next load to give them to). With `alone` (a niceness) and a `sink`, a big file's parts are read one
        at a time by one process at that niceness (partverify.read_and_verify_alone: the
        memory of a reload beside the answering workers)."""
        if alone is not None and sink is not None and _at_least(path, PARALLEL_READ):
            zorigin = zonefile.choose_origin(path, origin)
            cuts = zonesplit.plan(path, zorigin, max(2, os.path.getsize(path) // ALONE_PART))
            if cuts is not None:
                done = partverify.read_and_verify_alone(
                    path, zorigin, cuts, now, ignore_ksk, require_ns=require_ns,
                    refuse_cname_clash=refuse_cname_clash, only_signed=only_signed, known=known,
                    nice=alone, sink=sink, verified=verified)
                if done is not None:
                    return done
        elif self.threads > 1 and _at_least(path, PARALLEL_READ):
            zorigin = zonefile.choose_origin(path, origin)
            cuts = zonesplit.plan(path, zorigin, self.threads)
            if cuts is not None:
                parts = partverify.Parts(path, zorigin, cuts, refuse_cname_clash)
                try:
                    done = partverify.read_and_verify(parts, now, ignore_ksk, require_ns=require_ns,
                                                      records=records, only_signed=only_signed,
                                                      served=served, sink=sink, known=known,
                                                      learn=learn)
                finally:
                    parts.close()
                if done is not None:
                    return done
        with collector_held_off():  # (as in partverify: millions of objects, no garbage)
            zone = zonefile.load_wire(path, origin, require_ns=require_ns,
                                      refuse_cname_clash=refuse_cname_clash)
            signed = any(r.rdtype in (RdataType.DNSKEY, RdataType.RRSIG) for r in zone.rrsets)
            return zone, self.verify(zone, now, ignore_ksk, known, learn) if signed or not only_signed else None

    def verify(self, zone: WireZone, now: int, ignore_ksk: bool = False,
               known: bytes = b"", learn: bool = True) -> verifier.VerifyReport:
        checker: verifier.Checker = self.checker if self.checker is not None else verifier.serial_checker
        return verifier.verify_records(zone.rrsets, zone.origin, now, ignore_ksk, checker,
                                       known=known_set(known), learn=learn)

    def close(self, failed: bool = False) -> None:
        if self.checker is not None:
            self.checker.close(failed)

    def __enter__(self) -> Verifier:
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        self.close(failed=isinstance(kind, type) and issubclass(kind, KeyboardInterrupt))


def _at_least(path: str, size: int) -> bool:
    try:
        return os.path.getsize(path) >= size
    except OSError:
        return False  # the reader says why


def verify_wire(zone: WireZone, now: int, ignore_ksk: bool = False,
                threads: int | None = None) -> verifier.VerifyReport:
    """Verify a zone already read (e.g. transferred by AXFR), on the pool."""
    with Verifier(threads) as v:
        return v.verify(zone, now, ignore_ksk)
