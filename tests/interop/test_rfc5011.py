"""RFC 5011 over the wire: a root served by `sigchain serve` on 127.58.0.1 (with a signed child,
example.) rolls its KSK at fake times — K1 alone, then K1+K2, then K1 revoked — and
ManagedAnchors, refreshed at those times over real sockets, ends trusting only K2; the state
file carries that across a restart. Zones are signed by `sigchain sign` with their inception at
each fake instant and a validity that also covers the wall clock, so the server (which checks
signatures against the wall clock) serves every version; "time passing" is `now` passed to
refresh and validate, and a SIGHUP with the zone file of that instant. BIND's dnssec-verify
checks the revoked root (K1 signing the DNSKEY RRset itself) as an independent oracle.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import dns.dnssec
import dns.message
import dns.name
import dns.query
import dns.rdatatype
import dns.rrset

from sigchain.core.validate.anchors import Server
from sigchain.core.validate.rfc5011 import KeyState
from sigchain.core.validate.validator import Question
from sigchain.edge import keystore
from sigchain.services import anchors5011
from sigchain.services.trace import trace
from tests.conftest import free_port, need, sigchain_cmd, terminate
from tests.zonetools import keygen

HOST = "127.58.0.1"
DAY = 86400
N = dns.name.from_text
WWW = Question(N("www.example."), dns.rdatatype.A)


def _dnskey(keydir: Path, base: str):  # type: ignore[no-untyped-def]
    return keystore.load_public(str(keydir / f"{base}.key"))[2]


def _keyset(tmp: Path, name: str, source: Path, bases: list[str]) -> Path:
    """A key directory holding copies of some keys (mode 0700, as sign requires)."""
    d = tmp / name
    d.mkdir(mode=0o700)
    for base in bases:
        for suffix in (".key", ".private"):
            shutil.copy2(source / f"{base}{suffix}", d / f"{base}{suffix}")
    return d


def _sign_all(jobs: list[tuple[Path, Path, Path, int]]) -> None:
    """`sigchain sign` for each (unsigned, keys, output, fake instant), all at once: the
    inception at the instant, a validity that also covers the wall clock."""
    procs = [(subprocess.Popen([*sigchain_cmd(), "sign", str(unsigned), "--keys", str(keys), "-o", str(out),
                                "--inception", str(at - 3600), "--validity", "100d", "--jitter", "0",
                                "--threads", "1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True), out) for unsigned, keys, out, at in jobs]
    for proc, out in procs:
        text = proc.communicate(timeout=120)[0]
        assert proc.returncode == 0, f"sigchain sign -o {out} exited {proc.returncode}:\n{text}"


def _root_zone(serial: int, child_ds: str, host: str = HOST) -> str:
    return f"""$ORIGIN .
