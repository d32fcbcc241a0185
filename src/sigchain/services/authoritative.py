"""The authoritative server: zone files → verified `ZoneIndex`es → one `ZoneSet` per listen
address → listeners; zone transfers out, NOTIFY in and out (see `services.xfrout`).

Zones are loaded and verified off the event loop; what the handlers read (every listener's
`ZoneSet` and every zone's IXFR history) is swapped in one assignment, so a query or a
transfer sees either the old versions or the new ones (SIGHUP reload). A zone that fails to
parse or verify is not loaded and its previous version stays served (DESIGN.md principle 6:
never publish bogus). A reload that brings a zone a new serial records the difference from
the old version (for IXFR, RFC 1995) and NOTIFYs the zone's also-notify targets (RFC 1996).
With UDP workers (the default on more than one CPU) every query, UDP or TCP, is answered by
forked workers (`edge.udpworkers`): a reload's load in the main process delays no answer;
an inline zone's change is then sent to the workers as a patch of the index they hold, any
other change has new workers forked to replace the old ones (`services.workersync`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from collections.abc import Callable
from typing import TypeVar

import dns.exception
import dns.name

from sigchain.clock import SYSTEM, Clock
from sigchain.core.serve.cache import CacheBudget, ResponseCache
from sigchain.core.serve.index import ZoneIndex, ZoneSet
from sigchain.core.serve.transfer import History, diff, record_count, serial_gt
from sigchain.edge.logthrottle import LogThrottle, throttle
from sigchain.edge.notify import send_notify
from sigchain.edge.server import Handler, Listeners, Response, TcpTable
from sigchain.edge.udpworkers import REAP_SECONDS, UdpWorkers
from sigchain.errors import InputError, SigchainError, UnsafeRefused
from sigchain.services import zonefiles
from sigchain.services.control import Channels
from sigchain.services.inline import InlineZone
from sigchain.services.inlineserve import InlineServing
from sigchain.services.ratelimit import RateLimiting
from sigchain.services.reloadmem import served_versions_frozen
from sigchain.services.serveconfig import NotifyTarget, ServeConfig, ZoneConfig
from sigchain.services.updatein import UpdateIntake
from sigchain.services.workersync import Synced, WorkerSync
from sigchain.services.xfrout import Primary, Served
from sigchain.services.zonefiles import RELOAD_NICE, ZoneFiles, file_digest, file_stamp

log = logging.getLogger("sigchain.serve")
T = TypeVar("T")
THROTTLED_LOGS = ("sigchain.xfrout", "sigchain.server", "sigchain.rrl")


ZoneSpec = ZoneConfig  # a zone to serve: its name and signed file (+ transfer settings)

# The IXFR history of a zone keeps at most this many records per record of the zone (a full
# re-sign changes every RRSIG: each such version costs about twice the zone's signatures).
HISTORY_RECORDS_PER_ZONE_RECORD = 8


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


def _check_downgrade(spec: ZoneSpec, old: ZoneIndex | None, new: ZoneIndex) -> None:
    """Refuse to replace a signed zone with an unsigned one (bogus wherever the parent has a
    DS) unless the zone's config allows it to go insecure."""
    if old is None or old.denial == "none" or new.denial != "none" or spec.allow_unsigned:
        return
    raise UnsafeRefused(
        f"zone {spec.name} was signed and the new file is not (validators would find it "
        f"bogus while the parent has a DS): refused; set allow-unsigned = true in "
        f'[zones."{spec.name}"] to take the zone insecure', file=spec.path)


def _announce(outcome: dict[str, str], indexes: dict[dns.name.Name, ZoneIndex],
              reports: dict[dns.name.Name, tuple[int, int]] | None = None) -> None:
    """Log the zones a reload brought in — once they are being served — and that each was
    verified: how many signatures by their crypto, how many known from the zone's last load
    (their fields and window checked, see core/verify/known). An unchanged file is not
    reloaded: see `_reload`."""
    for name, what in outcome.items():
        if what.startswith("serial"):
            origin = dns.name.from_text(name)
            unsigned = indexes[origin].denial == "none"
            how = "re-signed incrementally" if what.endswith("inline") else \
                "unsigned: not verified" if unsigned else "verified"
            counts = (reports or {}).get(origin)
            if how == "verified" and counts is not None:
                how += f"; {counts[0]} signature(s) checked, {counts[1]} known from the last load"
            log.info("reloaded zone %s %s (%s)", name, what.removesuffix(" inline"), how)


