"""Inline signing in `sigchain serve` (BIND's `dnssec-policy` + `inline-signing yes`): an
`InlineZone` owns one zone's unsigned file, key directory and policy, the `SignedZone` made
from them, its signature-refresh queue and key-engine wake-up, and the serials it served."""

from __future__ import annotations

import collections
import functools
import logging
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from dns.rdatatype import RdataType

from sigchain.clock import SYSTEM, Clock
from sigchain.core.dnssec.rrsig import SigWindow
from sigchain.core.rollover.policy import KeyPolicy
from sigchain.core.serve.fromwire import Served, served_form
from sigchain.core.serve.index import ZoneIndex
from sigchain.core.serve.transfer import RR, Delta
from sigchain.core.sign.difference import Diff, same
from sigchain.core.sign.incremental import SignedZone
from sigchain.core.sign.refresh import INCEPTION_SKEW, RefreshQueue
from sigchain.core.sign.signer import SignOptions
from sigchain.core.update.changes import ChangeSet, DictZone, ZoneData
from sigchain.core.zone import nsec3hash
from sigchain.core.zone.records import RRsetRec, key_of, name_of
from sigchain.core.zone.shape import DNSSEC_GENERATED
from sigchain.edge import keystore, zonefile
from sigchain.errors import InputError, SigchainError
from sigchain.services import inlinestate, keymanager, signing
from sigchain.services.inlineconfig import refresh_policy
from sigchain.services.inlinestate import Ident
from sigchain.services.reloadmem import collector_held_off

log = logging.getLogger("sigchain.inline")
T = TypeVar("T")

# Records the signer makes at the apex from the keys and the policy: an unsigned file's own
# copies are ignored (as BIND's inline signing takes the DNSKEY RRset from the key directory).
SIGNER_MADE = DNSSEC_GENERATED | {RdataType.DNSKEY, RdataType.CDS, RdataType.CDNSKEY}
MAX_STEPS = 64  # index patches kept for `InlineZone.steps`
# A bigger patch is not kept (a whole-zone re-sign: the workers are forked anew for it).
MAX_STEP_RRSETS = 20_000


def changes_between(old: DictZone, new: DictZone) -> ChangeSet:
    """The change set turning unsigned data `old` into `new` (RRsets compared by records)."""
    removed = [r for k, node in old.nodes.items() for t, r in node.items()
               if not same(new.rrset(k, t), r)]
    added = [r for k, node in new.nodes.items() for t, r in node.items()
             if not same(old.rrset(k, t), r)]
    return ChangeSet(tuple(removed), tuple(added))


def delta_of(diff: Diff, old_soa: dns.rrset.RRset, new_soa: dns.rrset.RRset) -> Delta:
    """An incremental signer's difference as the IXFR history keeps it."""
    deleted, added = diff.records()

    def rrs(records: frozenset[tuple]) -> frozenset[RR]:  # type: ignore[type-arg]
        return frozenset((name_of(k), ttl, dns.rdata.from_wire(dns.rdataclass.IN, t, w, 0, len(w)))
                         for k, ttl, t, w in records if t != RdataType.SOA)

    return Delta(old_soa, new_soa, rrs(deleted), rrs(added))


def _locked(method: Callable[..., T]) -> Callable[..., T]:
    """The zone's lock held for the call: a reload thread, a timer tick and `sigchain ctl`
    change the zone one at a time."""

    @functools.wraps(method)
    def call(self: InlineZone, *args: Any) -> T:
        with self.lock:
            return method(self, *args)

    return call


