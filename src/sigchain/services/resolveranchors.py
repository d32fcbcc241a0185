"""The resolver's trust anchors kept current: static or RFC 5011-managed anchors (refreshed
through the resolver's own resolution) and negative trust anchors (RFC 7646) re-checked."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

import dns.name
import dns.rrset
from dns.rdatatype import RdataType

from sigchain.core.resolve.cache import Answer, data_ttl
from sigchain.core.resolve.exchange import Failed
from sigchain.core.resolve.trust import AnchorSource, StaticAnchors
from sigchain.core.validate import anchors as anchors_mod
from sigchain.core.validate import rfc5011
from sigchain.core.validate.anchors import Server
from sigchain.core.validate.nta import NegativeAnchors
from sigchain.core.validate.verdict import Evidence, Question, Status
from sigchain.errors import OperationalError
from sigchain.services.anchors5011 import Check, Fetch, ManagedAnchors
from sigchain.services.resolverconfig import ResolverConfig
from sigchain.services.resolverupstream import Upstream
from sigchain.services.trace import read_anchors

if TYPE_CHECKING:
    from sigchain.services.resolver import ResolverService

log = logging.getLogger("sigchain.resolver")
IDLE_POLL = 0.2  # seconds between looks for a first resolution, which starts RFC 5011 upkeep
POLL_STATE = 30  # seconds between a worker process's looks at the anchor state file


def load_anchors(config: ResolverConfig, now: int, writer: bool = True) -> AnchorSource:
    """`--anchor FILE`: static. Otherwise RFC 5011 on `--managed-anchor FILE` or the built-in
    root anchors, their state in `anchor_state` (created with its folder if absent; by the
    `writer` only, the main process: a worker reads it)."""
    if config.anchor is not None:
        return StaticAnchors(read_anchors(config.anchor))
    configured = (read_anchors(config.managed_anchor) if config.managed_anchor is not None
                  else anchors_mod.iana_root_anchors())
    folder = os.path.dirname(os.path.abspath(config.anchor_state))
    try:
        os.makedirs(folder, mode=0o755, exist_ok=True)
    except OSError as exc:
        raise OperationalError(f"cannot create the anchor state folder: {exc.strerror or exc}",
                               file=folder) from None
    return ManagedAnchors(config.anchor_state, configured, now, log=log.info, writer=writer)


class AnchorKeeper:
    """Upkeep of one resolver's anchors: RFC 5011 refreshes when due (the main process only;
    worker processes re-read the state file it writes) and NTA re-checks and expiry."""

    def __init__(self, service: ResolverService, now: int, config: ResolverConfig,
                 previous: AnchorKeeper | None = None, anchors: AnchorSource | None = None):
        """`config`: the one about to be applied to `service`; `previous`: the keeper of the
        config it replaces (SIGHUP); `anchors`: the config's, whose RFC 5011 state keeps the
        NTAs across restarts. An NTA configured before (in `previous`, or in the state when
        the resolver was stopped) keeps its expiry — or stays gone, expired or dropped by its
        re-check (RFC 7646 §2: it must end, and a restart must not renew it): only one whose
        lifetime changed is renewed; one no longer configured goes."""
        self.service = service
        self.used = False  # no refresh before the first resolution: an idle resolver is quiet
        self.state_mtime = _mtime(config.anchor_state)
        self.configured = frozenset(config.negative)
        self.store = anchors if isinstance(anchors, ManagedAnchors) else None
        if previous is not None:
            applied, self.negative = previous.configured, previous.negative
            self.ended = dict(previous.ended)
        elif self.store is not None:  # a restart: what the state kept
            self.ended = dict(self.store.ended)
            self.negative = self.store.negative
            applied = frozenset({(e.name, e.expiry - e.added) for e in self.negative.entries}
                                | set(self.ended.items()))
        else:
            applied, self.negative, self.ended = frozenset(), NegativeAnchors(), {}
        names = {n for n, _ in config.negative}
        for name, _ in applied - self.configured:
            if name not in names:
                self.negative = self.negative.remove(name)
        self.ended = {n: t for n, t in self.ended.items() if (n, t) in self.configured}
        for name, lifetime in config.negative:
            if (name, lifetime) in applied:
                live = next((e for e in self.negative.entries if e.name == name), None)
                if previous is None and live is not None:
                    log.info("negative trust anchor %s: kept from before the restart, until %d",
                             name, live.expiry)
                elif previous is None:
                    log.info("negative trust anchor %s: ended before the restart, not renewed "
                             "(change its lifetime to renew it)", name)
                continue
            self.negative = self.negative.add(name, now, lifetime, config.nta_recheck)
            self.ended.pop(name, None)
            log.info("negative trust anchor %s for %d s: answered without validation", name,
                     lifetime)
        self._keep()

    def _keep(self) -> None:
        """The NTAs into the RFC 5011 state (the main process's), for the next start."""
        if self.store is not None and not self.service.worker:
            self.store.keep_negative(self.negative, self.ended)

    @property
    def managed(self) -> ManagedAnchors | None:
        anchors = self.service.anchors
        return anchors if isinstance(anchors, ManagedAnchors) else None

    def is_negative(self, name: dns.name.Name, now: int) -> bool:
        return bool(self.negative.entries) and self.negative.is_negative(name, now)

    def negative_names(self, now: int) -> tuple[dns.name.Name, ...]:
        """The names under which nothing is validated (RFC 7646), for the validator."""
        return tuple(e.name for e in self.negative.entries if e.expiry > now)

    def unvalidated(self, ev: Evidence, now: int) -> Answer:
        """An answer under an NTA: as the servers gave it, insecure (no AD), not validated."""
        config = self.service.config.cache
        ttl = data_ttl(ev.rcode, ev.question.rdtype, ev.answer, ev.authority, config)
        return Answer(ev.rcode, ev.answer, ev.authority, Status.INSECURE, (), now, ttl)

    def next_wake(self, now: int) -> float:
        """Seconds until the next piece of upkeep (polling until first used)."""
        times = [self.negative.next_event()]
        m = self.managed
        if m is not None:
            if not self.used and not self.service.worker:
                return IDLE_POLL
            times.append(m.next_refresh_at)
        if m is not None and self.service.worker:
            times.append(now + POLL_STATE)
        due = min((t for t in times if t is not None), default=now + 3600)
        return float(min(max(due - now, 0), 3600))

    async def run(self, stop: asyncio.Event, pool: concurrent.futures.Executor) -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), self.next_wake(self.service.clock.now()))
                return
            except TimeoutError:
                pass
            try:
                await loop.run_in_executor(pool, self.upkeep)
            except Exception:  # noqa: BLE001 (upkeep fails alone; answering goes on)
                log.exception("trust anchor upkeep")

    def upkeep(self) -> None:
        now = self.service.clock.now()
        m = self.managed
        if m is not None and self.service.worker:
            self._reread(m)
        elif m is not None and self.used and m.next_refresh_at <= now:
            self._refresh(m, now)
        if self.negative.next_event() is not None and self.negative.next_event() <= now:
            ntas = recheck_negative(self.negative, self._check, now)
            if ntas != self.negative:
                live = {e.name for e in ntas.entries}
                for e in self.negative.entries:  # expired or dropped: ended, if configured
                    if e.name not in live and (e.name, e.expiry - e.added) in self.configured:
                        self.ended[e.name] = e.expiry - e.added
                self.negative = ntas
                self._keep()
                self.service.flush()

    def _refresh(self, m: ManagedAnchors, now: int) -> None:
        s = self.service
        fetch = resolving_fetch(s.upstream, s.forwarders, self._forget_keys, now)
        events = m.refresh(fetch, now)
        trusted = sorted((zone, k.tag) for zone, k in m.keys() if k.state in rfc5011.TRUSTED)
        log.info("trust anchors refreshed: trusting %s; next refresh in %d s",
                 ", ".join(f"{zone} {tag}" for zone, tag in trusted) or "DS anchors (not yet primed)", m.next_refresh_at - now)
        if events:
            self.service.flush()  # what was validated with the old keys is judged again

    def _reread(self, m: ManagedAnchors) -> None:
        mtime = _mtime(m.path)
        if mtime != self.state_mtime:
            self.state_mtime = mtime
            m.reread()
            self.service.flush()

    def _check(self, name: dns.name.Name) -> Status:
        """An NTA re-check: how `name`'s SOA validates without the NTA."""
        entry = self.service.lookup(name, RdataType.SOA, ntas=False)
        return entry.status or Status.INDETERMINATE

    def _forget_keys(self, zone: dns.name.Name) -> None:
        with self.service.lock:
            self.service.cache.forget_messages([(zone, RdataType.DNSKEY)])


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


