"""RFC 5011 inside `sigchain resolver`: a root served by `sigchain serve` on 127.58.1.1 rolls its
KSK at fake times (K1 alone, K1+K2, K1 revoked, K2 alone). At each instant the resolver runs as a
new process under the clock-shift shim, its managed anchor (a DS for K1, as the built-in IANA
anchors are) kept in one state file: it refreshes through its own resolution, ends trusting K2
only (the state file says so), answers AD from the K2-only root and SERVFAILs on a root signed
by K1 alone. Zones are signed with inceptions at each instant and validities reaching past the
wall clock (the server checks them against its own, unshifted clock)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import dns.dnssec
import dns.edns
import dns.flags
import dns.message
import dns.query
import dns.rcode

from sigchain.core.validate.rfc5011 import KeyState
from sigchain.edge import keystore
from sigchain.services.anchors5011 import read_state
from tests import clockshift
from tests.conftest import need, sigchain_cmd, terminate
from tests.interop.test_resolver import _wait_ready
from tests.interop.test_rfc5011 import Root, _keyset, _root_zone, _sign_all
from tests.zonetools import keygen

ROOT, RESOLVER = "127.58.1.1", "127.58.1.2"
DAY = 86400


def _resolve_at(tmp: Path, shim: str, at: int, args: list[str], step: str,
                refresh: bool = True) -> tuple[str, dns.message.Message]:
    """Run the resolver with its clock at `at`, ask www.example. A (DO), wait for its anchor
    refresh (when due), ask again; (the log, the second reply). The process is stopped after."""
    log = tmp / f"resolver-{step}.log"
    with log.open("w") as out:
        proc = subprocess.Popen([*sigchain_cmd(), "resolver", "--listen", RESOLVER, *args],
                                stdout=out, stderr=subprocess.STDOUT, env=clockshift.environment(shim, at))
    try:
        _wait_ready(proc, log)
        query = dns.message.make_query("www.example.", "A", want_dnssec=True)
        dns.query.udp(query, RESOLVER, timeout=10)
        deadline = time.monotonic() + 20
        while refresh and "trust anchors refreshed" not in log.read_text():
            assert time.monotonic() < deadline and proc.poll() is None, log.read_text()
            time.sleep(0.05)
        return log.read_text(), dns.query.udp(query, RESOLVER, timeout=10)
    finally:
        terminate(proc)


def _trusting(log: str) -> str:
    return log.split("trust anchors refreshed: trusting ", 1)[1].split(";", 1)[0]


def test_resolver_follows_a_root_ksk_roll_across_restarts(tmp_path: Path) -> None:
    wall = int(time.time())
    t0 = wall - 45 * DAY
    t1, t2, t3 = t0 + DAY, t0 + 33 * DAY, t0 + 34 * DAY
    keys = tmp_path / "keys"
    k1, k2, zsk = (keygen(keys, ".", role) for role in ("ksk", "ksk", "zsk"))
    tag1, tag2 = int(k1.rsplit("+", 1)[1]), int(k2.rsplit("+", 1)[1])
    child_keys = tmp_path / "child-keys"
    keygen(child_keys, "example.", "csk")
    child_key = keystore.load_public(str(next(child_keys.glob("*.key"))))[2]
    child_ds = f"example. DS {dns.dnssec.make_ds('example.', child_key, 'SHA256').to_text()}"  # type: ignore[arg-type]
    revoked = _keyset(tmp_path, "revoked", keys, [k1, k2, zsk])
    subprocess.run([need("dnssec-revoke"), "-r", "-K", revoked, k1], check=True, capture_output=True)
    revoked_tag = next(int(p.stem.rsplit("+", 1)[1]) for p in revoked.glob("*.key")
                       if p.stem not in (k2, zsk))
    plan = [(_keyset(tmp_path, "k1", keys, [k1, zsk]), t0),
            (_keyset(tmp_path, "k1k2", keys, [k1, k2, zsk]), t1), (revoked, t2),
            (_keyset(tmp_path, "k2", keys, [k2, zsk]), t3), (tmp_path / "k1", t3)]
    child_zone, child = tmp_path / "example.zone", tmp_path / "example.signed"
    child_zone.write_text(f"$ORIGIN example.\n$TTL 3600\n@ SOA ns hostmaster 1 7200 3600 1209600 300\n"
                          f"@ NS ns\nns A {ROOT}\nwww A 192.0.2.1\n")
    for n in range(1, len(plan) + 1):
        (tmp_path / f"root.{n}.zone").write_text(_root_zone(n, child_ds, ROOT))
    _sign_all([(child_zone, child_keys, child, t0)] + [
        (tmp_path / f"root.{n}.zone", d, tmp_path / f"root.{n}.signed", at)
        for n, (d, at) in enumerate(plan, 1)])
    (tmp_path / "hints").write_text(f". 3600 NS ns.root.\nns.root. 3600 A {ROOT}\n")
    k1_key = keystore.load_public(str(keys / f"{k1}.key"))[2]
    anchor = tmp_path / "root.ds"
    anchor.write_text(f". 172800 IN DS {dns.dnssec.make_ds('.', k1_key, 'SHA256').to_text()}\n")  # type: ignore[arg-type]
    state = tmp_path / "state" / "root-anchors.json"  # its folder created by the resolver
    args = ["--root-hints", str(tmp_path / "hints"), "--managed-anchor", str(anchor),
            "--anchor-state", str(state)]
    shim = clockshift.build(tmp_path)
    root = Root(tmp_path, ROOT, 53)

    def run(serial: int, at: int, step: str, refresh: bool = True) -> tuple[str, dns.message.Message]:
        if root.serial != serial:
            root.publish(tmp_path / f"root.{serial}.signed", serial, child)
        return _resolve_at(tmp_path, shim, at, args, step, refresh)

    try:
        log, reply = run(1, t0, "t0")  # the DS primes to K1
        assert _trusting(log) == f". {tag1}" and reply.flags & dns.flags.AD, log
        log, _ = run(2, t1, "t1")  # K2 seen: add hold-down, not trusted yet
        assert _trusting(log) == f". {tag1}" and f"{tag2}" in log, log
        log, _ = run(2, t1 + 30 * DAY + 3600, "t1+30d")  # hold-down over: K2 trusted too
        assert _trusting(log) == ", ".join(f". {t}" for t in sorted((tag1, tag2))), log
        log, reply = run(3, t2, "t2")  # K1 revoked
        assert _trusting(log) == f". {tag2}" and reply.flags & dns.flags.AD, log
        points, _, _ = read_state(str(state))
        assert {(k.tag, k.state) for k in points[dns.name.root].keys} == {
            (revoked_tag, KeyState.REVOKED), (tag2, KeyState.VALID)}
        log, reply = run(4, t3, "t3-k2")  # the new-key-only root validates
        assert _trusting(log) == f". {tag2}" and reply.flags & dns.flags.AD, log
        assert reply.rcode() == dns.rcode.NOERROR
        log, reply = run(5, t3 + 60, "t3-k1", refresh=False)  # signed by the old key alone
        assert reply.rcode() == dns.rcode.SERVFAIL, log
        [ede] = [o for o in reply.options if o.otype == dns.edns.EDE]
        assert ede.code == 6 and "trust anchor for . matches no DNSKEY" in str(ede.text), ede
    finally:
        root.stop()
