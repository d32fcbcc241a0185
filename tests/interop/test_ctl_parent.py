"""The parent's DS step in a running `sigchain serve` (issue 15): an inline zone with
`parent-check` asks both parent servers (each a `sigchain serve` of the signed parent zone)
every second; while one is stale the KSK keeps waiting and `ctl status` names the servers that
disagree; once both have the DS the observation is recorded and the key engine moves on at
once. Everything binds in 127.63.2.0/24 (this file's range)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import sc
from tests.interop.test_parent_checkds import Parent
from tests.interop.test_serve_hardening import Server
from tests.zonetools import keygen

ZONE = "example.test."
A, B, CHILD = "127.63.2.1", "127.63.2.2", "127.63.2.3"
# Every delay a second, signatures re-made at once: a key reaches its DS step in seconds.
TIMINGS = {"dnskey-ttl": "1s", "max-zone-ttl": "1s", "publish-safety": "1s",
           "retire-safety": "1s", "zone-propagation-delay": "1s", "parent-ds-ttl": "1s",
           "parent-propagation-delay": "1s", "signatures-validity": "600s",
           "signatures-validity-dnskey": "600s", "signatures-refresh": "597s",
           "signatures-jitter": "1s"}
POLICY = "".join(f'{k} = "{v}"\n' for k, v in TIMINGS.items()) + \
    '[[keys]]\nrole = "ksk"\n[[keys]]\nrole = "zsk"\n'
UNSIGNED = f"$ORIGIN {ZONE}\n$TTL 1\n@ SOA ns hostmaster 1 3600 600 86400 1\n@ NS ns\n" \
           "ns A 192.0.2.53\nwww A 192.0.2.80\n"


@pytest.fixture
def parents(tmp_path: Path) -> Iterator[tuple[Parent, Parent, Path]]:
    pkeys = tmp_path / "pkeys"
    keygen(pkeys, "test.", "zsk")
    anchor = tmp_path / "parent.anchor"
    anchor.write_text(sc("ds", pkeys / f"{keygen(pkeys, 'test.', 'ksk')}.key", check=True).stdout)
    pair = [Parent(tmp_path, host, pkeys) for host in (A, B)]
    yield pair[0], pair[1], anchor
    for p in pair:
        p.stop()


def _child_keys(tmp: Path) -> dict:  # type: ignore[type-arg]
    """The child's files and keys (made before the server starts, to know its KSK): the KSK."""
    tmp.chmod(0o700)
    (tmp / "fast.toml").write_text(POLICY)
    (tmp / "child.zone").write_text(UNSIGNED)
    return next(k for k in _keys_of(ZONE, tmp / "fast.toml", tmp / "keys")["keys"]
                if k["role"] == "ksk")


def _keys_of(zone: str, policy: Path | str, keys: Path) -> dict:  # type: ignore[type-arg]
    sc("keys", "run", zone, "--policy", policy, "--keys", keys, check=True)
    return json.loads(sc("keys", "status", zone, "--keys", keys, "--json", check=True).stdout)


def _child(tmp: Path, parent_check: str, extra: str = "") -> tuple[Server, Path]:
    """The child's server, checking its parent every second; its control socket."""
    sock = tmp / "run" / "ctl.sock"
    server = Server(tmp, {}, f'udp-workers = 1\ncontrol-socket = "{sock}"\n{extra}'
                    f'[zones."{ZONE}"]\nunsigned = "{tmp / "child.zone"}"\n'
                    f'keys = "{tmp / "keys"}"\npolicy = "{tmp / "fast.toml"}"\n'
                    f'parent-check = {{ {parent_check}, interval = 1 }}\n', host=CHILD)
    return server, sock


def _status(sock: Path) -> dict:  # type: ignore[type-arg]
    r = sc("ctl", "--socket", sock, "status", ZONE, "--json", check=True)
    return json.loads(r.stdout)["zones"][0]  # type: ignore[no-any-return]


