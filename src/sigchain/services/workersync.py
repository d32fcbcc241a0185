"""Bringing the forked answering workers (`edge.udpworkers`) to the versions of the zones
the main process publishes (a mixin of `AuthoritativeService`).

An inline zone's change is sent to the running workers as its index patches (the same
`ZoneIndex.patched` steps the main process made, see `InlineZone.steps`) and the step of its
IXFR history: each worker makes the new version from its own copy — sharing everything
unchanged — and swaps it in whole between queries, then acknowledges; the main process
replies to an UPDATE and NOTIFYs once every worker serves the new version. No re-fork: the
workers keep their pids, memory and caches of other zones. A change that cannot be sent so
(a zone loaded whole from its file, a whole-zone re-sign, patches no longer kept) forks the
workers anew, as a reload always did."""

from __future__ import annotations

import logging
import pickle
from typing import TYPE_CHECKING, Any

import dns.name

from sigchain.core.serve.index import ZoneIndex
from sigchain.core.serve.transfer import History, after_step, history_step
from sigchain.errors import InputError

if TYPE_CHECKING:
    from sigchain.services.authoritative import AuthoritativeService

log = logging.getLogger("sigchain.serve")

# What the workers serve: every zone's index, IXFR history and (inline zones) index version.
Synced = tuple[dict[dns.name.Name, ZoneIndex], dict[dns.name.Name, History],
               dict[dns.name.Name, int]]


class WorkerSync:
    """The workers' side of publishing (see module doc)."""

    indexes: dict[dns.name.Name, ZoneIndex]
    histories: dict[dns.name.Name, History]
    index_versions: dict[dns.name.Name, int]  # an inline zone's version published (its steps)
    let_go: set[dns.name.Name]  # zones being reloaded, their old version let go of
    _synced: Synced | None  # what the workers were last brought to

    def _synced_now(self: AuthoritativeService) -> Synced:
        return dict(self.indexes), dict(self.histories), dict(self.index_versions)

    def _start_workers(self: AuthoritativeService) -> None:
        """(Re)start the UDP worker processes on the current zones (see edge/udpworkers)."""
        if self._udp and self._workers.count:
            self._workers.start(self._udp, self._tcp)
            self._synced = self._synced_now()

    def _sync_workers(self: AuthoritativeService, skip: int = 0) -> None:
        """After `_publish`: every worker brought to the versions published, by an update
        when it can be sent, else by forking them anew; returns once they answer from them
        (`skip`: a worker waiting for this process, see `UdpWorkers.update`)."""
        if not (self._udp and self._workers.count):
            return
        message = self._worker_message()
        if message is None:
            self._start_workers()
            self._workers.wait_released()  # before a NOTIFY brings a secondary's IXFR
            return
        if message:
            self._workers.update(pickle.dumps(message, pickle.HIGHEST_PROTOCOL), skip=skip)
        self._synced = self._synced_now()

    def _worker_message(self: AuthoritativeService) -> list[tuple[Any, ...]] | None:
        """Per changed zone: (name, serial the workers have, serial published, index
        patches, history step); None when some change cannot be sent as patches."""
        if self._synced is None:
            return None
        indexes, histories, versions = self._synced
        if self.indexes.keys() - indexes.keys() or indexes.keys() - self.indexes.keys() - self.let_go:
            return None  # a zone the workers lack, or one gone (but for those let go of, whose
            # new version a reload is making: the workers keep answering from their copy)
        out: list[tuple[Any, ...]] = []
        for name, index in self.indexes.items():
            old = indexes[name]
            hist = history_step(histories.get(name), self.histories.get(name))
            if index is old:
                if hist is not None:
                    out.append((name, old.serial, index.serial, [], hist))
                continue
            iz = self.inline.get(name)
            since, until = versions.get(name), self.index_versions.get(name)
            if iz is None or since is None or until is None:
                return None
            steps = iz.steps(since, until)
            if steps is None:
                return None
            out.append((name, old.serial, index.serial, steps, hist))
        return out

    def _worker_update(self: AuthoritativeService, payload: bytes) -> None:
        """In a worker: apply a `_worker_message` — the zones' new versions made from this
        process's own, all swapped in at once. Raises (and the worker is replaced) when they
        do not follow on from what it serves."""
        changes = pickle.loads(payload)
        indexes = dict(self.indexes)
        histories = dict(self.histories)
        for name, since, until, steps, hist in changes:
            index = indexes.get(name)
            if index is None or index.serial != since:
                raise InputError(f"zone {name}: update from serial {since} does not follow "
                                 f"on serial {index.serial if index else None} served here")
            for removed, added in steps:
                index = index.patched(removed, added)
            if index.serial != until:
                raise InputError(f"zone {name}: update made serial {index.serial}, not {until}")
            indexes[name] = index
            if hist is not None:
                histories[name] = after_step(histories.get(name), hist)
        self.indexes, self.histories = indexes, histories
        self._publish()