async def _in_thread(fn: Callable[[], T], nice: int = 0) -> T:
    """Run `fn` in a new thread that has ended when this returns; `nice` lowers its priority
    (not when the main process answers queries itself: a thread holding the GIL at a low
    priority would hold up the answering one)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, exc: BaseException | None) -> None:
        if done.done():
            return
        if exc is not None:
            done.set_exception(exc)
        else:
            done.set_result(result)  # type: ignore[arg-type]

    def work() -> None:
        if nice:
            try:
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
            except OSError:
                pass
        try:
            result = fn()
        except BaseException as exc:  # noqa: BLE001 — handed to the awaiting task
            loop.call_soon_threadsafe(settle, None, exc)
        else:
            loop.call_soon_threadsafe(settle, result, None)

    thread = threading.Thread(target=work, name="sigchain-reload", daemon=True)
    thread.start()
    result = await done  # cancelled (server stopping): the daemon thread is left to the exit
    thread.join()  # it has handed its result over: it ends at once
    return result


class AuthoritativeService(InlineServing, WorkerSync, ZoneFiles):
    """Serves the configured zones until stopped; SIGHUP reloads, SIGTERM/SIGINT stop.
    Zones with a policy are signed here (`self.inline`, see services.inline)."""

    def __init__(self, config: ServeConfig, *, clock: Clock = SYSTEM, force: bool = False):
        names = [z.name for z in config.zones]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise InputError(f"zone given twice: {', '.join(sorted(n.to_text() for n in dupes))}")
        if not config.zones:
            raise InputError("no zone to serve: give --zone NAME=SIGNEDFILE")
        self.config = config
        self.specs = list(config.zones)
        self.listens = [lc.address for lc in config.listens]
        self.clock = clock
        self.force = force  # serve zones whose only errors are expired / not-yet-valid RRSIGs
        self.primary = Primary({z.name: z.allow_transfer for z in config.zones}, config.keys, clock)
        self.indexes: dict[dns.name.Name, ZoneIndex] = {}
        self.loaded_at: dict[dns.name.Name, int] = {}  # when each version served was loaded
        self.last_reload: dict[str, str] = {}  # each zone's outcome of the last reload
        self.updates = UpdateIntake(self)  # RFC 2136 UPDATE (services.updatein)
        self.primary.update = self.updates.hook
        self.histories: dict[dns.name.Name, History] = {}
        self.inline: dict[dns.name.Name, InlineZone] = {}
        self._inline_records: dict[dns.name.Name, tuple[ZoneIndex, int]] = {}
        self.served = Served(tuple(ZoneSet(udp_size=config.udp_size) for _ in config.listens), {})
        self._stamps: dict[dns.name.Name, tuple[int, int, int] | None] = {}
        self._digests: dict[dns.name.Name, bytes | None] = {}  # of the files served now
        # The digests of the signatures verified in each zone served now (core/verify/known),
        # and the last reload's (signatures checked, known) per zone, for its log line.
        self._verified: dict[dns.name.Name, bytes] = {}
        self._held: dict[dns.name.Name, int] = {}  # open files of versions served (`_hold`)
        # Zones whose version the main process let go of during a reload under way (see
        # `_load_file`): the workers keep serving their own copy until the new one is in.
        self.let_go: set[dns.name.Name] = set()
        self._counts: dict[dns.name.Name, tuple[int, int]] = {}
        self._reloading: asyncio.Task[None] | None = None
        self._again = False
        self._notifying: dict[dns.name.Name, asyncio.Task[None]] = {}
        # With more than one, every process answering UDP is a forked worker (a blocking
        # loop costs less per datagram than the event loop); with one, the main process.
        # Then TCP is answered by a forked worker too, and the main process only reloads.
        count = config.udp_workers if config.udp_workers > 1 else 0
        self.rrl = RateLimiting(config.rate_limit, count > 0) \
            if config.rate_limit.per_second > 0 else None
        # The exact-query cache (core.serve.cache) is read by forked workers without RRL only.
        self._exact = count > 0 and self.rrl is None
        self._workers = UdpWorkers(count, config.tcp_limits,
                                   self.rrl.counters if self.rrl else None,
                                   self.rrl.in_worker if self.rrl else None,
                                   self._worker_update)
        self.index_versions: dict[dns.name.Name, int] = {}  # see services.workersync
        self._synced: Synced | None = None
        self._udp: list[tuple[int, Handler]] = []
        self._tcp: list[tuple[int, Handler]] = []
        self.tcp = TcpTable(config.tcp_limits)  # every listener's TCP connections
        self._throttles: list[LogThrottle] = []

    @property
    def zones(self) -> ZoneSet:
        """Every zone served (on one address or another), for inspection."""
        return ZoneSet(self.indexes.values(), udp_size=self.config.udp_size)

    def handler(self, listener: int) -> Handler:
        """The handler of the `listener`-th listen address: reads the current snapshot; UDP
        answers go through response-rate limiting when it is on."""
        primary = self.primary
        rrl = self.rrl

        def handle(wire: bytes, tcp: bool, client: str) -> Response:
            served = self.served
            zones = served.sets[listener]
            response = primary.handle(zones, served.histories, wire, tcp, client)
            if rrl is None or tcp or not isinstance(response, bytes):
                return response
            return rrl.apply(zones, response, client, self.clock.now())

        if self._exact:  # every UDP answer may then come from the exact-query cache
            handle.exact_cache = lambda: self.served.sets[listener].cache.get_exact  # type: ignore[attr-defined]
        return handle

    def handle(self, wire: bytes, tcp: bool, client: str = "127.0.0.1") -> Response:
        """The first listener's handler (kept for callers that serve one zone set)."""
        return self.handler(0)(wire, tcp, client)

    def _publish(self) -> None:
        """Build every listener's zone set from the current versions; swap them in at once."""
        budget = CacheBudget(self.config.answer_cache_size << 20)  # shared by the listeners
        sets = tuple(
            ZoneSet([self.indexes[n] for n in lc.zones if n in self.indexes],
                    udp_size=self.config.udp_size,
                    cache=ResponseCache(budget=budget, exact=self._exact))
            for lc in self.config.listens
        )
        self.served = Served(sets, dict(self.histories))

    def load_all(self) -> None:
        """First load: every zone must parse and verify, or the server does not start."""
        for spec in self.specs:
            stamp, digest = file_stamp(spec.path), file_digest(spec.path)
            index, warnings, report = (self._inline_start(spec), [], None) if spec.inline else \
                zonefiles.load_checked(spec, self.clock.now(), self.force)
            self._verified[spec.name] = report.verified_digests if report is not None else b""
            for w in warnings:
                log.warning("%s", w)
            self.indexes[spec.name] = index
            self.loaded_at[spec.name] = self.clock.now()
            self._remember(spec, stamp, digest)
            log.info("loaded zone %s serial %d from %s (%s)", spec.name, index.serial, spec.path, index.denial)
        self._publish()

    def _next_history(self, spec: ZoneConfig, old: ZoneIndex, new: ZoneIndex) -> tuple[History, bool]:
        """The zone's IXFR history after `old` → `new`, and whether secondaries should be
        told (a greater serial, RFC 1982). Kept only for zones someone may transfer."""
        history = self.histories.get(spec.name, History())
        if new.serial == old.serial:
            if spec.allow_transfer.entries and not diff(old, new).empty:
                log.warning("zone %s changed but its serial %d did not: secondaries keep the "
                            "old version; IXFR history dropped", spec.name, new.serial)
                return History(), False
            return history, False
        if not serial_gt(new.serial, old.serial):
            log.warning("zone %s serial went back from %d to %d: secondaries will not transfer "
                        "it; IXFR history dropped", spec.name, old.serial, new.serial)
            return History(), False
        if not spec.allow_transfer.entries or self.config.ixfr_history <= 0:
            return History(), True
        delta = diff(old, new)
        history = history.record(
            delta, max_deltas=self.config.ixfr_history,
            max_records=HISTORY_RECORDS_PER_ZONE_RECORD * record_count(new))
        kept = history.serials
        log.info("zone %s serial %d -> %d: %d record(s) deleted, %d added; IXFR from serials %s",
                 spec.name, old.serial, new.serial, len(delta.deleted), len(delta.added),
                 f"{kept[0]}..{kept[-2]}" if kept else "none")
        return history, True

    def _reload(self, publish: bool = True) -> tuple[dict[str, str], list[dns.name.Name]]:
        with served_versions_frozen():  # the served zones' pages stay shared with the workers
            outcome, changed = self._load_changed()
        if publish:
            self._publish()
            _announce(outcome, self.indexes, self._counts)
        return outcome, changed

    def _load_changed(self) -> tuple[dict[str, str], list[dns.name.Name]]:
        """Load every zone whose file changed (see `_reload`); publish nothing."""
        outcome: dict[str, str] = {}
        changed: list[dns.name.Name] = []
        for spec in self.specs:
            policy = self._inline_policy(spec) if spec.inline else None
            stamp = file_stamp(spec.path)
            if stamp is not None and stamp == self._stamps.get(spec.name):
                outcome[spec.name.to_text()] = policy or "unchanged"
                continue
            digest = file_digest(spec.path)
            if digest is not None and digest == self._digests.get(spec.name):
                self._stamps[spec.name] = stamp
                log.info("zone %s: %s unchanged (same content), not re-verified", spec.name,
                         spec.path)
                outcome[spec.name.to_text()] = policy or "unchanged"
                continue
            try:
                if spec.inline:  # changes applied (and IXFR history kept) incrementally
                    if self._inline_reload(spec):
                        changed.append(spec.name)
                    self._remember(spec, stamp, digest)
                    outcome[spec.name.to_text()] = f"serial {self.indexes[spec.name].serial} inline"
                    continue
                index, warnings, report, let_go = self._load_file(spec)
                _check_downgrade(spec, self.indexes.get(spec.name), index)
            except SigchainError as exc:
                old = self.indexes.get(spec.name)
                if old is not None:  # (read back, if it was let go)
                    self.let_go.discard(spec.name)
                kept = f"serial {old.serial} stays served" if old else \
                    "its workers keep serving it" if spec.name in self._verified else "not served"
                log.error("reload of zone %s failed: %s; %s", spec.name, exc, kept)
                outcome[spec.name.to_text()] = f"failed: {exc}"
                continue
            for w in warnings:
                log.warning("%s", w)
            old = self.indexes.get(spec.name)
            if old is not None:
                self.histories[spec.name], notify = self._next_history(spec, old, index)
                if notify:
                    changed.append(spec.name)
            elif let_go is not None:  # no transfers: no history, secondaries told of a newer serial
                self.histories[spec.name] = History()
                if serial_gt(index.serial, let_go):
                    changed.append(spec.name)
                elif index.serial != let_go:
                    log.warning("zone %s serial went back from %d to %d", spec.name, let_go,
                                index.serial)
            self.indexes[spec.name] = index
            self.let_go.discard(spec.name)
            self.loaded_at[spec.name] = self.clock.now()
            self._remember(spec, stamp, digest)
            self._verified[spec.name] = report.verified_digests if report is not None else b""
            if report is not None:
                self._counts[spec.name] = (report.signatures_checked - report.signatures_known,
                                           report.signatures_known)
            outcome[spec.name.to_text()] = f"serial {index.serial}"
        return outcome, changed

    def reload(self) -> dict[str, str]:
        """Reload changed zone files; a failing zone keeps its old version. Thread-safe
        against the loop: builds new zone sets and swaps them in one assignment."""
        return self._reload()[0]

    async def _reload_task(self) -> None:
        while True:
            self._again = False
            # Zones load in a thread of their own that has ended before the new versions are
            # published and the UDP workers forked with them (no fork beside live threads).
            outcome, changed = await _in_thread(lambda: self._reload(publish=False),
                                                nice=RELOAD_NICE if self._workers.count else 0)
            self._publish()
            self.last_reload = outcome
            if any(v.startswith("serial") for v in outcome.values()):
                self._sync_workers()  # before a NOTIFY brings a secondary's IXFR
            _announce(outcome, self.indexes, self._counts)
            for name in changed:
                self.notify(name)
            if not self._again:
                return

    def request_reload(self) -> None:
        """SIGHUP: reload in a worker thread; a SIGHUP during a reload runs one more."""
        if self._reloading is not None and not self._reloading.done():
            self._again = True
            return
        log.info("SIGHUP: reloading zones")
        self._reloading = asyncio.get_running_loop().create_task(self._reload_task())

    async def reload_now(self) -> dict[str, str]:
        """`sigchain ctl reload`: the SIGHUP reload, awaited; each zone's outcome."""
        self.request_reload()
        if self._reloading is not None:
            await asyncio.shield(self._reloading)
        return dict(self.last_reload)

    # ---- NOTIFY out (RFC 1996) -------------------------------------------------------------

    def notify(self, name: dns.name.Name) -> None:
        """NOTIFY the zone's also-notify targets of its current serial (replacing a round of
        NOTIFYs still retrying for an older one)."""
        spec = next(s for s in self.specs if s.name == name)
        if not spec.also_notify or name not in self.indexes:
            return
        running = self._notifying.pop(name, None)
        if running is not None:
            running.cancel()
        index = self.indexes[name]
        self._notifying[name] = asyncio.get_running_loop().create_task(
            self._notify_all(index, spec.also_notify))

    async def _notify_all(self, index: ZoneIndex, targets: tuple[NotifyTarget, ...]) -> None:
        await asyncio.gather(*(self._notify_one(index, t) for t in targets))

    async def _notify_one(self, index: ZoneIndex, target: NotifyTarget) -> None:
        wire, check = self.primary.notify_request(index, target.key)
        where = f"NOTIFY for zone {index.origin} serial {index.serial} to {target}"
        try:
            outcome = await send_notify(target.address.host, target.address.port, wire, check)
        except OSError as exc:
            log.error("%s: cannot send: %s", where, exc.strerror or exc)
            return
        if outcome.status is None:
            log.warning("%s: no answer after %d tries", where, outcome.tries)
        else:
            log.info("%s: answered %s (try %d)", where, outcome.status, outcome.tries)

    # ---- running -------------------------------------------------------------------------

    def _reap(self) -> None:
        self._workers.reap()
        if self.rrl is not None:
            self.rrl.report(self.clock.monotonic())
        for t in self._throttles:
            t.flush(self.clock.now())
        asyncio.get_running_loop().call_later(REAP_SECONDS, self._reap)

    async def run(self) -> None:
        """Bind, NOTIFY the secondaries, serve until SIGTERM/SIGINT, release the sockets."""
        loop = asyncio.get_running_loop()
        # Lines a client can cause (NOTIFY, refused transfers, TCP rejections): rate-limited.
        self._throttles = throttle(THROTTLED_LOGS)
        listeners: list[Listeners] = []
        channels = Channels(self)  # ctl socket, update intake: before the workers fork
        await channels.open()
        try:
            for i, lc in enumerate(self.config.listens):
                group = Listeners(self.handler(i), self.tcp)
                listeners.append(group)
                await group.start([lc.address], serve_tcp=not self._workers.count)
                self._udp += [(t.get_extra_info("socket").fileno(), self.handler(i)) for t in group.udp]
                self._tcp += [(sock.fileno(), self.handler(i)) for sock in group.tcp_sockets]
        except BaseException:
            for group in listeners:
                await group.close()
            await channels.close()
            raise
        self._start_workers()
        if self._workers.count:
            for group in listeners:
                for t in group.udp:
                    t.pause_reading()
        reaper = loop.call_later(REAP_SECONDS, self._reap)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        log.info("ready: %d zone(s) on %s", len(self.indexes), ", ".join(map(str, self.listens)))
        for spec in self.specs:  # as BIND: secondaries hear of the version loaded at start
            self.notify(spec.name)
        timers = loop.create_task(self._inline_timers()) if self.inline else None
        try:
            await stop.wait()
        finally:
            log.info("stopping")
            if timers is not None:
                timers.cancel()
                await asyncio.gather(timers, return_exceptions=True)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            reaper.cancel()
            self._workers.stop()
            if self.rrl is not None:
                self.rrl.final()
            for t in self._throttles:
                t.flush(float("inf"))
            for task in self._notifying.values():
                task.cancel()
            await asyncio.gather(*self._notifying.values(), return_exceptions=True)
            for group in listeners:
                await group.close()
            if self._reloading is not None:
                await asyncio.gather(self._reloading, return_exceptions=True)
            await channels.close()
