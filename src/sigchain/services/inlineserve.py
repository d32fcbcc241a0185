"""The authoritative server's inline-signing part (a mixin of `AuthoritativeService`): start
each inline zone, turn its changes into IXFR history, publish and NOTIFY, and run its timers
(signature refresh, key engine) on the event loop."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import dns.name

from sigchain.core.serve.index import ZoneIndex
from sigchain.core.serve.transfer import History, record_count
from sigchain.core.sign.difference import Diff
from sigchain.errors import SigchainError
from sigchain.services.inline import InlineZone, delta_of
from sigchain.services.inlineconfig import read_policy
from sigchain.services.serveconfig import ZoneConfig

if TYPE_CHECKING:
    from sigchain.services.authoritative import AuthoritativeService

log = logging.getLogger("sigchain.serve")
T = TypeVar("T")


def _itself(diff: Any) -> Diff | None:
    return diff  # type: ignore[no-any-return]

TIMER_POLL = 1.0  # seconds between looks at the inline zones' timers
RETRY_SECONDS = 60  # after a scheduled signing failed


class InlineServing:
    """What `AuthoritativeService` does for its inline-signed zones (`self.inline`)."""

    inline: dict[dns.name.Name, InlineZone]
    # per inline zone: the index last recorded in its IXFR history and its record count
    _inline_records: dict[dns.name.Name, tuple[ZoneIndex, int]]

    def _inline_start(self: AuthoritativeService, spec: ZoneConfig) -> ZoneIndex:
        """First load of an inline zone: keys, sign, index."""
        assert spec.policy is not None and spec.keys is not None
        iz = InlineZone(spec.name, spec.path, spec.keys, spec.policy, self.clock)
        iz.start(self.clock.now())
        self.inline[spec.name] = iz
        index, self.index_versions[spec.name] = iz.versioned()
        return index

    def _inline_history(self: AuthoritativeService, spec: ZoneConfig, old: ZoneIndex,
                        new: ZoneIndex, diff: Diff) -> None:
        """Record `diff` (old → new) in the zone's IXFR history."""
        if not spec.allow_transfer.entries or self.config.ixfr_history <= 0:
            self.histories[spec.name] = History()
            return
        from sigchain.services.authoritative import HISTORY_RECORDS_PER_ZONE_RECORD

        delta = delta_of(diff, old.soa, new.soa)
        # the zone's record count follows its deltas (counted whole once: not per change)
        counted = self._inline_records.get(spec.name)
        records = counted[1] - len(delta.deleted) + len(delta.added) \
            if counted is not None and counted[0] is old else record_count(new)
        self._inline_records[spec.name] = (new, records)
        history = self.histories.get(spec.name, History())
        self.histories[spec.name] = history.record(
            delta, max_deltas=self.config.ixfr_history,
            max_records=HISTORY_RECORDS_PER_ZONE_RECORD * records)
        log.info("zone %s serial %d -> %d: %d record(s) deleted, %d added", spec.name,
                 diff.old_serial, diff.new_serial, len(delta.deleted), len(delta.added))

    def _inline_take(self: AuthoritativeService, name: dns.name.Name, diff: Diff) -> bool:
        """Make the inline zone's current version the one to serve (history kept); whether
        it changed. Publishing is the caller's."""
        if diff.empty:
            return False
        spec = next(s for s in self.specs if s.name == name)
        new, self.index_versions[name] = self.inline[name].versioned()
        old = self.indexes.get(name)
        if old is not None and (old.serial, new.serial) == (diff.old_serial, diff.new_serial):
            self._inline_history(spec, old, new, diff)
        elif old is not None:  # another change came between: this diff is not old -> new
            log.warning("zone %s: serial %d -> %d published with another change; IXFR history "
                        "dropped", name, old.serial, new.serial)
            self.histories[name] = History()
        self.indexes[name] = new
        self.loaded_at[name] = self.clock.now()
        return True

    def publish_inline(self: AuthoritativeService, name: dns.name.Name, diff: Diff,
                       skip: int = 0) -> None:
        """Serve an inline zone's new version (after `apply_changes`, `resign_now`, a timer):
        IXFR history, the zone sets swapped, the workers brought to it (`_sync_workers`;
        `skip`: a worker waiting for this process), NOTIFY. On the event loop."""
        if not self._inline_take(name, diff):
            return
        self._publish()
        self._sync_workers(skip)
        self.notify(name)

    def _inline_reload(self: AuthoritativeService, spec: ZoneConfig) -> bool:
        """SIGHUP for an inline zone (in the reload thread): its unsigned file's changes
        re-signed incrementally; whether a new version is to be served."""
        diff = self.inline[spec.name].reload(self.clock.now())
        return self._inline_take(spec.name, diff)

    def _inline_policy(self: AuthoritativeService, spec: ZoneConfig) -> str | None:
        """SIGHUP: re-read an inline zone's policy file (a built-in policy cannot change);
        a bad or refused policy is logged and the running one kept. The outcome to report,
        None when nothing changed."""
        if spec.policy_file is None:
            return None
        iz = self.inline[spec.name]
        try:
            changed = iz.set_policy(read_policy(spec.policy_file), self.clock.now())
        except SigchainError as exc:
            log.error("zone %s: policy not changed: %s", spec.name, exc)
            return f"failed: {exc}"
        if not changed:
            return None
        log.info("zone %s: policy %s re-read from %s; the key engine runs now", spec.name,
                 iz.policy.name, spec.policy_file)
        return "policy re-read"

    @staticmethod
    def _inline_tick(iz: InlineZone, now: int) -> Diff:
        """The zone's due work (in a thread): the key engine if due, else a refresh batch
        (one change per tick, each its own version). A key engine that fails (a key
        directory others may write, a .private file others may read) is retried later and
        never holds up the refresh: signing needs no key file, and a signature left to
        expire blackholes the zone."""
        if iz.key_at is not None and iz.key_at <= now:
            try:
                return iz.key_event(now)
            except SigchainError as exc:
                iz.key_at = now + RETRY_SECONDS
                log.error("zone %s: key engine failed: %s; retried in %d s, signatures "
                          "refreshed meanwhile", iz.name, exc, RETRY_SECONDS)
        return iz.refresh_due(now)

    async def change_inline(self: AuthoritativeService, name: dns.name.Name,
                            change: Callable[[], T],
                            diff_of: Callable[[T], Diff | None] = _itself, skip: int = 0) -> T:
        """Every change to an inline zone (UPDATE, `ctl`, the parent check, the timers), one
        at a time: made off the event loop, then its version served (`publish_inline`;
        `skip`: the UDP worker that forwarded an UPDATE, waiting for the reply)."""
        from sigchain.services.authoritative import _in_thread

        async with self.updates.serial:
            out = await _in_thread(change)
            diff = diff_of(out)
            if diff is not None:
                self.publish_inline(name, diff, skip)
        return out

    async def _inline_timers(self: AuthoritativeService) -> None:
        """Wake each inline zone when its refresh or key event is due (looked at every
        TIMER_POLL seconds of the service's clock), its work done off the event loop and
        each change published as its own version. A failing tick is logged and retried."""

        while True:
            await asyncio.sleep(TIMER_POLL)
            if self._reloading is not None and not self._reloading.done():
                continue  # the reload publishes; the timers come back after it
            now = self.clock.now()
            for name, iz in self.inline.items():
                wake = iz.wake_at
                if wake is None or wake > now:
                    continue
                try:
                    await self.change_inline(name, functools.partial(self._inline_tick, iz, now))
                except SigchainError as exc:
                    log.error("zone %s: scheduled signing failed: %s; retried in %d s", name,
                              exc, RETRY_SECONDS)
                    iz.refresh_at = now + RETRY_SECONDS