$TTL 3600
@ SOA ns.root. hostmaster.root. {serial} 7200 3600 1209600 300
@ NS ns.root.
ns.root. A {host}
example. NS ns.example.
ns.example. A {host}
{child_ds}
"""


class Root:
    """The root zone (and example.) served by `sigchain serve` on `host` (port: a free one
    unless given); each version a new serial."""

    def __init__(self, tmp: Path, host: str = HOST, port: int | None = None):
        self.tmp = tmp
        self.host = host
        self.port = free_port(host) if port is None else port
        self.live = tmp / "root.signed"
        self.serial = 0
        self.proc: subprocess.Popen | None = None  # type: ignore[type-arg]

    def publish(self, signed: Path, serial: int, child: Path) -> None:
        """Serve `signed` as the root: start the server, or swap the file in and SIGHUP."""
        self.serial = serial
        if self.proc is None:
            shutil.copy(signed, self.live)
            self.log = self.tmp / "serve.log"
            args = [*sigchain_cmd(), "serve", "--listen", f"{self.host}#{self.port}", "--udp-workers", "1",
                    "--zone", f".={self.live}", "--zone", f"example.={child}"]
            with open(self.log, "w") as log:
                self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        else:
            staged = self.tmp / "root.staged"
            shutil.copy(signed, staged)
            os.replace(staged, self.live)
            self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while self._served_serial() != self.serial:
            assert self.proc.poll() is None, f"sigchain serve exited:\n{self.log.read_text()}"
            assert time.monotonic() < deadline, f"serial {self.serial} not served:\n{self.log.read_text()}"
            time.sleep(0.05)

    def _served_serial(self) -> int | None:
        try:
            r = dns.query.udp(dns.message.make_query(".", "SOA"), self.host, port=self.port, timeout=1)
        except (OSError, dns.exception.Timeout):
            return None
        return int(r.answer[0][0].serial) if r.answer else None  # type: ignore[attr-defined]

    @property
    def server(self) -> Server:
        return Server(self.host, self.port)

    def stop(self) -> None:
        terminate(self.proc)


def _tags(anchors: list[dns.rrset.RRset]) -> set[int]:
    return {dns.dnssec.key_id(rd) for r in anchors if r.rdtype == dns.rdatatype.DNSKEY for rd in r}  # type: ignore[arg-type]


def test_root_ksk_roll_is_followed_and_survives_restart(tmp_path: Path) -> None:
    wall = int(time.time())
    t0 = wall - 45 * DAY  # every instant below lies in [t0, wall]: the signatures cover them all
    t1, t2, t3 = t0 + DAY, t0 + 33 * DAY, t0 + 34 * DAY
    keys = tmp_path / "keys"
    k1, k2, zsk = (keygen(keys, ".", role) for role in ("ksk", "ksk", "zsk"))
    child_keys = tmp_path / "child-keys"
    keygen(child_keys, "example.", "csk")
    child_key = keystore.load_public(str(next(child_keys.glob("*.key"))))[2]
    child_ds = f"example. DS {dns.dnssec.make_ds('example.', child_key, 'SHA256').to_text()}"  # type: ignore[arg-type]
    only_k1 = _keyset(tmp_path, "k1", keys, [k1, zsk])
    both = _keyset(tmp_path, "k1k2", keys, [k1, k2, zsk])
    revoked = _keyset(tmp_path, "revoked", keys, [k1, k2, zsk])
    subprocess.run([need("dnssec-revoke"), "-r", "-K", revoked, k1], check=True, capture_output=True)
    tag1, tag2 = int(k1.rsplit("+", 1)[1]), int(k2.rsplit("+", 1)[1])
    revoked_tag = next(int(p.stem.rsplit("+", 1)[1]) for p in revoked.glob("*.key")
                       if p.stem not in (k2, zsk))
    assert revoked_tag != tag1

    # The zone files of each instant: the child, then the root at t0, t1, t2, t3.
    child_zone, child = tmp_path / "example.zone", tmp_path / "example.signed"
    child_zone.write_text(f"$ORIGIN example.\n$TTL 3600\n@ SOA ns hostmaster 1 7200 3600 1209600 300\n"
                          f"@ NS ns\nns A {HOST}\nwww A 192.0.2.1\n")
    plan = [(only_k1, t0), (both, t1), (revoked, t2), (only_k1, t3)]
    for serial, _ in enumerate(plan, 1):
        (tmp_path / f"root.{serial}.zone").write_text(_root_zone(serial, child_ds))
    _sign_all([(child_zone, child_keys, child, t0)] + [
        (tmp_path / f"root.{n}.zone", d, tmp_path / f"root.{n}.signed", at) for n, (d, at) in enumerate(plan, 1)])
    signed = {n: tmp_path / f"root.{n}.signed" for n in range(1, len(plan) + 1)}

    root = Root(tmp_path)
    state = str(tmp_path / "managed-anchors.state")
    configured = [dns.rrset.from_rdata_list(".", 172800, [dns.dnssec.make_ds(
        ".", _dnskey(keys, k1), "SHA256")])]  # as the built-in IANA anchors: a DS for K1
    fetch = anchors5011.dnskey_fetcher([root.server])
    try:
        # t0: only K1. The DS anchor primes to K1.
        root.publish(signed[1], 1, child)
        managed = anchors5011.ManagedAnchors(state, configured, t0)
        assert [e.code for e in managed.refresh(fetch, t0)] == ["KEY_VALID"]
        assert _tags(managed.trusted(t0)) == {tag1}
        assert trace(WWW, managed.trusted(t0), t0, server=root.server).status == "secure"

        # t1: K2 published beside K1. It waits out the add hold-down, untrusted meanwhile.
        root.publish(signed[2], 2, child)
        assert [e.code for e in managed.refresh(fetch, t1)] == ["KEY_ADDPEND"]
        assert managed.refresh(fetch, t1 + 10 * DAY) == [] and _tags(managed.trusted(t1)) == {tag1}
        assert [e.code for e in managed.refresh(fetch, t1 + 30 * DAY + 3600)] == ["KEY_VALID"]
        assert _tags(managed.trusted(t1)) == {tag1, tag2}

        # t2: K1 published with REVOKE set and signing the DNSKEY RRset itself.
        verify = subprocess.run([need("dnssec-verify"), "-o", ".", signed[3]], capture_output=True, text=True)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        root.publish(signed[3], 3, child)
        events = managed.refresh(fetch, t2)
        assert [(e.code, e.tag) for e in events] == [("KEY_REVOKED", revoked_tag)]
        assert _tags(managed.trusted(t2)) == {tag2}
        assert trace(WWW, managed.trusted(t2), t2, server=root.server).status == "secure"
        assert trace(WWW, configured, t2, server=root.server).status == "bogus"  # K1 alone fails now

        # A restart on the same state file trusts the same keys.
        restarted = anchors5011.ManagedAnchors(state, configured, t2 + 3600)
        assert restarted.points == managed.points and _tags(restarted.trusted(t2)) == {tag2}

        # t3: a root signed only by K1 (unrevoked) does not validate, and teaches nothing.
        root.publish(signed[4], 4, child)
        assert trace(WWW, restarted.trusted(t3), t3, server=root.server).status == "bogus"
        before = [k for _, k in restarted.keys()]
        assert [e.code for e in restarted.refresh(fetch, t3, force=True)] == ["NOT_VALIDATED"]
        assert [k for _, k in restarted.keys()] == before
        assert {k.state for _, k in restarted.keys()} == {KeyState.REVOKED, KeyState.VALID}
    finally:
        root.stop()
