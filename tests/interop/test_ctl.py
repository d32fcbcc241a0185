"""`sigchain ctl` against a real `sigchain serve` process over its real control socket
(issue 15): the socket is 0600, a stale socket file is replaced, anything else in the way and
a directory others may write to are refused, commands work and fail with the right exit
codes. Everything binds in 127.63.0.0/16 (this file's range, shared with the UPDATE tests)."""

from __future__ import annotations

import json
import os
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_ZONE, sc
from tests.interop.test_serve_hardening import Server
from tests.zonetools import keygen

HOST = "127.63.0.1"


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("ctl")
    keys = base / "keys"
    keygen(keys, "example.test", "ksk")
    keygen(keys, "example.test", "zsk")
    out = base / "example.test.signed"
    sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", out, check=True)
    return out


def _serve(tmp: Path, zone: Path, sock: Path, workers: int = 1) -> Server:
    return Server(tmp, {"example.test": zone},
                  f'udp-workers = {workers}\ncontrol-socket = "{sock}"', host=HOST)


@pytest.fixture
def running(tmp_path: Path, signed: Path) -> Iterator[tuple[Server, Path, Path]]:
    live = tmp_path / "example.test.signed"
    live.write_text(signed.read_text())
    sock = tmp_path / "run" / "serve.sock"
    server = _serve(tmp_path, live, sock)
    yield server, sock, live
    assert server.stop() == 0, server.text()[-3000:]
    assert not sock.exists(), "the server left its control socket behind"


def ctl(sock: Path, *args: str) -> tuple[int, str, str]:
    r = sc("ctl", "--socket", sock, *args)
    return r.returncode, r.stdout, r.stderr


def test_socket_is_owner_only_and_status_shows_a_presigned_zone(
        running: tuple[Server, Path, Path]) -> None:
    server, sock, live = running
    mode = os.stat(sock).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
    assert stat.S_IMODE(os.stat(sock.parent).st_mode) == 0o700  # created owner-only
    code, out, err = ctl(sock, "status")
    assert code == 0, err
    serial = server.query("example.test.", "SOA").answer[0][0].serial  # type: ignore[attr-defined]
    assert f"zone example.test.: serial {serial}, pre-signed file {live}" in out
    code, out, err = ctl(sock, "status", "example.test", "--json")
    assert code == 0, err
    zone = json.loads(out)["zones"][0]
    assert zone["serial"] == serial and zone["file"] == str(live) and not zone["inline"]
    assert abs(zone["loaded_at"] - time.time()) < 120


def test_reload_through_ctl_serves_the_new_serial(running: tuple[Server, Path, Path],
                                                   signed: Path, tmp_path: Path) -> None:
    server, sock, live = running
    old = server.query("example.test.", "SOA").answer[0][0].serial  # type: ignore[attr-defined]
    code, out, _ = ctl(sock, "reload", "example.test.")
    assert code == 0 and out.strip() == "zone example.test.: unchanged"
    keys = tmp_path / "keys2"
    keygen(keys, "example.test", "csk")
    sc("sign", EXAMPLE_ZONE, "--keys", keys, "--serial", "increment", "-o", live, check=True)
    code, out, err = ctl(sock, "reload", "example.test", "--json")
    assert code == 0, err
    outcome = json.loads(out)["zones"]["example.test."]
    assert outcome == f"serial {old + 1}", out
    assert server.query("example.test.", "SOA").answer[0][0].serial == old + 1  # type: ignore[attr-defined]


def test_errors_have_their_exit_codes(running: tuple[Server, Path, Path], tmp_path: Path) -> None:
    server, sock, _ = running
    code, out, err = ctl(sock, "status", "nowhere.test")
    assert code == 2 and "zone nowhere.test. is not served here" in err and out == ""
    code, out, _ = ctl(sock, "status", "nowhere.test", "--json")
    assert code == 2 and json.loads(out)["error"]["code"] == "bad-input"
    code, _, err = ctl(sock, "sign", "example.test")
    assert code == 2 and "served from a signed file" in err
    code, _, err = ctl(tmp_path / "nothing.sock", "status")
    assert code == 3 and err.count("\n") == 1 and "no server listening" in err
    assert "Traceback" not in server.text()


