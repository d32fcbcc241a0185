"""Reading a served zone's signed file (a mixin of `AuthoritativeService`): parse, verify
and index it (`load_checked`), tell whether it changed since it was loaded (its stamp and a
hash of its bytes), and, for a reload beside the answering workers, let go of the old
version once the new one verifies, reading it back from its file, held open, if the reload
then fails (issue 14: a reload's memory)."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from sigchain.core.serve.fromwire import WireIndexer
from sigchain.core.serve.index import ZoneIndex
from sigchain.core.verify.report import VerifyReport
from sigchain.errors import SigchainError, UnsafeRefused
from sigchain.findings import Severity
from sigchain.services import verifying
from sigchain.services.reloadmem import collector_held_off
from sigchain.services.serveconfig import ZoneConfig
from sigchain.services.verifying import Verifier

if TYPE_CHECKING:
    from sigchain.services.authoritative import AuthoritativeService

log = logging.getLogger("sigchain.serve")

# The niceness of a reload's thread when forked workers answer every query: with the CPUs
# busy answering, the load gets about a seventh of their time (Linux nice is per thread), so
# answering keeps most of its speed and a reload under a flood still ends.
RELOAD_NICE = 5


def file_digest(path: str) -> bytes | None:
    """A hash of the file's bytes: a reload of the same content needs no re-verification
    (same content, same verdict). None when it cannot be read (the load will say why)."""
    h = hashlib.blake2b(digest_size=32)
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    except OSError:
        return None
    return h.digest()


def file_stamp(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


# Errors that only say the signatures' window does not hold `now`: `serve --force` may serve
# such a zone (restoring service from the last known zone), loudly; never any other error.
OUT_OF_WINDOW = frozenset({"RRSIG_EXPIRED", "RRSIG_NOT_YET_VALID"})


def load_checked(spec: ZoneConfig, now: int, force: bool = False, known: bytes = b"",
                 alone: int | None = None,
                 verified: Callable[[VerifyReport | None], object] | None = None,
                 ) -> tuple[ZoneIndex, list[str], VerifyReport | None]:
    """Parse, verify (if signed) and index one zone file; raise if it must not be served.
    The fast wire reader feeds both the verifier and the index (see ZoneIndex.from_wire).
    A big file is read and its signatures checked over every core (Verifier.read_and_verify),
    or with `alone` (a niceness) by one process reading its parts one at a time (a reload
    beside the answering workers: their CPU, and the reload's memory). The crypto of the
    signatures in `known` (the last load's report's `verified_digests`) is skipped; their
    fields and validity window are checked as any other's. `force` serves a zone whose only errors are
    signatures outside their window, with a warning that validators will find it bogus.
    Returns the index, the warnings and the report (None: not signed)."""
    indexer = WireIndexer(spec.name)  # a big file's records are indexed as they arrive
    # validators ignore the SEP flag: so do we (dnssec-verify -z)
    with Verifier(1 if alone is not None else None) as verifier:
        zone, report = verifier.read_and_verify(spec.path, spec.name.to_text(), now, ignore_ksk=True,
                                                only_signed=True, served=True,
                                                sink=indexer.add_served, known=known, alone=alone,
                                                verified=verified)
    warnings = list(zone.warnings)
    if report is not None:
        errors = [f for f in report.findings if f.severity is Severity.ERROR]
        if errors and force and {f.code for f in errors} <= OUT_OF_WINDOW:
            warnings.append(
                f"zone {zone.origin}: SERVED WITH --force although {len(errors)} signature(s) "
                "are outside their validity window: every validating resolver finds it bogus "
                "until it is re-signed")
            errors = []
        if errors:
            errors.sort(key=lambda f: f.code in OUT_OF_WINDOW)  # the errors --force cannot pass first
            shown = "; ".join(
                f"{f.code} {f.name or ''}{'/' + f.rdtype if f.rdtype else ''}: {f.message}"
                for f in errors[:3]
            )
            more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
            raise UnsafeRefused(
                f"zone {zone.origin} fails verification, not served: {shown}{more}", file=spec.path
            )
    else:
        warnings.append(f"zone {zone.origin} is unsigned: served without DNSSEC")
    with collector_held_off():
        if indexer.keys:
            return indexer.index(), warnings, report
        if zone.served is not None:
            return ZoneIndex.from_served(zone.origin, zone.served), warnings, report
        return ZoneIndex.from_wire(zone.origin, zone.rrsets), warnings, report




class ZoneFiles:
    """The zone files' side of loading and reloading (see module doc)."""

    def _remember(self: AuthoritativeService, spec: ZoneConfig, stamp: tuple[int, int, int] | None,
                  digest: bytes | None) -> None:
        """Keep what identifies the file just loaded — unless it changed while it was hashed
        and read (the digest might then not be of what is served): then nothing, so the next
        reload reads and verifies it again."""
        if stamp is None or file_stamp(spec.path) != stamp:
            stamp = digest = None
        self._stamps[spec.name], self._digests[spec.name] = stamp, digest
        self._hold(spec, stamp)

    def _hold(self: AuthoritativeService, spec: ZoneConfig, stamp: tuple[int, int, int] | None) -> None:
        """Keep the file of a version `_load_file` may let go of open: should the reload
        then fail, that version is read back from it — the same bytes, even once the path
        names a new file (replaced by a rename, as `sigchain sign` writes)."""
        held = self._held.pop(spec.name, None)
        if held is not None:
            os.close(held)
        if (stamp is None or spec.inline or spec.allow_transfer.entries or not self._workers.count
                or stamp[1] < verifying.PARALLEL_READ):
            return
        try:
            fd = os.open(spec.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return
        st = os.fstat(fd)
        if (st.st_mtime_ns, st.st_size, st.st_ino) != stamp:
            os.close(fd)
            return
        self._held[spec.name] = fd

    def _restore(self: AuthoritativeService, spec: ZoneConfig, let_go: int) -> bool:
        """After a failed reload that let go of the version served (serial `let_go`): read
        it back from its held file, checked to be the bytes loaded then (their digest) and
        verified again; whether it is served again."""
        fd, digest = self._held.get(spec.name), self._digests.get(spec.name)
        if fd is None or digest is None:
            return False
        held = f"/proc/{os.getpid()}/fd/{fd}"
        if file_digest(held) != digest:
            log.warning("zone %s: the file of serial %d was rewritten in place: it cannot be "
                        "read back", spec.name, let_go)
            return False
        try:
            index, _, _ = load_checked(dataclasses.replace(spec, path=held), self.clock.now(),
                                       self.force, self._verified.get(spec.name, b""),
                                       RELOAD_NICE if self._workers.count else None)
        except SigchainError as exc:
            log.warning("zone %s: serial %d could not be read back: %s", spec.name, let_go, exc)
            return False
        self.indexes[spec.name] = index
        self._publish()
        return True

    def _load_file(self: AuthoritativeService, spec: ZoneConfig) -> tuple[ZoneIndex, list[str], VerifyReport | None, int | None]:
        """`load_checked` for a reload: beside answering workers the file is read by one
        process at a lower priority; and once the new version has verified, the main process
        lets go of the old one before it indexes the new (the workers answer from their own
        copy until new ones are forked): its memory is unmapped instead of copied page by
        page as the new index's allocations, and then its release, write to pages shared
        with the workers (issue 14: a reload's peak 2.4x the steady memory with both held,
        2.0x without). Not when the zone's transfers are allowed (the IXFR difference needs
        both versions). The last value returned: the serial of the version let go, or None.
        Should the index then not be made (the file changed between the readings, or the
        reading process killed), the old version is read back from its file, held open since
        it was loaded (`_hold`, `_restore`), and the reload fails as any other; only when that
        cannot be (the old file rewritten in place) is the file loaded again at once; if that
        fails too, the workers serve the old version until the next good reload, and the
        error says that a worker restarted meanwhile would not serve the zone."""
        alone = RELOAD_NICE if self._workers.count else None
        known = self._verified.get(spec.name, b"")
        let_go: list[int] = []

        def verified(report: VerifyReport | None) -> None:
            old = self.indexes.get(spec.name)
            if (old is None or report is None or spec.allow_transfer.entries or alone is None
                    or any(f.severity is Severity.ERROR for f in report.findings)):
                return
            let_go.append(old.serial)
            del old
            self.let_go.add(spec.name)  # the workers keep theirs (services.workersync)
            self.indexes.pop(spec.name)
            self._publish()  # the zone sets held the old version too

        try:
            index, warnings, report = load_checked(spec, self.clock.now(), self.force, known,
                                                   alone, verified)
        except SigchainError as exc:
            if not let_go or self._restore(spec, let_go[0]):
                raise  # (restored: the reload failed as any other, the old version served)
            log.warning("zone %s: %s; reading it again", spec.name, exc)
            try:
                index, warnings, report = load_checked(spec, self.clock.now(), self.force,
                                                       known, alone)
            except SigchainError as again:
                raise type(again)(
                    f"{again}; the workers answer from serial {let_go[0]} until a reload "
                    "succeeds, but a worker restarted meanwhile would not serve the zone",
                    file=again.file, line=again.line) from None
        return index, warnings, report, let_go[0] if let_go else None

