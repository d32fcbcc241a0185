"""RFC 2136 dynamic update in `sigchain serve`: an UPDATE (TSIG already checked by
`services.xfrout`) is matched against the zone's `allow-update` ACL (refused by default, as
BIND), checked and applied by `core.update.process` to the inline zone's unsigned data, then
re-signed and served (`InlineZone.apply_changes`, `publish_inline`) in one step on the event
loop, so each update is applied whole or not at all. The reply carries the rcode and is
TSIG-signed when the request was.

Forked answering workers hold only a snapshot of the zones: they pass an UPDATE to the main
process over a private Unix socket (in a 0700 directory of its own) and relay the reply."""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import logging
import os
import shutil
import tempfile
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

import dns.exception
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.tsig
import dns.update

from sigchain.core.serve.index import ZoneSet
from sigchain.core.update.process import UpdatePolicy, UpdateResult, process, zone_name
from sigchain.edge.ctlsocket import CtlServer, read_reply, request, send_request
from sigchain.edge.updatechannel import UpdateFailed, catch_up
from sigchain.errors import InputError, SigchainError

if TYPE_CHECKING:
    from sigchain.services.authoritative import AuthoritativeService

log = logging.getLogger("sigchain.update")

FORWARD_TIMEOUT = 10.0  # seconds a worker waits for the main process to apply an update


def _who(client: str, query: dns.message.Message) -> str:
    key = f" (TSIG {query.keyname.to_text(True)})" if query.had_tsig and query.keyname else ""
    return f"client {client}{key}"