def test_a_stale_socket_is_replaced_and_a_live_one_or_a_file_is_not(
        tmp_path: Path, signed: Path) -> None:
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    sock = run / "serve.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(sock))
    stale.close()  # the file stays: a server killed without cleaning up
    server = _serve(tmp_path, signed, sock, workers=2)
    try:
        assert ctl(sock, "status")[0] == 0
        assert "removing the stale socket" in server.text()
        # A second server on the same socket: refused (exit 3), the first keeps it.
        second = sc("serve", "--config", _config(tmp_path, signed, sock, "second"))
        assert second.returncode == 3 and "another server listens on it" in second.stderr
        assert ctl(sock, "status")[0] == 0
    finally:
        assert server.stop() == 0, server.text()[-3000:]
    sock.write_text("not a socket\n")
    third = sc("serve", "--config", _config(tmp_path, signed, sock, "third"))
    assert third.returncode == 4 and "not a socket" in third.stderr
    assert sock.read_text() == "not a socket\n"


def test_a_directory_others_may_write_is_refused(tmp_path: Path, signed: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    r = sc("serve", "--config", _config(tmp_path, signed, shared / "serve.sock", "shared"))
    assert r.returncode == 4 and "writable by others" in r.stderr
    assert "Traceback" not in r.stderr and not (shared / "serve.sock").exists()


def _config(tmp: Path, zone: Path, sock: Path, tag: str) -> Path:
    from tests.conftest import free_port

    path = tmp / f"{tag}.toml"
    path.write_text(f'[options]\nudp-workers = 1\ncontrol-socket = "{sock}"\n'
                    f'[zones."example.test."]\nfile = "{zone}"\n'
                    f'[[listen]]\naddress = "{HOST}#{free_port(HOST)}"\n')
    return path


@pytest.fixture
def inline(tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    """example.test signed by the server itself (policy ksk-zsk), with a control socket."""
    unsigned = tmp_path / "example.test.zone"
    unsigned.write_text(EXAMPLE_ZONE.read_text())
    sock = tmp_path / "run" / "serve.sock"
    # The zone goes in as a further table after [options] (Server writes file-only zones).
    server = Server(tmp_path, {}, f'udp-workers = 2\ncontrol-socket = "{sock}"\n'
                    f'[zones."example.test."]\nunsigned = "{unsigned}"\n'
                    f'keys = "{tmp_path / "keys"}"\npolicy = "ksk-zsk"\n', host="127.63.0.2")
    yield server, sock
    assert server.stop() == 0, server.text()[-3000:]
    assert "Traceback" not in server.text()


def _status(sock: Path) -> dict[str, object]:
    code, out, err = ctl(sock, "status", "example.test", "--json")
    assert code == 0, err
    zone: dict[str, object] = json.loads(out)["zones"][0]
    return zone


def _dnskeys(server: Server) -> set[int]:
    import dns.dnssec

    answer = server.query("example.test.", "DNSKEY").answer[0]
    return {dns.dnssec.key_id(rd) for rd in answer}  # type: ignore[arg-type]


def test_inline_zone_status_sign_roll_and_ds_seen(inline: tuple[Server, Path]) -> None:
    server, sock = inline
    zone = _status(sock)
    signing = zone["signing"]
    assert zone["inline"] and isinstance(signing, dict)
    keys = {k["role"]: k for k in signing["keys"]}
    assert set(keys) == {"ksk", "zsk"} and _dnskeys(server) == {k["tag"] for k in keys.values()}
    assert keys["ksk"]["states"]["ds"] == "hidden"  # the parent has not been told yet
    code, out, _ = ctl(sock, "status")
    assert code == 0 and "signed by this server (inline)" in out
    assert f"key {keys['zsk']['tag']} (zsk, algorithm 13): dnskey=rumoured" in out

    before = zone["serial"]
    code, out, err = ctl(sock, "sign", "example.test")
    assert code == 0, err
    served = server.query("example.test.", "SOA").answer[0][0].serial  # type: ignore[attr-defined]
    assert served > before and f"serial {served}" in out  # type: ignore[operator]

    zsk = keys["zsk"]["tag"]
    code, out, err = ctl(sock, "roll", "example.test", "--key", str(zsk))
    assert code == 0, err
    after = {k["tag"]: k for k in _status(sock)["signing"]["keys"]}  # type: ignore[index]
    new = set(after) - {k["tag"] for k in keys.values()}
    assert len(new) == 1 and after[zsk]["goal"] == "hidden"
    assert _dnskeys(server) == set(after)  # the successor's DNSKEY is served at once

    ksk = keys["ksk"]["tag"]
    code, out, err = ctl(sock, "ds-seen", "example.test", "--key", str(ksk), "--json")
    assert code == 0, err
    assert json.loads(out)["observation"] == "ds-published"
    assert f"key {ksk}: ds-seen" in server.text()
    code, _, err = ctl(sock, "roll", "example.test", "--key", "999")
    assert code == 2 and "no key 999" in err