class InlineZone:
    """One inline-signed zone; its changing methods take its lock (`self.lock`, reentrant:
    hold it across `apply_changes` and `index` to publish exactly the version made)."""

    def __init__(self, name: dns.name.Name, unsigned: str, keys: str, policy: KeyPolicy,
                 clock: Clock = SYSTEM) -> None:
        self.name, self.unsigned_path, self.keydir, self.policy = name, unsigned, keys, policy
        self.clock = clock
        self.okey = key_of(name)
        self.refresh = refresh_policy(policy)
        self.zone: SignedZone | None = None
        self.unsigned = DictZone(self.okey, [])
        self.queue = RefreshQueue(())
        self.refresh_at: int | None = None  # when the next signature refresh is due
        self.key_at: int | None = None  # when the key engine must run next
        self.salt = b""  # NSEC3 salt (kept in the state: a restart keeps the chain)
        self.opts = SignOptions(self.window(clock.now()))
        self._index: ZoneIndex | None = None
        # The versions of the index (counted from 1) and the latest patches between them,
        # (version made, RRsets removed, RRsets added) in `served_form`: what a server's
        # forked workers are sent to make the same versions from theirs (`steps`).
        self.version = 0
        self._steps: collections.deque[tuple[int, list[Served] | None, list[Served] | None]] = \
            collections.deque(maxlen=MAX_STEPS)
        self.lock = threading.RLock()
        # RRsets dynamic updates changed, kept over reloads and restarts (inlinestate)
        self.dynamic: inlinestate.Dynamic = {}

    # ---- the pieces the server (and `sigchain ctl`) call ---------------------------------

    @_locked
    def start(self, now: int) -> ZoneIndex:
        """First load: run the key engine (making keys on the first run), read the unsigned
        file, sign it all, serve it with a serial above any served before."""
        rrsets = self._read_unsigned()  # first: no keys made for a zone that cannot load
        self.dynamic = inlinestate.load_dynamic(self.keydir, self.zone_text)
        rrsets, forget = self._with_updates(rrsets)
        self._run_keys(now)
        keys = keystore.load_zone_keys(self.keydir, self.name)
        state = inlinestate.load(self.keydir, self.zone_text)
        p = self.policy.nsec3
        if state.salt is not None:
            self.salt = state.salt
        elif p is not None and p.salt_length:
            self.salt = os.urandom(p.salt_length)
        nsec3 = None if p is None else nsec3hash.Nsec3Params(p.iterations, self.salt, p.optout)
        # cds=False: CDS/CDNSKEY follow the key engine's SyncPublish windows only (never
        # "while a KSK is active", which would ask for a DS before the plan does)
        self.opts = SignOptions(self.window(now), nsec3, cds=False, serial="keep",
                                cds_delete=self.policy.insecure,
                                **signing.cds_options(self.policy))
        self.unsigned = DictZone(self.okey, rrsets)
        zone, warnings = SignedZone.sign(rrsets, self.name, keys, self.opts, now)
        for w in warnings:
            log.warning("zone %s: %s", self.name, w.message)
        if state.serial is not None:
            zone.serial_above(state.serial, now, self.window(now))
        self.zone = zone
        self.queue = RefreshQueue(zone.expirations())
        self._changed(Diff((), (), zone.serial, zone.serial), now, "signed", forget=forget)
        for kt in forget:
            del self.dynamic[kt]
        return self.index()

    def zone_data(self) -> ZoneData:
        """The unsigned view an UPDATE's prerequisites and changes are checked against."""
        return self.unsigned

    @_locked
    def apply_changes(self, changes: ChangeSet, now: int) -> Diff:
        """Apply a change to the unsigned data and re-sign what it touches; the server then
        publishes the difference (`AuthoritativeService.publish_inline`). Refused (InputError,
        UnsafeRefused) before anything changes when the result would be no zone. The RRsets
        it changes are kept in the state with the version (a dynamic update outlives reloads
        and restarts until the unsigned file itself changes that RRset)."""
        after = {(r.key, r.rdtype): r for r in changes.added}
        kept = {kt: (self.dynamic[kt][0] if kt in self.dynamic
                     else inlinestate.digest(self.unsigned.rrset(*kt)), after.get(kt))
                for kt in changes.touched()}
        diff = self._apply(changes, now, "update", kept)
        self.dynamic.update(kept)
        return diff

    def _apply(self, changes: ChangeSet, now: int, what: str,
               kept: inlinestate.Dynamic | None = None, forget: tuple[Ident, ...] = ()) -> Diff:
        mine = [r for r in (*changes.removed, *changes.added) if r.rdtype in SIGNER_MADE]
        if mine:
            raise InputError(f"{mine[0].owner}: {dns.rdatatype.to_text(mine[0].rdtype)} is "
                             "made by the signer from the key directory")
        diff = self._changed(self._signed().apply(changes, self.window(now), now), now, what,
                             kept, forget)
        self.unsigned.apply(changes)  # recorded: kept
        return diff

    @_locked
    def reload(self, now: int) -> Diff:
        """SIGHUP: the unsigned file's changes since it was read, applied incrementally; an
        RRset a dynamic update changed keeps the update's content unless the file changed it."""
        rrsets, forget = self._with_updates(self._read_unsigned())
        changes = changes_between(self.unsigned, DictZone(self.okey, rrsets))
        if changes.empty:
            if forget:  # the file now says what the update did: the file has it again
                inlinestate.forget_dynamic(self.keydir, self.zone_text, forget)
            diff = Diff((), (), self._signed().serial, self._signed().serial)
        else:
            diff = self._apply(changes, now, "reload", forget=forget)
        for kt in forget:  # once the state has forgotten them too
            del self.dynamic[kt]
        return diff

    def _with_updates(self, rrsets: list[RRsetRec]) -> tuple[list[RRsetRec], tuple[Ident, ...]]:
        """The unsigned file's RRsets with those dynamic updates changed in their place, and
        the updated RRsets whose file version changed since (the file wins: forgotten)."""
        if not self.dynamic:
            return rrsets, ()
        data = {(r.key, r.rdtype): r for r in rrsets}
        forget = []
        for kt, (base, value) in self.dynamic.items():
            if inlinestate.digest(data.get(kt)) != base:
                forget.append(kt)
            elif value is None:
                data.pop(kt, None)
            else:
                data[kt] = value
        return list(data.values()), tuple(forget)

    @_locked
    def resign_now(self, now: int) -> Diff:
        """Re-sign every RRset now (`sigchain ctl sign`): the whole zone's signatures."""
        zone = self._signed()
        due = [(k, t) for k, t, _ in zone.expirations()]
        return self._changed(zone.resign(due, self.window(now), now), now, "re-sign")

    @_locked
    def refresh_due(self, now: int) -> Diff:
        """A timer tick: re-sign a bounded batch of the signatures coming due (their new
        expirations spread over signatures-jitter); `refresh_at` says when to come back."""
        plan = self.queue.plan(now, self.refresh, self.seed(now))
        diff = Diff((), (), self._signed().serial, self._signed().serial)
        if plan.due:
            diff = self._signed().resign(plan.due, plan.window, now)
            log.info("zone %s: signatures of %d of %d RRsets refreshed", self.name,
                     len(plan.due), len(self.queue))
        return self._changed(diff, now, f"refresh of {len(plan.due)} RRset(s)", timed=True)

    @_locked
    def key_event(self, now: int) -> Diff:
        """Run the key engine now and bring the signed zone in line with its keys (DNSKEY,
        CDS/CDNSKEY and the signatures of the keys that sign now)."""
        self._run_keys(now)
        keys = keystore.load_zone_keys(self.keydir, self.name)
        diff, warnings = self._signed().rekey(keys, now, self.window(now))
        for w in warnings:
            log.warning("zone %s: %s", self.name, w.message)
        return self._changed(diff, now, "key event", timed=True)

    @_locked
    def set_policy(self, policy: KeyPolicy, now: int) -> bool:
        """A policy re-read on SIGHUP: keys, lifetimes, timings and signature settings
        take effect at once (the key engine runs at the next tick: a new algorithm starts
        an algorithm roll, a shorter lifetime a roll, as BIND's reconfig does); whether it
        changed. The denial (NSEC/NSEC3) and going insecure need a restart: InputError."""
        if policy == self.policy:
            return False
        for what, old, new in (("NSEC/NSEC3 settings", self.policy.nsec3, policy.nsec3),
                               ("insecure", self.policy.insecure, policy.insecure)):
            if old != new:
                raise InputError(f"policy {policy.name}: a change of {what} applies at the "
                                 "next restart; the running policy stays until then")
        try:
            self.refresh = refresh_policy(policy)
        except ValueError as exc:
            raise InputError(f"policy {policy.name}: {exc}") from None
        self.policy = policy
        self.key_at = now
        return True

    def status(self, now: int) -> dict[str, object]:
        """The keys as `keys status --json` shows them, the serial served, the next refresh
        and the next key event."""
        st = keymanager.status(self.name, self.keydir, now)
        return {"zone": self.zone_text, "now": now, "policy": self.policy.name,
                "serial": self._signed().serial, "keys": keymanager.status_rows(st),
                "waiting": list(st.waiting),
                "next_refresh": self.refresh_at, "next_key_event": self.key_at,
                "unsigned": self.unsigned_path, "key_directory": self.keydir}

    # ---- inside ----------------------------------------------------------------------------

    @property
    def zone_text(self) -> str:
        return self.name.to_text()

    def seed(self, now: int) -> bytes:
        return now.to_bytes(8, "big") + self.zone_text.encode()

    def window(self, now: int) -> SigWindow:
        """The signature window of a change made at `now` (validity with its jitter)."""
        return SigWindow(now - INCEPTION_SKEW, self.policy.signatures_validity + INCEPTION_SKEW,
                         self.policy.signatures_jitter, self.seed(now))

    def _signed(self) -> SignedZone:
        if self.zone is None:
            raise InputError(f"zone {self.name} is not signed yet")
        return self.zone

    def _run_keys(self, now: int) -> None:
        result = keymanager.run(self.name, self.policy, self.keydir, now, clock=self.clock)
        for a in result.plan.actions:
            log.info("zone %s: key %s: %s (%s)", self.name, a.key, a.kind, a.reason)
        self.key_at = result.plan.wake_at

    def _read_unsigned(self) -> list[RRsetRec]:
        origin, rrsets, warnings = zonefile.load_records(self.unsigned_path, self.zone_text)
        for w in warnings:
            log.warning("%s", w)
        if origin != self.name:
            raise InputError(f"the unsigned file is for {origin}, not {self.name}",
                             file=self.unsigned_path)
        dropped = {r.rdtype for r in rrsets if r.rdtype in SIGNER_MADE}
        if dropped:
            log.warning("zone %s: %s in %s ignored: the signer makes them", self.name,
                        ", ".join(sorted(dns.rdatatype.to_text(t) for t in dropped)),
                        self.unsigned_path)
        kept = [r for r in rrsets if r.rdtype not in SIGNER_MADE]
        signing.check_max_zone_ttl(kept, self.policy, self.unsigned_path)
        return kept

    def _changed(self, diff: Diff, now: int, what: str, kept: inlinestate.Dynamic | None = None,
                 forget: tuple[Ident, ...] = (), timed: bool = False) -> Diff:
        """After every change: the serial served recorded first (before it is served), then
        the refresh queue follows the change, the index is made anew, the next refresh
        planned. A record that fails (a full disk, a locked state) takes the change back from
        the signed zone and raises: all of it, or nothing (RFC 2136 §3.7), and never a
        version served that a restart would not know of. But not a `timed` one (a signature
        refresh, a key event): the zone must follow its key state and keep its signatures
        fresh whatever the disk does, so it is served, with an error logged. Until a record
        succeeds again, a restart starts from the serial last recorded: secondaries holding a
        later one ignore the new versions until the serial passes it (the error says so)."""
        zone = self._signed()
        if not diff.empty or self._index is None:
            try:
                inlinestate.record(self.keydir, self.zone_text, zone.serial, self.salt, now,
                                   what, len(diff.removed), len(diff.added), dynamic=kept,
                                   forget=forget)
            except SigchainError as exc:
                if not timed or self._index is None:
                    zone.revert(diff)
                    raise
                log.error("zone %s: %s served with serial %d, not recorded (a restart now "
                          "would go back to the serial last recorded): %s", self.name, what,
                          zone.serial, exc)
            except BaseException:
                zone.revert(diff)
                raise
            self.queue.track(diff)
            self._follow(diff)
        nxt = self.queue.plan(now, self.refresh, b"")
        self.refresh_at = nxt.wake if not nxt.due else now
        return diff

    @_locked
    def index(self) -> ZoneIndex:
        """The signed zone as the server answers from it (one per version)."""
        if self._index is None:
            raise InputError(f"zone {self.name} is not signed yet")
        return self._index

    @_locked
    def versioned(self) -> tuple[ZoneIndex, int]:
        """The index served now and its version (see `steps`)."""
        return self.index(), self.version

    def steps(self, since: int, until: int) -> list[tuple[list[Served], list[Served]]] | None:
        """The patches (`ZoneIndex.patched`'s arguments) that turn version `since` of the
        index into version `until`, in order; None when they are not all kept (a version
        built whole, or too many since)."""
        with self.lock:
            out = [(removed, added) for v, removed, added in self._steps if since < v <= until]
        if len(out) != until - since or any(r is None or a is None for r, a in out):
            return None
        return out  # type: ignore[return-value]

    def _follow(self, diff: Diff) -> None:
        """The index follows the zone: built whole at the first signing, then each version
        patched from the last with the difference (a change costs its size, not the zone's)."""
        self.version += 1
        if self._index is None:
            with collector_held_off():
                self._index = ZoneIndex.from_served(self.name,
                                                    served_form(self._signed().rrsets()))
            self._steps.clear()
        else:
            removed, added = served_form(diff.removed), served_form(diff.added)
            self._index = self._index.patched(removed, added)
            small = len(removed) + len(added) <= MAX_STEP_RRSETS
            self._steps.append((self.version, removed if small else None,
                                added if small else None))

    @property
    def wake_at(self) -> int | None:
        """When a timer must next call `refresh_due` or `key_event`."""
        times = [t for t in (self.refresh_at, self.key_at) if t is not None]
        return min(times) if times else None
