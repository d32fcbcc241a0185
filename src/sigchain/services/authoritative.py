"""The authoritative server: zone files → verified `ZoneIndex`es → `ZoneSet` → listeners.

Zones are loaded and verified off the event loop; the served `ZoneSet` is swapped in one
assignment, so a query sees either the old set or the new one (SIGHUP reload). A zone that
fails to parse or verify is not loaded and its previous version stays served (DESIGN.md
principle 6: never publish bogus).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Sequence
from dataclasses import dataclass

import dns.exception
import dns.name
from dns.rdatatype import RdataType

from sigchain.clock import SYSTEM, Clock
from sigchain.core.answer import DEFAULT_UDP_SIZE, ZoneIndex, ZoneSet, respond
from sigchain.core.verify import verify_zone
from sigchain.edge.server import DEFAULT_IDLE_TIMEOUT, ListenAddress, Listeners
from sigchain.edge.zonefile import load_zone
from sigchain.errors import InputError, SigchainError, UnsafeRefused
from sigchain.findings import Severity

log = logging.getLogger("sigchain.serve")


@dataclass(frozen=True)
class ZoneSpec:
    """A zone to serve: its name and the signed zone file."""

    name: dns.name.Name
    path: str


def parse_zone_spec(text: str) -> ZoneSpec:
    """`NAME=FILE` as given to `--zone`."""
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise InputError(f"bad --zone {text!r}: expected NAME=SIGNEDFILE")
    try:
        origin = dns.name.from_text(name)
    except dns.exception.DNSException as exc:
        raise InputError(f"bad zone name {name!r}: {exc}") from None
    return ZoneSpec(origin, path)


def _stamp(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def load_checked(spec: ZoneSpec, now: int) -> tuple[ZoneIndex, list[str]]:
    """Parse, verify (if signed) and index one zone file; raise if it must not be served."""
    zone = load_zone(spec.path, spec.name.to_text())
    signed = any(
        rds.rdtype in (RdataType.DNSKEY, RdataType.RRSIG) for rs in zone.nodes.values() for rds in rs
    )
    warnings = list(zone.warnings)
    if signed:
        # Validators ignore the SEP flag, so neither do we (as dnssec-verify -z).
        report = verify_zone(zone.nodes, zone.origin, now, ignore_ksk=True)
        errors = [f for f in report.findings if f.severity is Severity.ERROR]
        if errors:
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
    return ZoneIndex.build(zone.origin, zone.nodes), warnings


class AuthoritativeService:
    """Serves `specs` on `listens` until stopped; SIGHUP reloads, SIGTERM/SIGINT stop."""

    def __init__(
        self,
        specs: Sequence[ZoneSpec],
        listens: Sequence[ListenAddress],
        *,
        clock: Clock = SYSTEM,
        udp_size: int = DEFAULT_UDP_SIZE,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    ):
        names = [s.name for s in specs]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise InputError(f"zone given twice: {', '.join(sorted(n.to_text() for n in dupes))}")
        if not specs:
            raise InputError("no zone to serve: give --zone NAME=SIGNEDFILE")
        self.specs = list(specs)
        self.listens = list(listens)
        self.clock = clock
        self.zones = ZoneSet(udp_size=udp_size)
        self.idle_timeout = idle_timeout
        self._stamps: dict[dns.name.Name, tuple[int, int, int] | None] = {}
        self._reloading: asyncio.Task[None] | None = None
        self._again = False

    def handle(self, wire: bytes, tcp: bool) -> bytes | None:
        """The listeners' handler: the current zone set answers."""
        return respond(self.zones, wire, tcp=tcp)

    def load_all(self) -> None:
        """First load: every zone must parse and verify, or the server does not start."""
        zones = self.zones
        for spec in self.specs:
            stamp = _stamp(spec.path)
            index, warnings = load_checked(spec, self.clock.now())
            for w in warnings:
                log.warning("%s", w)
            zones = zones.replace(index)
            self._stamps[spec.name] = stamp
            log.info("loaded zone %s serial %d from %s (%s)", spec.name, index.serial, spec.path, index.denial)
        self.zones = zones

    def reload(self) -> dict[str, str]:
        """Reload changed zone files; a failing zone keeps its old version. Thread-safe
        against the loop: builds a new set and swaps it in one assignment."""
        outcome: dict[str, str] = {}
        zones = self.zones
        for spec in self.specs:
            stamp = _stamp(spec.path)
            if stamp is not None and stamp == self._stamps.get(spec.name):
                outcome[spec.name.to_text()] = "unchanged"
                continue
            try:
                index, warnings = load_checked(spec, self.clock.now())
            except SigchainError as exc:
                old = self.zones.zones.get(spec.name)
                kept = f"serial {old.serial} stays served" if old else "not served"
                log.error("reload of zone %s failed: %s; %s", spec.name, exc, kept)
                outcome[spec.name.to_text()] = f"failed: {exc}"
                continue
            for w in warnings:
                log.warning("%s", w)
            zones = zones.replace(index)
            self._stamps[spec.name] = stamp
            log.info("reloaded zone %s serial %d", spec.name, index.serial)
            outcome[spec.name.to_text()] = f"serial {index.serial}"
        self.zones = zones
        return outcome

    async def _reload_task(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._again = False
            await loop.run_in_executor(None, self.reload)
            if not self._again:
                return

    def request_reload(self) -> None:
        """SIGHUP: reload in a worker thread; a SIGHUP during a reload runs one more."""
        if self._reloading is not None and not self._reloading.done():
            self._again = True
            return
        log.info("SIGHUP: reloading zones")
        self._reloading = asyncio.get_running_loop().create_task(self._reload_task())

    async def run(self) -> None:
        """Bind, serve until SIGTERM/SIGINT, release the sockets."""
        loop = asyncio.get_running_loop()
        listeners = Listeners(self.handle, self.idle_timeout)
        await listeners.start(self.listens)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        log.info("ready: %d zone(s) on %s", len(self.zones.zones), ", ".join(map(str, self.listens)))
        try:
            await stop.wait()
        finally:
            log.info("stopping")
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            await listeners.close()
            if self._reloading is not None:
                await asyncio.gather(self._reloading, return_exceptions=True)
