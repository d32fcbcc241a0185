"""The parent's DS step in the running server: for an inline zone with `parent-check`, ask
every parent server for the zone's DS every `interval` seconds (services.parentcheck: over TCP,
validated, all must agree), record what every server shows in the key state, and run the key
engine at once when that changes, so a roll moves past its DS step on the parent's word, never
on time alone. The last verdict, with the servers that still disagree, is kept for `ctl status`
and logged as a warning whenever it changes."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import dns.name
import dns.tsig

from sigchain.core.validate.anchors import Server, parse_server
from sigchain.errors import InputError, SigchainError
from sigchain.services.configtext import Reader, key_ref

if TYPE_CHECKING:
    from sigchain.services.authoritative import AuthoritativeService

log = logging.getLogger("sigchain.parent")

DEFAULT_INTERVAL = 60  # seconds between checks (Knot's check-interval default)
DEFAULT_WARN_AFTER = 86400  # a DS asked for (CDS published) and at no parent server this long
POLL = 1.0  # seconds between looks at which zone is due


@dataclass(frozen=True)
class ParentCheckSettings:
    """A zone's `parent-check = { servers = [...], anchor = FILE, interval = SECONDS }`, and
    how to push the DS set when the parent lacks it: `submit = "ADDR[#PORT]"` (an UPDATE to
    the parent's primary, signed with `tsig`, a key of the config) or `hook = "CMD"`."""

    servers: tuple[Server, ...]
    anchor: str  # DS/DNSKEY records (or BIND trust-anchors) for the parent or above it
    interval: int = DEFAULT_INTERVAL
    warn_after: int = DEFAULT_WARN_AFTER
    submit: Server | None = None
    tsig: dns.tsig.Key | None = None
    hook: str | None = None


def parse_settings(r: Reader, value: Any, where: str, line: int | None,
                   keys: Mapping[dns.name.Name, dns.tsig.Key]) -> ParentCheckSettings:
    """The `parent-check` table of a zone in `serve`'s config."""
    what = f"{where}.parent-check"
    if not isinstance(value, dict):
        raise r.fail(f"{what} must be a table: {{ servers = [...], anchor = \"FILE\" }}", line)
    r.unknown(value, ("servers", "anchor", "interval", "warn-after", "submit", "tsig", "hook"),
              what, None)
    servers = r.string_list(value.get("servers", []), f"{what}.servers", line)
    if not servers or not all(isinstance(s, str) for s in servers):
        raise r.fail(f"{what}.servers must list the parent's servers as \"ADDR[#PORT]\"", line)
    try:
        parsed = tuple(parse_server(s, what="parent server") for s in servers)
    except (InputError, ValueError) as exc:
        raise r.fail(f"{what}.servers: {exc}", line) from None
    anchor = value.get("anchor")
    if not isinstance(anchor, str) or not anchor:
        raise r.fail(f"{what}.anchor must name the trust anchor file for the parent", line)
    interval, warn_after = (value.get(k, d) for k, d in (("interval", DEFAULT_INTERVAL),
                                                         ("warn-after", DEFAULT_WARN_AFTER)))
    for key, v, most in (("interval", interval, 86400), ("warn-after", warn_after, 1 << 30)):
        if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= most:
            raise r.fail(f"{what}.{key} must be 1..{most} seconds", line)
    return ParentCheckSettings(parsed, r.file_path(anchor), interval, warn_after,
                               *_submission(r, value, what, line, keys))


def _submission(r: Reader, value: Mapping[str, Any], what: str, line: int | None,
                keys: Mapping[dns.name.Name, dns.tsig.Key],
                ) -> tuple[Server | None, dns.tsig.Key | None, str | None]:
    submit, tsig, hook = value.get("submit"), value.get("tsig"), value.get("hook")
    if submit is not None and hook is not None:
        raise r.fail(f"{what}: submit (an UPDATE) or hook, not both", line)
    if tsig is not None and submit is None:
        raise r.fail(f"{what}.tsig signs the UPDATE of submit: give submit too", line)
    for name, v in (("submit", submit), ("tsig", tsig), ("hook", hook)):
        if v is not None and (not isinstance(v, str) or not v):
            raise r.fail(f"{what}.{name} must be a string", line)
    server = key = None
    if submit is not None:
        try:
            server = parse_server(submit, what="parent primary")
        except (InputError, ValueError) as exc:
            raise r.fail(f"{what}.submit: {exc}", line) from None
    if tsig is not None:
        key = keys[key_ref(r, tsig, f"{what}.tsig", line, keys)]
    return server, key, hook


class ParentWatch:
    """Runs the parent checks of the service's inline zones that have `parent-check`."""

    def __init__(self, service: AuthoritativeService):
        self.service = service
        self.specs = [s for s in service.specs
                      if s.parent_check is not None and s.inline]
        self.last: dict[dns.name.Name, dict[str, Any]] = {}  # for `ctl status`
        self._logged: dict[dns.name.Name, tuple[str, ...]] = {}
        self._pushed: dict[dns.name.Name, frozenset[object]] = {}  # the DS set last submitted

    async def run(self) -> None:
        due = {s.name: 0 for s in self.specs}
        while True:
            for spec in self.specs:
                now = self.service.clock.now()
                if due[spec.name] <= now:
                    await self.check(spec)
                    due[spec.name] = now + spec.parent_check.interval
            await asyncio.sleep(POLL)

    async def check(self, spec: Any) -> None:
        """One check of one zone; the key engine runs when the observations changed."""
        from sigchain.core.parent.agreement import disagreements
        from sigchain.services import parentcheck, trace

        name, settings = spec.name, spec.parent_check
        now = self.service.clock.now()
        try:
            anchors = trace.read_anchors(settings.anchor)
            result = await asyncio.to_thread(parentcheck.check, name, spec.keys, now, anchors,
                                             servers=settings.servers)
        except (SigchainError, OSError) as exc:
            self._report(name, {"at": now, "agree": False, "warnings": [
                f"zone {name}: parent check failed: {exc}; the roll keeps waiting"]})
            return
        a = result.agreement
        warnings = disagreements(a) + [f"zone {name}: parent server {s.server}: {s.error}"
                                       for s in a.failed]
        warnings += await asyncio.to_thread(self._overdue, spec, a, now)
        failed = await self._submit(spec, a, now)
        self._report(name, {"at": now, "parent": result.parent.zone.to_text(),
                            "servers": [s.server for s in a.servers], "agree": a.agree,
                            "warnings": warnings + ([failed] if failed else [])})
        if not (result.changes.record or result.changes.forget):
            return
        for ob in result.changes.record:
            log.info("zone %s: parent check: key %s %s at every parent server", name, ob.key,
                     "DS published" if ob.kind == "ds-published" else "DS withdrawn")
        inline = self.service.inline[name]
        await self.service.change_inline(
            name, functools.partial(inline.key_event, self.service.clock.now()))

    @staticmethod
    def _overdue(spec: Any, a: Any, now: int) -> list[str]:
        """The keys whose DS was asked for (CDS published) more than `warn-after` ago and that
        no parent server shows yet: the registrar's update lags or failed (a warning state,
        never an outage: the old chain stays)."""
        from sigchain.core.dnssec.timefmt import format_utc
        from sigchain.services import keymanager

        state, _ = keymanager.stored_zone(spec.name, spec.keys)
        asked = {sk.key.id: sk.key.cds_published for sk in state.keys
                 if sk.key.ds_published is None and sk.key.cds_published is not None
                 and sk.key.cds_withdrawn is None}
        return [f"zone {spec.name}: DS of key {row.key.tag} asked for since "
                f"{format_utc(asked[row.key.id])} and at no parent server yet "
                f"({', '.join(row.absent)}): the roll waits; is the parent's DS update stuck?"
                for row in a.keys if row.state == "withdrawn" and row.key.id in asked
                and now - asked[row.key.id] >= spec.parent_check.warn_after]

    async def _submit(self, spec: Any, a: Any, now: int) -> str | None:
        """Push the DS set the key state wants when a parent server lacks it (once per set;
        again after a failure at the next check). Nothing is recorded: the check confirms."""
        from sigchain.services import dssubmit

        settings, name = spec.parent_check, spec.name
        if settings.submit is None and settings.hook is None:
            return None
        wanted, _, insecure = await asyncio.to_thread(dssubmit.wanted_now, name, spec.keys, now)
        want = frozenset((d.key_tag, d.algorithm, d.digest_type, d.digest)
                         for w in wanted for d in w.ds)
        if all(s.ds is not None and s.key_set() == want for s in a.servers):
            self._pushed.pop(name, None)  # there: should it go missing, push it again
            return None
        if not want and not insecure:
            return None
        if self._pushed.get(name) == want:
            return None
        try:
            done = await asyncio.to_thread(dssubmit.submit, name, spec.keys, now,
                                           update=settings.submit, tsig=settings.tsig,
                                           hook=settings.hook, force=insecure)
        except SigchainError as exc:
            return f"zone {name}: DS submission failed: {exc}; retried at the next check"
        self._pushed[name] = want
        log.info("zone %s: DS set submitted by %s: %s", name, done.how,
                 "; ".join(done.lines) or "empty (going insecure)")
        return None

    def _report(self, name: dns.name.Name, verdict: Mapping[str, Any]) -> None:
        self.last[name] = dict(verdict)
        lines = tuple(verdict["warnings"])
        if lines != self._logged.get(name):
            for line in lines:
                log.warning("%s", line)
            if not lines and name in self._logged:
                log.info("zone %s: parent servers agree again", name)
            self._logged[name] = lines