def resolving_fetch(upstream: Upstream, forwarders: Callable[[dns.name.Name], tuple[Server, ...]],
                    forget: Callable[[dns.name.Name], None], now: int) -> Fetch:
    """RFC 5011's DNSKEY fetch through the resolver's own resolution (DO=1; CD=1 towards
    forwarders), never from the cache: the keys as the zone serves them now."""

    def fetch(zone: dns.name.Name) -> tuple[dns.rrset.RRset | None, dns.rrset.RRset | None]:
        forget(zone)
        fetched = upstream.resolve(Question(zone, RdataType.DNSKEY), set(), now, forwarders(zone))
        outcome = fetched.outcome
        if isinstance(outcome, Failed):
            raise OperationalError(f"DNSKEY {zone}: {outcome.reason}")
        answer = outcome.evidence.answer
        keys = next((r for r in answer if r.rdtype == RdataType.DNSKEY and r.name == zone), None)
        sigs = next((r for r in answer if r.rdtype == RdataType.RRSIG and r.name == zone
                     and r.covers == RdataType.DNSKEY), None)
        return keys, sigs

    return fetch


def recheck_negative(ntas: NegativeAnchors, check: Check, now: int) -> NegativeAnchors:
    """Expire NTAs past their lifetime; drop those due whose zone validates again (logged)."""
    ntas, expired, dropped = ntas.recheck(check, now)
    for e in expired:
        log.info("negative trust anchor %s expired", e.name)
    for name, status in dropped:
        log.info("negative trust anchor %s removed: the zone validates again (%s)",
                 name, status.value)
    return ntas
