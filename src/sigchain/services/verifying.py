"""Zone verification with the reading and the signature checks spread over processes.

core/verify plans every check and hands the signatures to a `Checker`; here that checker is
a pool of worker processes, started only when a zone has enough signatures to pay for it.
The same workers first read a big zone file in parts (`Verifier.read`, edge/zonesplit).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable, Sequence
from multiprocessing.pool import Pool

from sigchain.core.verify import verifier
from sigchain.edge import zonefile, zonesplit
from sigchain.edge.fastparse import check_apex, ignored_warnings
from sigchain.edge.signedparse import Part
from sigchain.edge.zonefile import WireZone
from sigchain.services.signing import default_threads

BATCH = 1000  # signatures per task
POOL_MIN = verifier.CHUNK  # fewer signatures than one chunk are checked in this process
PARALLEL_READ = 8 << 20  # bytes: a smaller file is read in one process


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
            self.pool = multiprocessing.get_context("forkserver").Pool(self.threads, initializer=_warm)
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

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
            self.pool = None


class Verifier:
    """verifier.verify_records with the signature checks over `threads` processes (default:
    every core). The pool starts when a zone first has enough signatures, or at once with
    `start_now` (a caller expecting a large zone can then read it while the workers start)."""

    def __init__(self, threads: int | None = None, start_now: bool = False):
        n = threads if threads is not None else default_threads()
        self.checker = _PoolChecker(n) if n > 1 else None
        if start_now and self.checker is not None:
            self.checker.start()

    def read(self, path: str, origin: str | None = None, *, require_ns: bool = True,
             refuse_cname_clash: bool = True) -> WireZone:
        """`zonefile.load_wire`, with a big file read in parts by the workers (each part a
        stretch of whole owners; the same RRsets, warnings and errors as one reader gives:
        a file that cannot be cut so, or whose parts find any error, is read whole)."""
        def whole() -> WireZone:
            return zonefile.load_wire(path, origin, require_ns=require_ns,
                                      refuse_cname_clash=refuse_cname_clash)

        checker = self.checker
        if checker is None or not _at_least(path, PARALLEL_READ):
            return whole()
        zorigin = zonefile.choose_origin(path, origin)
        cuts = zonesplit.plan(path, zorigin, checker.threads)
        if cuts is None:
            return whole()
        pool = checker.start()
        pending = [pool.apply_async(zonesplit.read_part, (path, zorigin.to_text(), cut, refuse_cname_clash))
                   for cut in cuts]
        parts = [p.get() for p in pending]
        if not _whole_owners(parts):
            return whole()
        check_apex(any(p.has_soa for p in parts), not require_ns or any(p.has_ns for p in parts),
                   zorigin, path)
        ignored = [line for p in parts for line in p.ignored]
        return WireZone(zorigin, [r for p in parts for r in p.rrsets], path,
                        ignored_warnings(path, ignored))

    def verify(self, zone: WireZone, now: int, ignore_ksk: bool = False) -> verifier.VerifyReport:
        checker: verifier.Checker = self.checker if self.checker is not None else verifier.serial_checker
        return verifier.verify_records(zone.rrsets, zone.origin, now, ignore_ksk, checker)

    def close(self) -> None:
        if self.checker is not None:
            self.checker.close()

    def __enter__(self) -> Verifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _at_least(path: str, size: int) -> bool:
    try:
        return os.path.getsize(path) >= size
    except OSError:
        return False  # the reader says why


def _whole_owners(parts: Sequence[Part | None]) -> bool:
    """Every part was read, and no owner has records in two parts (their RRsets would have
    to be merged: such a file is read whole)."""
    seen: set[tuple[bytes, ...]] = set()
    for part in parts:
        if part is None:
            return False
        keys = {r.key for r in part.rrsets}
        if not seen.isdisjoint(keys):
            return False
        seen |= keys
    return True


def verify_wire(zone: WireZone, now: int, ignore_ksk: bool = False, threads: int | None = None) -> verifier.VerifyReport:
    with Verifier(threads) as v:
        return v.verify(zone, now, ignore_ksk)
