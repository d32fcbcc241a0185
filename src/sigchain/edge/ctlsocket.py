"""The control socket (`sigchain ctl` ↔ `sigchain serve`): a Unix stream socket, owner-only
(0600), carrying one JSON request line and one JSON reply line per connection.

The server side (`CtlServer`) creates its socket safely: it refuses a directory others may
write to (they could swap the socket for theirs), replaces a socket file only when nothing
listens on it (a stale one left by a killed server), refuses any other file in the way, and
binds under a umask so the socket is never, even for an instant, open to others. The client
side (`request`) is blocking: the CLI and the forked answering workers use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import stat
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from sigchain.errors import InputError, OperationalError, SigchainError, UnsafeRefused

log = logging.getLogger("sigchain.ctl")

MAX_LINE = 1 << 20  # bytes in one request or reply line
CLIENT_TIMEOUT = 60.0  # seconds the client waits for a reply (a reload may take a while)

Request = dict[str, Any]
Reply = dict[str, Any]
CtlHandler = Callable[[Request], Awaitable[Any]]


def error_reply(exc: SigchainError) -> Reply:
    """The reply for a command that could not be done; the client exits with `exit`."""
    return {"ok": False, "error": {"message": str(exc), "exit": exc.exit_code}}


def _check_directory(directory: str) -> None:
    """Refuse a directory that someone other than its owner (us or root) may write to."""
    try:
        st = os.stat(directory)
    except FileNotFoundError:
        try:
            os.makedirs(directory, mode=0o700)
        except OSError as exc:
            raise OperationalError(f"control socket directory {directory}: cannot create "
                                   f"it: {exc.strerror or exc}") from None
        return
    except OSError as exc:
        raise OperationalError(f"control socket directory {directory}: "
                               f"{exc.strerror or exc}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise InputError(f"control socket directory {directory} is not a directory")
    if st.st_uid not in (0, os.geteuid()):
        raise UnsafeRefused(f"control socket directory {directory} belongs to user "
                            f"{st.st_uid}: refused (it could replace the socket)")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UnsafeRefused(f"control socket directory {directory} is writable by others "
                            f"(mode {stat.S_IMODE(st.st_mode):o}): refused (they could "
                            "replace the socket); use a directory only its owner may write")


def _listening(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        try:
            s.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            return False
        except OSError:
            return True  # it exists and is not plainly dead: leave it alone
        return True


def _clear_stale(path: str) -> None:
    """Remove a socket file nobody listens on; refuse anything else in the way."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise UnsafeRefused(f"control socket {path}: a file that is not a socket is in the "
                            "way: refused (remove it yourself if it is not needed)")
    if _listening(path):
        raise OperationalError(f"control socket {path}: another server listens on it")
    log.info("control socket %s: removing the stale socket of a server that is gone", path)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


@contextlib.contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def bind_socket(path: str) -> socket.socket:
    """A listening Unix socket at `path`, mode 0600, made as the module docstring says."""
    path = os.path.abspath(path)
    _check_directory(os.path.dirname(path))
    _clear_stale(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with _umask(0o177):
            sock.bind(path)
        os.chmod(path, 0o600)
        sock.listen(16)
    except OSError as exc:
        sock.close()
        raise OperationalError(f"control socket {path}: cannot listen: "
                               f"{exc.strerror or exc}") from None
    return sock


class CtlServer:
    """Answers each connection's request line with `handler`'s result as one reply line."""

    def __init__(self, path: str, handler: CtlHandler):
        self.path = os.path.abspath(path)
        self.handler = handler
        self._server: asyncio.AbstractServer | None = None
        self._inode: int | None = None

    async def start(self) -> None:
        sock = bind_socket(self.path)
        self._inode = os.stat(self.path).st_ino
        self._server = await asyncio.start_unix_server(self._client, sock=sock, limit=MAX_LINE)

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        await self._server.wait_closed()
        self._server = None
        with contextlib.suppress(OSError):  # only our own socket, not a successor's
            if os.stat(self.path).st_ino == self._inode:
                os.unlink(self.path)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 10)
            reply = await self._answer(line)
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        except (ConnectionError, TimeoutError, asyncio.LimitOverrunError, ValueError):
            pass
        except asyncio.CancelledError:  # the server stopping: end, not raise (on 3.11 the
            pass  # stream server's callback logs a traceback for a cancelled task)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _answer(self, line: bytes) -> Reply:
        try:
            req = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            return error_reply(InputError("control request is not one line of JSON"))
        if not isinstance(req, dict) or not isinstance(req.get("command"), str):
            return error_reply(InputError('control request must be {"command": ...}'))
        try:
            return {"ok": True, "result": await self.handler(req)}
        except SigchainError as exc:
            return error_reply(exc)
        except Exception as exc:  # never leave the client without an answer
            log.exception("control command %s failed", req.get("command"))
            return error_reply(OperationalError(f"{req['command']}: internal error: {exc}"))


_BY_EXIT: dict[object, type[SigchainError]] = {2: InputError, 3: OperationalError,
                                               4: UnsafeRefused}


def request(path: str, req: Request, timeout: float = CLIENT_TIMEOUT) -> Any:
    """Send `req` to the server at `path`; its result, or the SigchainError it reported
    (exit code kept). No server there: OperationalError (exit 3)."""
    return read_reply(send_request(path, req, timeout), path)


def send_request(path: str, req: Request, timeout: float = CLIENT_TIMEOUT) -> socket.socket:
    """`request`'s first half: `req` sent; the connection its reply comes on."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
    except OSError as exc:
        s.close()
        raise OperationalError(f"no server listening on control socket {path}: "
                               f"{exc.strerror or exc}") from None
    try:
        s.sendall(json.dumps(req).encode() + b"\n")
    except OSError as exc:
        s.close()
        raise OperationalError(f"control socket {path}: {exc.strerror or exc}") from None
    return s


def read_reply(s: socket.socket, path: str) -> Any:
    """`request`'s second half: the reply read from `s` (closed then)."""
    with s:
        try:
            data = b""
            while not data.endswith(b"\n") and len(data) < MAX_LINE:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError as exc:
            raise OperationalError(f"control socket {path}: {exc.strerror or exc}") from None
    try:
        reply = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise OperationalError(f"control socket {path}: no valid reply from the server") from None
    if not reply.get("ok"):
        error = reply.get("error") or {}
        kind = _BY_EXIT.get(error.get("exit"), OperationalError)
        raise kind(str(error.get("message", "the server reported a failure")))
    return reply.get("result")
