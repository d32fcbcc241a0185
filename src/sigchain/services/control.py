"""`sigchain ctl`'s commands on the running server: status, reload, sign, roll, ds-seen and
ds-gone, each on a zone the server serves, through the service's own paths (the SIGHUP reload,
the inline signer, the key manager). Runs on the server's event loop (see edge.ctlsocket)."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import dns.exception
import dns.name

from sigchain.edge.ctlsocket import CtlServer
from sigchain.errors import InputError
from sigchain.services import keymanager
from sigchain.services.parentwatch import ParentWatch

if TYPE_CHECKING:
    from sigchain.services.authoritative import AuthoritativeService

log = logging.getLogger("sigchain.ctl")

COMMANDS = ("status", "reload", "sign", "roll", "ds-seen", "ds-gone")
_OBSERVATIONS = {"ds-seen": "ds-published", "ds-gone": "ds-withdrawn"}


class Control:
    """The control socket's handler: one request → the command's result (a dict), or a
    SigchainError whose exit code the client keeps (unknown zone: InputError, exit 2)."""

    def __init__(self, service: AuthoritativeService, watch: ParentWatch | None = None):
        self.service = service
        self.watch = watch
        self._commands: dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]] = {
            "status": self.status, "reload": self.reload, "sign": self.sign,
            "roll": self.roll, "ds-seen": self.observe, "ds-gone": self.observe,
        }

    async def __call__(self, req: dict[str, Any]) -> dict[str, Any]:
        run = self._commands.get(req["command"])
        if run is None:
            raise InputError(f"unknown control command {req['command']!r} (expected one of "
                             f"{', '.join(COMMANDS)})")
        return await run(req)

    # ---- helpers -------------------------------------------------------------------------

    def _zone(self, req: dict[str, Any]) -> dns.name.Name:
        text = req.get("zone")
        if not isinstance(text, str) or not text:
            raise InputError(f"{req['command']}: a zone name is needed")
        try:
            name = dns.name.from_text(text)
        except dns.exception.DNSException as exc:
            raise InputError(f"bad zone name {text!r}: {exc}") from None
        if all(spec.name != name for spec in self.service.specs):
            served = ", ".join(s.name.to_text() for s in self.service.specs)
            raise InputError(f"zone {name} is not served here (zones: {served})")
        return name

    def _inline(self, name: dns.name.Name, command: str) -> Any:
        zone = self.service.inline.get(name)
        if zone is None:
            raise InputError(f"{command}: zone {name} is served from a signed file, not signed "
                             "by this server (no policy): nothing to do")
        return zone

    def _now(self) -> int:
        return self.service.clock.now()

    # ---- commands ------------------------------------------------------------------------

    async def status(self, req: dict[str, Any]) -> dict[str, Any]:
        """Each zone (or the one named): serial, file, when loaded; for an inline zone its
        signing state and what `keys status` says."""
        names = [self._zone(req)] if req.get("zone") else [s.name for s in self.service.specs]
        return {"zones": [await self._zone_status(n) for n in names]}

    async def _zone_status(self, name: dns.name.Name) -> dict[str, Any]:
        spec = next(s for s in self.service.specs if s.name == name)
        index = self.service.indexes.get(name)
        out: dict[str, Any] = {
            "zone": name.to_text(), "file": spec.path,
            "serial": None if index is None else index.serial,
            "loaded_at": self.service.loaded_at.get(name), "inline": False,
        }
        inline = self.service.inline.get(name)
        if inline is not None:
            out["inline"] = True
            out["signing"] = await asyncio.to_thread(inline.status, self._now())
            if self.watch is not None and name in self.watch.last:
                out["parent"] = self.watch.last[name]
        return out

    async def reload(self, req: dict[str, Any]) -> dict[str, Any]:
        """The SIGHUP reload (every changed file is read; the outcome of the zone named, or
        of all)."""
        name = self._zone(req) if req.get("zone") else None
        outcome = await self.service.reload_now()
        if name is not None:
            outcome = {name.to_text(): outcome.get(name.to_text(), "unchanged")}
        return {"zones": outcome}

    async def sign(self, req: dict[str, Any]) -> dict[str, Any]:
        """Re-sign the inline zone now (as `rndc sign`)."""
        name = self._zone(req)
        inline = self._inline(name, "sign")
        await self._change(name, inline.resign_now, self._now())
        return self._served(name)

    async def roll(self, req: dict[str, Any]) -> dict[str, Any]:
        """Start rolling a key now (as `rndc dnssec -rollover`); the key engine acts at once."""
        name = self._zone(req)
        inline, tag = self._inline(name, "roll"), self._tag(req)
        now = self._now()
        started = await asyncio.to_thread(keymanager.start_roll, name, inline.keydir, tag, now)
        await self._change(name, inline.key_event, now)
        return {**self._served(name), "key": started.stored.key.id, "tag": started.stored.tag}

    async def observe(self, req: dict[str, Any]) -> dict[str, Any]:
        """The operator's word that the key's DS is at (ds-seen) or gone from (ds-gone) every
        parent server (as `rndc dnssec -checkds`); the key engine acts at once."""
        name = self._zone(req)
        inline, tag = self._inline(name, req["command"]), self._tag(req)
        now = self._now()
        kind = _OBSERVATIONS[req["command"]]
        sk = await asyncio.to_thread(keymanager.observe, name, inline.keydir, tag, kind, now)
        await self._change(name, inline.key_event, now)
        return {**self._served(name), "key": sk.key.id, "tag": sk.tag, "observation": kind,
                "since": now}

    async def _change(self, name: dns.name.Name, change: Callable[[int], Any], now: int) -> None:
        """Make a change to an inline zone off the event loop, then serve it (one at a time)."""
        await self.service.change_inline(name, functools.partial(change, now))

    def _tag(self, req: dict[str, Any]) -> str:
        tag = req.get("key")
        if not isinstance(tag, str) or not tag:
            raise InputError(f"{req['command']}: --key TAG is needed")
        return tag

    def _served(self, name: dns.name.Name) -> dict[str, Any]:
        index = self.service.indexes.get(name)
        return {"zone": name.to_text(), "serial": None if index is None else index.serial}


class Channels:
    """What `serve` listens on besides DNS: the control socket (when `control-socket` is set)
    and the update intake's private socket; opened before the workers fork, closed last."""

    def __init__(self, service: AuthoritativeService):
        self.service = service
        self.ctl: CtlServer | None = None
        self.watch = ParentWatch(service)
        self._watching: asyncio.Task[None] | None = None

    async def open(self) -> None:
        await self.service.updates.start()
        path = self.service.config.control_socket
        if path is not None:
            self.ctl = CtlServer(path, Control(self.service, self.watch))
            try:
                await self.ctl.start()
            except BaseException:
                await self.service.updates.close()
                raise
            log.info("control socket %s (sigchain ctl)", self.ctl.path)
        if self.watch.specs:
            self._watching = asyncio.get_running_loop().create_task(self.watch.run())

    async def close(self) -> None:
        if self._watching is not None:
            self._watching.cancel()
            await asyncio.gather(self._watching, return_exceptions=True)
        if self.ctl is not None:
            await self.ctl.close()
        await self.service.updates.close()