def _wait(what: str, test: object, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not test():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def test_the_roll_waits_for_every_parent_server_then_moves_on(
        tmp_path: Path, parents: tuple[Parent, Parent, Path]) -> None:
    a, b, anchor = parents
    ksk = _child_keys(tmp_path)
    ds = sc("ds", tmp_path / "keys" / f"{ksk['base']}.key", check=True).stdout.split("\n")
    ds = [line.replace(" IN DS ", " 1 IN DS ") for line in ds if line]
    at_a, at_b = a.serve(ds), b.serve([])  # B is stale: no DS yet
    server, sock = _child(tmp_path, f'servers = ["{at_a}", "{at_b}"], anchor = "{anchor}"')
    try:
        _wait("the KSK to wait for its DS", lambda: _status(sock)["signing"]["waiting"])
        zone = _status(sock)
        assert f"waiting for DS of key {ksk['tag']} at the parent" in zone["signing"]["waiting"][0]
        assert zone["parent"]["agree"] is False
        disagree = f"parent servers disagree on the DS of key {ksk['tag']}: at {at_a}; not at {at_b}"
        assert any(disagree in w for w in zone["parent"]["warnings"]), zone["parent"]
        text = sc("ctl", "--socket", sock, "status", check=True).stdout
        assert disagree in text and "do not agree" in text
        time.sleep(3)  # the roll does not move on time alone
        assert _status(sock)["signing"]["waiting"], "moved past the DS step on time alone"
        b.serve(ds, port=int(at_b.split("#")[1]))  # the stale server catches up
        _wait("the DS step to pass", lambda: not _status(sock)["signing"]["waiting"])
        zone = _status(sock)
        assert zone["parent"]["agree"] is True and not zone["parent"]["warnings"]
        state = next(k for k in zone["signing"]["keys"] if k["tag"] == ksk["tag"])
        assert state["states"]["ds"] != "hidden"
        assert f"key {ksk['id']} DS published at every parent server" in server.text()
    finally:
        assert server.stop() == 0, server.text()[-3000:]
    assert "Traceback" not in server.text()


PARENT_ZONE = "$ORIGIN test.\n$TTL 1\n@ SOA ns hostmaster 1 3600 600 86400 1\n@ NS ns\n" \
              f"ns A {A}\nexample NS ns.example\nns.example A {CHILD}\n"
SECRET = "c2lnY2hhaW4tZHMtcHVzaC10ZXN0LXNlY3JldC0wMTI="


def test_the_ds_is_pushed_by_update_to_a_sigchain_parent_once_it_accepts_it(
        tmp_path: Path) -> None:
    """The parent is itself an inline zone of `sigchain serve` taking DS updates; while it
    REFUSEs them the roll waits and `ctl status` says why; once it accepts, the DS is pushed,
    seen by the parent check, and the key engine moves on."""
    ksk, pkeys = _child_keys(tmp_path), tmp_path / "pk"
    (tmp_path / "parent.zone").write_text(PARENT_ZONE)
    csk = _keys_of("test.", "default", pkeys)["keys"][0]
    anchor = tmp_path / "parent.anchor"
    anchor.write_text(sc("ds", pkeys / f"{csk['base']}.key", check=True).stdout)
    tsig = f'[keys.dsup]\nalgorithm = "hmac-sha256"\nsecret = "{SECRET}"\n'
    parent_zone = (f'[zones."test."]\nunsigned = "{tmp_path / "parent.zone"}"\n'
                   f'keys = "{pkeys}"\npolicy = "default"\n')
    parent = Server(tmp_path, {}, "udp-workers = 1\n" + tsig + parent_zone, host=A)
    at = f"{A}#{parent.port}"
    child, sock = _child(tmp_path, f'servers = ["{at}"], anchor = "{anchor}", submit = "{at}", '
                                   'tsig = "dsup", warn-after = 1', tsig)
    try:
        refused = f"DS submission failed: parent primary {at} answered the UPDATE of {ZONE} DS " \
                  "in test. with REFUSED"
        _wait("the refused submission", lambda: any(
            refused in w for w in _status(sock).get("parent", {}).get("warnings", [])))
        assert f"waiting for DS of key {ksk['tag']}" in _status(sock)["signing"]["waiting"][0]
        assert refused in sc("ctl", "--socket", sock, "status", check=True).stdout
        stuck = f"DS of key {ksk['tag']} asked for since"
        _wait("the overdue warning", lambda: any(
            stuck in w and f"at no parent server yet ({at})" in w
            for w in _status(sock)["parent"]["warnings"]))
        assert parent.stop() == 0, parent.text()[-3000:]
        parent = Server(tmp_path, {}, "udp-workers = 1\n" + tsig + parent_zone
                        + 'allow-update = ["key:dsup"]\n', host=A, port=parent.port)
        _wait("the DS step to pass", lambda: not _status(sock)["signing"]["waiting"])
        assert f"DS set submitted by UPDATE to {at} (zone test.)" in child.text()
        served = parent.query(ZONE, "DS").answer
        assert {rd.key_tag for r in served if r.rdtype == 43 for rd in r} == {ksk["tag"]}
        verdict = _status(sock)["parent"]
        assert verdict["agree"] is True and verdict["warnings"] == []
    finally:
        assert child.stop() == 0, child.text()[-3000:]
        assert parent.stop() == 0, parent.text()[-3000:]
    assert "Traceback" not in child.text() + parent.text()