class UpdateIntake:
    """UPDATE for the service's zones: answered in the main process, forwarded from workers."""

    def __init__(self, service: AuthoritativeService):
        self.service = service
        self.main_pid = os.getpid()
        self._dir: str | None = None
        self._server: CtlServer | None = None
        self.path: str | None = None  # the private socket the workers forward to
        self.serial = asyncio.Lock()  # one change to the inline zones at a time (and ctl's)

    def _reply(self, query: dns.message.Message, rcode: int) -> bytes:
        """The reply to an UPDATE (TSIG-signed when it was), with the server's EDNS UDP size
        (as every other answer of the server; dnspython's default would say 8192)."""
        response = dns.message.make_response(query, our_payload=self.service.config.udp_size)
        response.set_rcode(rcode)
        return response.to_wire()

    async def start(self) -> None:
        """Listen on the private socket (before the workers are forked)."""
        self.main_pid = os.getpid()
        self._dir = tempfile.mkdtemp(prefix="sigchain-update-")  # 0700, ours
        self.path = os.path.join(self._dir, "update.sock")
        self._server = CtlServer(self.path, self._forwarded)
        await self._server.start()

    async def close(self) -> None:
        if self._server is not None:
            await self._server.close()
            self._server = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    # ---- the handler's hook (any process) ------------------------------------------------

    def hook(self, zones: ZoneSet, query: dns.message.Message, wire: bytes, tcp: bool,
             client: str) -> bytes | Awaitable[bytes | None] | None:
        """`Primary`'s UPDATE hook: `query` is parsed and its TSIG verified. A zone this
        listener does not serve is NOTAUTH here; the rest is the main process's job."""
        name = zone_name(query) if isinstance(query, dns.update.UpdateMessage) else None
        if name is None:
            return self._reply(query, dns.rcode.FORMERR)
        if name not in zones.zones:
            log.info("%s: update for zone %s: not served here: NOTAUTH", _who(client, query), name)
            return self._reply(query, dns.rcode.NOTAUTH)
        if os.getpid() == self.main_pid:
            return self.answer(query, client)  # the main process's loop awaits it
        if self.path is None:
            return self._reply(query, dns.rcode.SERVFAIL)
        req = {"command": "update", "wire": base64.b64encode(wire).decode(), "client": client}
        if tcp:  # the TCP worker runs an event loop: wait beside it
            return self._forward_async(req)
        # A UDP worker waits here: the main process does not wait for it to take the new
        # version (`UdpWorkers.update`'s skip); it takes it before answering anything else.
        req["waiting"] = os.getpid()
        reply = self._forward(req)
        catch_up()
        return reply

    def _forward(self, req: dict[str, Any]) -> bytes | None:
        assert self.path is not None
        try:
            return self._result(request(self.path, req, timeout=FORWARD_TIMEOUT))
        except SigchainError as exc:
            return self._failed(exc)

    async def _forward_async(self, req: dict[str, Any]) -> bytes | None:
        """The TCP worker's forward: the request sent, then — while the main process works
        on it — the versions this worker was sent and has not applied yet (it takes them
        lazily, `UdpWorkers.update`), then the reply awaited beside the event loop."""
        assert self.path is not None
        try:
            conn = send_request(self.path, req, timeout=FORWARD_TIMEOUT)
            try:
                catch_up()
            except UpdateFailed:
                pass  # kept by the channel: the worker's next answer or idle moment ends it
            result = await asyncio.to_thread(read_reply, conn, self.path)
        except SigchainError as exc:
            return self._failed(exc)
        return self._result(result)

    @staticmethod
    def _result(result: dict[str, Any]) -> bytes | None:
        return base64.b64decode(result["wire"]) if result.get("wire") else None

    @staticmethod
    def _failed(exc: SigchainError) -> None:
        log.error("update forwarded to the main process failed: %s", exc)
        return None  # the client retries (nsupdate does), as after a lost datagram

    async def _forwarded(self, req: dict[str, Any]) -> dict[str, Any]:
        """The private socket's handler (main process): a worker's UPDATE, answered."""
        if req.get("command") != "update":
            raise InputError("only updates are taken on this socket")
        try:
            wire = base64.b64decode(str(req.get("wire", "")), validate=True)
        except (binascii.Error, ValueError):
            raise InputError("bad update wire") from None
        try:
            query = dns.message.from_wire(wire, keyring=dict(self.service.config.keys))
        except (dns.exception.DNSException, ValueError):
            return {"wire": None}  # the worker checked it: only a race with the clock here
        waiting = req.get("waiting")
        out = await self.answer(query, str(req.get("client", "")),
                                waiting if isinstance(waiting, int) else 0)
        return {"wire": base64.b64encode(out).decode()}

    # ---- the update itself (main process) ------------------------------------------------

    async def answer(self, query: dns.message.Message, client: str, waiting: int = 0) -> bytes:
        """Check, apply, re-sign and serve one update; the reply's wire (`waiting`: the
        UDP worker that forwarded it and waits for the reply)."""
        assert isinstance(query, dns.update.UpdateMessage)
        name = zone_name(query)
        who = _who(client, query)
        spec = next((s for s in self.service.specs if s.name == name), None)
        if name is None or spec is None:
            return self._reply(query, dns.rcode.NOTAUTH)
        inline = self.service.inline.get(name)
        if inline is None:
            log.warning("%s: update for zone %s: refused: the zone is served from a signed "
                        "file, not signed by this server", who, name)
            return self._reply(query, dns.rcode.REFUSED)
        key = query.keyname if query.had_tsig else None
        allowed = spec.allow_update.allows(client, key)
        now = self.service.clock.now()
        try:
            result, diff = await self.service.change_inline(
                name, functools.partial(self._apply, inline, query, name, allowed, now),
                lambda applied: applied[1], skip=waiting)
        except SigchainError as exc:
            log.error("%s: update for zone %s not applied: %s: SERVFAIL", who, name, exc)
            return self._reply(query, dns.rcode.SERVFAIL)
        if not result.ok:
            level = logging.WARNING if result.rcode == dns.rcode.REFUSED else logging.INFO
            log.log(level, "%s: update for zone %s: %s: %s", who, name, result.reason,
                    dns.rcode.to_text(result.rcode))
        elif result.changes.empty:
            log.info("%s: update for zone %s: nothing changed", who, name)
        else:
            log.info("%s: update for zone %s: %d RRset(s) replaced or removed, %d added or "
                     "replaced; serial %s", who, name, len(result.changes.removed),
                     len(result.changes.added), diff.new_serial if diff else "?")
        return self._reply(query, result.rcode)

    @staticmethod
    def _apply(inline: Any, query: dns.update.UpdateMessage, name: dns.name.Name,
               allowed: bool, now: int) -> tuple[UpdateResult, Any]:
        """In a thread, under the zone's lock: the update checked against the unsigned data
        and, if it changes something, applied and re-signed (all of it, or nothing)."""
        with inline.lock:
            result = process(query, inline.zone_data(), name, allowed,
                             UpdatePolicy(max_ttl=inline.policy.max_zone_ttl))
            if not result.ok or result.changes.empty:
                return result, None
            return result, inline.apply_changes(result.changes, now)
