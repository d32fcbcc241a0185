"""`sigchain serve`'s config for `sigchain ctl` and dynamic update (issue 15): the control
socket's path, `allow-update` lists, and their errors naming file and line; the control
socket made safely (mode 0600, refusals) without a server around it."""

from __future__ import annotations

import base64
import os
import socket
import stat
from pathlib import Path

import pytest

from sigchain.edge.ctlsocket import bind_socket
from sigchain.errors import InputError, OperationalError, UnsafeRefused
from sigchain.services.serveconfig import parse_config

SECRET = base64.b64encode(b"u" * 32).decode()
ZONE = '[zones."example.test."]\nfile = "z.signed"\n'


def test_control_socket_and_allow_update_parse(tmp_path: Path) -> None:
    text = (f'[options]\nudp-size = 1400\ncontrol-socket = "run/ctl.sock"\n'
            f'[keys.upd]\nalgorithm = "hmac-sha256"\nsecret = "{SECRET}"\n'
            f'{ZONE}allow-update = ["127.0.0.1 key:upd", "10.0.0.0/8"]\n')
    cfg = parse_config(text, str(tmp_path / "serve.toml"))
    assert cfg.control_socket == str(tmp_path / "run" / "ctl.sock")  # relative to the file
    assert cfg.udp_size == 1400  # the other options still read
    (zone,) = cfg.zones
    assert str(zone.allow_update) == "127.0.0.1/32 key:upd, 10.0.0.0/8"
    assert not zone.allow_transfer.entries  # a separate list


def test_by_default_no_socket_and_nobody_may_update(tmp_path: Path) -> None:
    cfg = parse_config(ZONE, str(tmp_path / "serve.toml"))
    assert cfg.control_socket is None
    assert not cfg.zones[0].allow_update.allows("127.0.0.1", None)


@pytest.mark.parametrize(("text", "line", "message"), [
    ("[options]\ncontrol-socket = 5\n" + ZONE, 2, "control-socket must be a path"),
    (ZONE + 'allow-update = ["key:nokey"]\n', 3, "no TSIG key 'nokey' is defined"),
    (ZONE + 'allow-update = ["300.1.1.1"]\n', 3, "allow-update: bad ACL entry"),
])
def test_bad_settings_name_their_line(tmp_path: Path, text: str, line: int,
                                      message: str) -> None:
    with pytest.raises(InputError) as info:
        parse_config(text, str(tmp_path / "serve.toml"))
    assert info.value.line == line and message in info.value.message


def test_the_socket_is_0600_even_under_a_loose_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        sock = bind_socket(str(tmp_path / "new" / "ctl.sock"))
    finally:
        os.umask(old)
    try:
        assert stat.S_IMODE(os.stat(tmp_path / "new" / "ctl.sock").st_mode) == 0o600
        assert stat.S_IMODE(os.stat(tmp_path / "new").st_mode) == 0o700
        with pytest.raises(OperationalError, match="another server listens"):
            bind_socket(str(tmp_path / "new" / "ctl.sock"))
    finally:
        sock.close()


def test_stale_socket_replaced_other_files_and_open_directories_refused(
        tmp_path: Path) -> None:
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(tmp_path / "ctl.sock"))
    stale.close()
    bind_socket(str(tmp_path / "ctl.sock")).close()
    (tmp_path / "file").write_text("x")
    with pytest.raises(UnsafeRefused, match="not a socket"):
        bind_socket(str(tmp_path / "file"))
    assert (tmp_path / "file").read_text() == "x"
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    open_dir.chmod(0o1777)  # even sticky, as /tmp: another user could squat the name first
    with pytest.raises(UnsafeRefused, match="writable by others"):
        bind_socket(str(open_dir / "ctl.sock"))


def test_parent_check_settings(tmp_path: Path) -> None:
    inline = ('[zones."example.test."]\nunsigned = "z.zone"\nkeys = "k"\npolicy = "default"\n')
    key = f'[keys.upd]\nalgorithm = "hmac-sha256"\nsecret = "{SECRET}"\n'
    text = (key + inline + 'parent-check = { servers = ["127.0.0.1#5353", "::1"], anchor = '
            '"p.anchor", interval = 5, submit = "127.0.0.1#5353", tsig = "upd" }\n')
    (zone,) = parse_config(text, str(tmp_path / "serve.toml")).zones
    pc = zone.parent_check
    assert pc is not None and [(s.host, s.port) for s in pc.servers] == [("127.0.0.1", 5353), ("::1", 53)]
    assert pc.anchor == str(tmp_path / "p.anchor") and pc.interval == 5
    assert pc.tsig is not None and pc.tsig.name.to_text() == "upd." and pc.hook is None
    for bad, message in (
            ('{ servers = [], anchor = "a" }', "must list the parent's servers"),
            ('{ servers = ["127.0.0.1"] }', "anchor must name"),
            ('{ servers = ["127.0.0.1"], anchor = "a", tsig = "upd" }', "give submit too"),
            ('{ servers = ["127.0.0.1"], anchor = "a", submit = "127.0.0.1", tsig = "x" }',
             "no TSIG key 'x'"),
            ('{ servers = ["127.0.0.1"], anchor = "a", submit = "127.0.0.1", tsig = "a..b" }',
             "tsig: bad key name"),
            ('{ servers = ["127.0.0.1"], anchor = "a", hook = "x", submit = "127.0.0.1" }',
             "not both")):
        with pytest.raises(InputError, match=message) as info:
            parse_config(key + inline + f"parent-check = {bad}\n", str(tmp_path / "s.toml"))
        assert info.value.line == 8
    with pytest.raises(InputError, match="needs a zone the server signs"):
        parse_config(ZONE + 'parent-check = { servers = ["127.0.0.1"], anchor = "a" }\n',
                     str(tmp_path / "s.toml"))


def test_a_control_connection_cut_by_the_shutdown_ends_without_a_traceback(tmp_path: Path) -> None:
    """A `sigchain ctl` request under way when the server stops: its task is cancelled, and
    on Python 3.11 a cancelled stream-server task makes the event loop log a traceback."""
    import asyncio

    from sigchain.edge.ctlsocket import CtlServer

    async def run() -> list[str]:
        logged: list[str] = []
        asyncio.get_running_loop().set_exception_handler(
            lambda _loop, context: logged.append(context["message"]))
        started = asyncio.Event()

        async def slow(req: dict) -> object:  # type: ignore[type-arg]
            started.set()
            await asyncio.sleep(60)
            return None

        server = CtlServer(str(tmp_path / "ctl.sock"), slow)
        await server.start()
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.connect(str(tmp_path / "ctl.sock"))
        client.sendall(b'{"command": "status"}\n')
        await asyncio.wait_for(started.wait(), 5)
        for task in asyncio.all_tasks():  # as asyncio.run cancels what is left at the end
            if task is not asyncio.current_task():
                task.cancel()
        for _ in range(5):
            await asyncio.sleep(0.01)
        client.close()
        await server.close()
        return logged

    assert asyncio.run(run()) == []
