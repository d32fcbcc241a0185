"""`sigchain resolver` as a service: a validating recursive resolver. Client queries come in
over UDP and TCP (edge.server) on the event loop's thread, which answers from the cache and
from validated NSEC/NSEC3 records already kept (services.resolverclient). The other questions go to the resolution
thread: its own event loop runs many iterative resolutions at once (services.resolverupstream;
their upstream queries are waited on by the loop, not by a blocked thread), and the core
validator judges each as its replies are in. So cached answers never wait behind resolution
and validation beyond the interpreter's switch interval, as with one thread per resolution,
without the cost of handing the interpreter between dozens of threads. `reload` re-reads the
config (on SIGHUP: services.resolverrun runs the service in the foreground)."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import socket
import threading
from collections import Counter
from collections.abc import Callable

import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
from dns.rdatatype import RdataType

from sigchain import __version__
from sigchain.clock import SYSTEM, Clock
from sigchain.core.resolve import ede as edes
from sigchain.core.resolve.aggressive import (
    ZoneDenials,
    candidates,
    denial_zone,
    verified_only,
    wildcard_zone,
)
from sigchain.core.resolve.cache import Answer, Cache, data_ttl
from sigchain.core.resolve.exchange import Failed
from sigchain.core.resolve.proved import insecure_cuts, zone_keys
from sigchain.core.resolve.trust import AnchorSource
from sigchain.core.validate import anchors as anchors_mod
from sigchain.core.validate.anchors import Server
from sigchain.core.validate.memo import Verified
from sigchain.core.validate.validator import validate
from sigchain.core.validate.verdict import Evidence, Kind, Question, Status
from sigchain.core.zone.sharedname import share
from sigchain.edge import transport
from sigchain.errors import SigchainError
from sigchain.services.loopslices import Slices
from sigchain.services.resolveranchors import AnchorKeeper, load_anchors
from sigchain.services.resolverclient import ClientSide
from sigchain.services.resolverconfig import ResolverConfig, load_config
from sigchain.services.resolvermetrics import ResolverMetrics
from sigchain.services.resolverthread import ResolutionThread
from sigchain.services.resolverupstream import Upstream
from sigchain.services.trace import read_root_hints

log = logging.getLogger("sigchain.resolver")
UPKEEP_THREADS = 2  # for the anchors' upkeep (RFC 5011 refreshes, negative trust anchor checks)
VERIFIED = 20_000  # signatures remembered as verified (by rdata objects: see core.validate.memo)
_NEGATIVE = (Kind.NXDOMAIN, Kind.NODATA)
_MISSING = (9, 10, 12)  # EDE codes of records that are absent: a stripping upstream's mark


def load_hints(config: ResolverConfig) -> tuple[anchors_mod.Server, ...]:
    if config.root_hints is None:
        return anchors_mod.root_hint_servers()
    return read_root_hints(config.root_hints)


class ResolverService(ClientSide):
    """The resolver: its config, cache, upstream side and metrics; `handle` answers one
    client query, `serve` runs it."""

    def __init__(self, config: ResolverConfig, anchors: AnchorSource | None = None,
                 clock: Clock = SYSTEM, reread: Callable[[], ResolverConfig] | None = None):
        self.clock = clock
        self.lock = threading.Lock()
        self.stats: Counter[str] = Counter()
        self.pool = concurrent.futures.ThreadPoolExecutor(UPKEEP_THREADS, thread_name_prefix="upkeep")
        self.resolutions = ResolutionThread()  # what the cache cannot answer is resolved there
        self.slices = Slices(clock)  # RFC 8198 answers, on the client loop between its reads
        self._fixed_anchors = anchors
        self._reread = reread or (lambda: load_config(self.config.source or ""))
        self.metrics = ResolverMetrics(lambda: self.cache.size, lambda: len(self.cache),
                                       config.workers)
        self.worker = 0  # 0: the main process; n: the n-th extra worker process
        self.counts_in_from_workers: socket.socket | None = None  # (main process) the workers' counts come here
        # the config and cache's generation, one more per apply and flush: an answer resolved
        # under an older one is given to those who asked, never kept nor shared with later askers
        self.generation = 0
        self.apply(config)

    def apply(self, config: ResolverConfig) -> None:
        """Take a (re-read) config: anchors, hints, policy; the cache starts empty."""
        anchors = self._fixed_anchors or load_anchors(config, self.clock.now(),
                                                      writer=not self.worker)
        cache = Cache(config.cache)
        upstream = Upstream(load_hints(config), cache, self.lock, config.limits,
                            on_error=self._upstream_error)
        keeper = AnchorKeeper(self, self.clock.now(), config, getattr(self, "keeper", None),
                              anchors)
        with self.lock:  # all at once: a resolution sees the old generation or the new one
            self.config = config
            self.anchors = anchors
            self.cache = cache
            self.verified = Verified(VERIFIED)  # signatures of kept RRsets that verified
            # rendered UDP responses of this second, by the query's bytes after its ID
            self._exact: dict[bytes, tuple[int, bytes, Answer]] = {}
            self._acl: dict[str, bool] = {}
            self._about = {"identity": socket.gethostname() if config.identity is None
                           else config.identity,
                           "version": f"sigchain {__version__}" if config.version is None
                           else config.version}  # CH TXT answers ("": none)
            self.upstream = upstream
            self.keeper = keeper
            self.generation += 1

    def _upstream_error(self, server: str, error: str) -> None:
        self.metrics.count("upstream_errors", server, error)

    # -- resolution ------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the resolution thread (questions under way are dropped) and the upkeep pool."""
        self.resolutions.close()
        self.pool.shutdown(wait=False, cancel_futures=True)

    async def _shared(self, qname: dns.name.Name, qtype: int) -> Answer:
        """(On the resolution thread) one resolution per question at a time: clients asking
        the same wait for it; the kept NSEC/NSEC3 records were tried by `handle` as the query
        came in. A failure of the code (not of the zone) is logged once, however many clients
        wait, and answered SERVFAIL, EDE 0 "internal error"."""

        async def once() -> Answer:
            try:
                return await transport.drive_async(self.resolving(qname, qtype, denials_tried=True))
            except Exception:
                log.exception("resolving %s %s", qname, dns.rdatatype.to_text(qtype))
                return Answer(dns.rcode.SERVFAIL, (), (), None, ((edes.OTHER, "internal error"),),
                              self.clock.now(), 0)

        return await self.resolutions.shared((qname, qtype, self.generation), once)

    def resolve(self, qname: dns.name.Name, qtype: int, denials_tried: bool = False) -> Answer:
        """`resolving`, with blocking sockets."""
        return transport.drive(self.resolving(qname, qtype, denials_tried))

    def resolving(self, qname: dns.name.Name, qtype: int,
                  denials_tried: bool = False) -> transport.Asking[Answer]:
        """Resolve, validate (unless under a negative trust anchor) and cache one question;
        `denials_tried`: the kept NSEC/NSEC3 records were found not to answer it just now."""
        qname = share(qname)  # compared and hashed all along the way
        generation = self.generation
        self.keeper.used = True
        entry = yield from self.looking(qname, qtype, self.keeper.is_negative(qname, self.clock.now()),
                                        denials_tried, generation)
        return self._keep(qname, qtype, entry, generation)

    def _keep(self, qname: dns.name.Name, qtype: int, entry: Answer, generation: int) -> Answer:
        """An answer with require-secure applied, cached unless the config or cache changed
        (a SIGHUP, a flush) since `generation`, when its resolution began."""
        entry = self._policy(qname, entry)
        with self.lock:
            if generation != self.generation:
                return entry
            return self.cache.store_answer(qname, qtype, entry)

    def _offers(self, qname: dns.name.Name, qtype: int, now: int,
                kept: tuple[ZoneDenials, int]) -> tuple[list[Evidence], int] | None:
        """The proofs the kept NSEC/NSEC3 records (`kept`: the cache's `denials` for qname)
        could give (RFC 8198), and for how many more seconds; None when they offer none or
        the name is under a negative trust anchor. Nothing is validated here."""
        qname = share(qname)
        if self.keeper.is_negative(qname, now):
            return None
        offered = candidates(kept[0], qname, qtype, self.config.policy)
        return (offered, kept[1]) if offered else None

    def _denied(self, qname: dns.name.Name, qtype: int, now: int,
                offers: tuple[list[Evidence], int] | None = None) -> Answer | None:
        """The answer `resolve` would give from NSEC/NSEC3 records already kept (RFC 8198),
        from `offers` (`_offers`) or those found now, cached; None when there is none
        (resolve then asks upstream). Asks no one."""
        qname = share(qname)
        if offers is None:
            with self.lock:
                kept = self.cache.denials(qname, now)
            offers = None if kept is None else self._offers(qname, qtype, now, kept)
            if offers is None:
                return None
        self.keeper.used = True
        entry = self._proven(qname, qtype, *offers, self._anchors(qname, now), now)
        return None if entry is None else self._keep(qname, qtype, entry, self.generation)

    def _anchors(self, qname: dns.name.Name, now: int) -> list[dns.rrset.RRset]:
        """The trust anchors, and the keys of `qname`'s zones validated before: these anchor
        a validation, which then checks only the links below them."""
        anchors = self.anchors.trusted(now)
        with self.lock:
            return anchors + self.cache.key_anchors(qname, now)

    def lookup(self, qname: dns.name.Name, qtype: int, negative: bool = False,
               ntas: bool = True) -> Answer:
        """`looking`, with blocking sockets."""
        return transport.drive(self.looking(qname, qtype, negative, ntas=ntas))

    def looking(self, qname: dns.name.Name, qtype: int, negative: bool = False,
                denials_tried: bool = False, generation: int | None = None,
                ntas: bool = True) -> transport.Asking[Answer]:
        """Resolve and validate one question, nothing cached for the answer; `negative`: the
        name is under an NTA (no RFC 8198 answer, no insecure-zone shortcut); what the NTAs
        cover is insecure, the rest of the answer validated (unless not `ntas`: an NTA's
        re-check); `denials_tried`: RFC 8198 not tried again (a record kept since is only a
        query saved, not a change). What the validation proved (zone keys, insecure cuts,
        denials) is kept unless the config or cache changed since `generation` (default:
        now)."""
        generation = self.generation if generation is None else generation
        qname = share(qname)
        now = self.clock.now()
        anchors = self._anchors(qname, now)
        entry = None if negative or denials_tried else self._aggressive(qname, qtype, anchors, now)
        if entry is None:
            forwarders = self.forwarders(qname)
            question = Question(qname, qtype)
            insecure = None if negative else self._insecure_zone(qname, qtype, anchors, now)
            # below a zone proven insecure, no chain is fetched or checked (no anchor above)
            fetched = yield from self.upstream.resolving(
                question, set() if insecure else {r.name for r in anchors}, now, forwarders)
            outcome = fetched.outcome
            if insecure is not None and not isinstance(outcome, Failed) and not _within(
                    outcome.evidence, insecure):  # a CNAME out of the zone: validate it all
                with self.lock:
                    self.stats["insecure_left"] += 1
                insecure = None
                fetched = yield from self.upstream.resolving(question, {r.name for r in anchors}, now,
                                                             forwarders, spent=fetched)
                outcome = fetched.outcome
            if isinstance(outcome, Failed):
                entry = self._stale(qname, qtype, outcome, now) or Answer(
                    dns.rcode.SERVFAIL, (), (), None, edes.failure_ede(outcome), now, 0)
                if entry.status is None:
                    log.info("SERVFAIL %s %s: %s", qname, qtype, outcome.reason)
            elif qtype == RdataType.RRSIG and outcome.evidence.answer:
                # RRSIG records: no signature covers them, so they are given unvalidated,
                # never with AD (as Unbound); their absence is proven as any other's
                entry = self.keeper.unvalidated(outcome.evidence, now)
            elif insecure is not None:
                with self.lock:
                    self.stats["insecure_known"] += 1
                self.metrics.count("validations", Status.INSECURE.value)
                entry = dataclasses.replace(self.keeper.unvalidated(outcome.evidence, now),
                                            zone=insecure.to_text())
            else:
                entry = self._judge(outcome.evidence, anchors, now, generation, ntas)
            if entry.status is Status.BOGUS:
                with self.lock:  # fetch afresh next time: the bad copy may have been in transit
                    self.cache.forget_messages(fetched.used)
                entry.ede = (*(yield from self._diagnosing(qname, forwarders, anchors, entry)), *entry.ede)
                log.info("bogus %s %s: %s", qname, dns.rdatatype.to_text(qtype),
                         "; ".join(t for _, t in entry.ede))
        return entry

    def _stale(self, qname: dns.name.Name, qtype: int, failed: Failed, now: int) -> Answer | None:
        """RFC 8767: when no server answers, an answer kept past its TTL (within the window,
        its RRSIGs still valid) is served for `stale_ttl` seconds at most (and not past an RRSIG's
        expiration), marked with EDE 3 (19 for an NXDOMAIN: RFC 8914 §4.20)."""
        if not failed.unreachable:
            return None
        with self.lock:
            stale = self.cache.stale_answer(qname, qtype, now)
        if stale is None:
            return None
        log.info("stale answer for %s %s: %s", qname, dns.rdatatype.to_text(qtype), failed.reason)
        expiring = [rd.expiration - now for r in (*stale.answer, *stale.authority)  # type: ignore[attr-defined]
                    if r.rdtype == RdataType.RRSIG for rd in r]  # RFC 4035 §5.3.3
        ttl = min(self.config.cache.stale_ttl, stale.stale_end(self.config.cache.stale_window) - now,
                  *expiring)
        code = edes.STALE_NXDOMAIN if stale.rcode == dns.rcode.NXDOMAIN else edes.STALE
        return Answer(stale.rcode, stale.answer, stale.authority, stale.status,
                      ((code, f"no server answered: {failed.reason}"[:edes.MAX_TEXT]),),
                      now, ttl, zone=stale.zone,
                      stale_until=stale.stale_end(self.config.cache.stale_window))

    def _judge(self, ev: Evidence, anchors: list[dns.rrset.RRset], now: int, generation: int,
               ntas: bool = True) -> Answer:
        """Validate the evidence; keep the zone keys and insecure cuts it proved, and a secure
        denial's NSEC/NSEC3 records for RFC 8198, if still in `generation`."""
        verdict = validate(ev, anchors, now, self.config.policy, self.verified,
                           self.keeper.negative_names(now) if ntas else ())
        status = Status.INSECURE if verdict.status is Status.INDETERMINATE else verdict.status
        self.metrics.count("validations", status.value)
        keys: list[tuple[dns.rrset.RRset, int]] = []
        cuts: list[tuple[dns.name.Name, int]] = []
        if status is not Status.BOGUS:
            keys = zone_keys(ev, verdict.links, {r.name for r in anchors}, now)
            cuts = insecure_cuts(ev, verdict.links, now)
        ttl = data_ttl(ev.rcode, ev.question.rdtype, ev.answer, ev.authority, self.config.cache)
        if verdict.ttl is not None:
            ttl = min(ttl, verdict.ttl)
        zone = denial_zone(ev.authority) if verdict.kind in _NEGATIVE else wildcard_zone(ev.answer)
        denied = zone if status is Status.SECURE else None  # its NSEC/NSEC3 records kept
        if keys or cuts or denied is not None:
            with self.lock:
                if generation == self.generation:
                    for rrset, seconds in keys:
                        self.cache.store_key_anchor(rrset, seconds, now)
                    for name, seconds in cuts:
                        self.cache.store_insecure(name, seconds, now)
                    if denied is not None:
                        self.cache.store_denials(denied, ev.answer,
                                                 verified_only(ev.authority, verdict.links),
                                                 ev.zones, now)
        zone = max((c.name for c in ev.zones if ev.question.name.is_subdomain(c.name)), key=len,
                   default=None)
        return Answer(ev.rcode, ev.answer, ev.authority, status, edes.verdict_ede(verdict), now, ttl,
                      zone=zone.to_text() if zone is not None else "", own_ttls=True)

    def _insecure_zone(self, qname: dns.name.Name, qtype: int, anchors: list[dns.rrset.RRset],
                       now: int) -> dns.name.Name | None:
        """The zone above `qname` kept as proven insecure, unless a trust anchor lies within
        it (the closest anchor wins, RFC 6840 §4.10) or the question is that zone's own DS
        (answered, and proven, by the secure parent)."""
        with self.lock:
            zone = self.cache.insecure_zone(qname.parent() if qtype == RdataType.DS and
                                            qname != dns.name.root else qname, now)
        if zone is None or any(r.name.is_subdomain(zone) for r in anchors):
            return None
        return zone

    def forwarders(self, qname: dns.name.Name) -> tuple[Server, ...]:
        """The servers of the deepest --forward zone holding `qname`; () to iterate."""
        zones = [(z, s) for z, s in self.config.forward if qname.is_subdomain(z)]
        return max(zones, key=lambda zs: len(zs[0]))[1] if zones else ()

    def _diagnosing(self, qname: dns.name.Name, forwarders: tuple[Server, ...],
                    anchors: list[dns.rrset.RRset], entry: Answer) -> transport.Asking[tuple[edes.Ede, ...]]:
        """Bogus through forwarders for want of records: ask each whether it passes DNSSEC
        records on — the keys of the trust anchor closest to `qname`, which it must pass on
        for anything under it to validate; one that does not is named (log, EDE 10)."""
        if not forwarders or not any(code in _MISSING for code, _ in entry.ede):
            return ()
        zone = max((r.name for r in anchors if qname.is_subdomain(r.name)), key=len,
                   default=min((r.name for r in anchors), key=len, default=dns.name.root))
        out = []
        for server in forwarders:
            problem = yield from self.upstream.probing(server, zone)
            if problem:
                log.warning("%s %s", server, problem)
                self._upstream_error(str(server), problem.split(" (")[0])
                out.append((edes.RRSIGS_MISSING, f"forwarder {server} {problem}"))
        return tuple(out)

    def _aggressive(self, qname: dns.name.Name, qtype: int, anchors: list[dns.rrset.RRset],
                    now: int) -> Answer | None:
        """RFC 8198: NXDOMAIN or NODATA from validated NSEC/NSEC3 records already kept, when
        the validator finds them a secure proof; None otherwise (ask upstream)."""
        with self.lock:
            kept = self.cache.denials(qname, now)
        if kept is None:
            return None
        return self._proven(qname, qtype, candidates(kept[0], qname, qtype, self.config.policy),
                            kept[1], anchors, now)

    def _proven(self, qname: dns.name.Name, qtype: int, offered: list[Evidence], remaining: int,
                anchors: list[dns.rrset.RRset], now: int) -> Answer | None:
        """The first of the `offered` proofs the validator finds secure, as an answer kept for
        at most `remaining` seconds; None when none is."""
        for ev in offered:
            verdict = validate(ev, anchors, now, self.config.policy, self.verified)
            if verdict.status is Status.SECURE and verdict.kind in (*_NEGATIVE, Kind.ANSWER):
                with self.lock:
                    self.stats["aggressive"] += 1
                ttl = min(data_ttl(ev.rcode, qtype, ev.answer, ev.authority, self.config.cache),
                          verdict.ttl or 0, remaining)
                return Answer(ev.rcode, ev.answer, ev.authority, Status.SECURE, (), now, ttl)
        return None

    def _policy(self, qname: dns.name.Name, entry: Answer) -> Answer:
        """require-secure: under those names anything not secure is a SERVFAIL that says so."""
        required = [n for n in self.config.require_secure if qname.is_subdomain(n)]
        if not required or entry.status in (Status.SECURE, None):
            return entry
        state = entry.status.value if entry.status else "unresolved"
        text = f"{max(required, key=len)} requires DNSSEC: this answer is {state}"[:edes.MAX_TEXT]
        entry.status = None
        entry.ede = ((edes.POLICY, text), *entry.ede)
        return entry

    def flush(self) -> None:
        """Empty the cache, and the responses rendered from it."""
        with self.lock:
            self.cache.flush()
            self._exact.clear()
            self.generation += 1

    # -- the config ------------------------------------------------------------------------------

    def reload(self) -> None:
        if self.config.source is None:
            log.info("SIGHUP: no config file to re-read; cache flushed")
            self.flush()
            return
        try:
            config = self._reread()
            if config.listens != self.config.listens:
                log.warning("SIGHUP: listen addresses are kept until a restart")
                config = dataclasses.replace(config, listens=self.config.listens)
            self.apply(config)
        except SigchainError as exc:
            log.error("SIGHUP: config not re-read, the old one stays: %s", exc)
            return
        log.info("SIGHUP: config %s re-read; cache flushed", self.config.source)


def _within(ev: Evidence, zone: dns.name.Name) -> bool:
    """Whether everything an answer holds is at or below `zone`."""
    return all(r.name.is_subdomain(zone) for r in (*ev.answer, *ev.authority))
