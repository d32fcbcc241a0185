"""`sigchain serve` on loopback, queried by BIND's dig and validated by BIND's delv, and by
dnspython over real UDP/TCP sockets: flags, rcodes, sections, truncation, reload."""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from tests.conftest import EXAMPLE_ZONE, free_port, need, sc, sigchain_cmd, terminate
from tests.zonetools import dump, keygen, load

HOST = "127.0.0.1"
ORIGIN = dns.name.from_text("example.test.")


def example_zone(folder: Path) -> Path:
    """The bundled example zone plus one RRset too big for a 512-byte UDP answer."""
    big = "".join(f'big 3600 IN TXT "{i} {"x" * 100}"\n' for i in range(5))
    path = folder / "example.test.zone"
    path.write_text(EXAMPLE_ZONE.read_text() + big)
    return path


class Server:
    """A `sigchain serve` subprocess; its log goes to a file the test can read."""

    def __init__(self, tmp: Path, zones: dict[str, Path], *extra: str):
        self.port = free_port()
        self.log = tmp / f"serve-{self.port}.log"
        args = [*sigchain_cmd(), "serve", "--listen", f"{HOST}#{self.port}", *extra]
        for name, path in zones.items():
            args += ["--zone", f"{name}={path}"]
        self._logf = open(self.log, "w")
        self.proc = subprocess.Popen(args, stdout=self._logf, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while "ready:" not in self.text():
            if self.proc.poll() is not None:
                raise AssertionError(f"sigchain serve exited {self.proc.returncode}:\n{self.text()}")
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"sigchain serve did not get ready:\n{self.text()}")
            time.sleep(0.05)

    def text(self) -> str:
        return self.log.read_text()

    def query(self, qname: str, qtype: str, tcp: bool = False, **kw: object) -> dns.message.Message:
        q = dns.message.make_query(qname, qtype, **kw)  # type: ignore[arg-type]
        if tcp:
            return dns.query.tcp(q, HOST, port=self.port, timeout=5)
        return dns.query.udp(q, HOST, port=self.port, timeout=5, ignore_trailing=False)

    def serial(self) -> int:
        r = self.query("example.test.", "SOA")
        return int(r.answer[0][0].serial)  # type: ignore[attr-defined]

    def wait_log(self, needle: str, count: int = 1, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.text().count(needle) < count:
            assert time.monotonic() < deadline, f"{needle!r} not logged:\n{self.text()}"
            assert self.proc.poll() is None, f"server died:\n{self.text()}"
            time.sleep(0.05)

    def stop(self) -> int:
        terminate(self.proc)
        self._logf.close()
        return self.proc.returncode


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The bundled example zone signed with NSEC and with NSEC3, the keys, and a delv anchor."""
    base = tmp_path_factory.mktemp("serve")
    keys = base / "keys"
    ksk = keygen(keys, "example.test", "ksk")
    keygen(keys, "example.test", "zsk")
    out = {"keys": keys, "zone": example_zone(base)}
    for denial in ("nsec", "nsec3"):
        path = base / f"example.test.{denial}"
        extra = ["--nsec3"] if denial == "nsec3" else []
        sc("sign", out["zone"], "--keys", keys, "-o", path, "--cds", *extra, check=True)
        out[denial] = path
    ds = sc("ds", keys / f"{ksk}.key", check=True).stdout.split()
    # "example.test. IN DS TAG ALG DT HEX"
    tag, alg, dt, digest = ds[3], ds[4], ds[5], "".join(ds[6:])
    anchor = base / "anchor.conf"
    anchor.write_text(f'trust-anchors {{ example.test. static-ds {tag} {alg} {dt} "{digest}"; }};\n')
    out["anchor"] = anchor
    return out


@pytest.fixture(scope="module", params=["nsec", "nsec3"])
def server(request: pytest.FixtureRequest, signed: dict[str, Path],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("log"), {"example.test": signed[request.param]},
               "--tcp-idle-timeout", "1")
    s.denial = request.param  # type: ignore[attr-defined]
    yield s
    assert s.stop() == 0, s.text()


def dig(server: Server, *args: str) -> str:
    proc = subprocess.run(
        [need("dig"), f"@{HOST}", "-p", str(server.port), "+norec", "+time=3", "+tries=1", *args],
        capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def header(out: str) -> tuple[str, set[str]]:
    status = out.split("status: ", 1)[1].split(",", 1)[0]
    flags = set(out.split(";; flags: ", 1)[1].split(";", 1)[0].split())
    return status, flags


def section(out: str, name: str) -> list[list[str]]:
    """The records of one dig section as token lists (owner, ttl, class, type, rdata...)."""
    marker = f";; {name} SECTION:\n"
    if marker not in out:
        return []
    body = out.split(marker, 1)[1].split("\n\n", 1)[0]
    return [line.split() for line in body.splitlines() if line and not line.startswith(";")]


def types_in(records: list[list[str]]) -> list[tuple[str, str]]:
    return [(r[0].lower(), r[3] if r[3] != "RRSIG" else "RRSIG " + r[4]) for r in records]


# ---- dig ----------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["+notcp", "+tcp"])
def test_dig_positive_answer(server: Server, transport: str) -> None:
    out = dig(server, "+dnssec", transport, "WwW.ExAmPlE.tEsT", "A")
    status, flags = header(out)
    assert status == "NOERROR" and flags == {"qr", "aa"}
    assert ";WwW.ExAmPlE.tEsT.\t\tIN\tA" in out  # the question's case, echoed
    assert types_in(section(out, "ANSWER")) == [("www.example.test.", "A"), ("www.example.test.", "RRSIG A")]
    assert section(out, "AUTHORITY") == []
    assert "; EDNS: version: 0, flags: do; udp: 1232" in out
    plain = dig(server, transport, "www.example.test", "A")
    assert types_in(section(plain, "ANSWER")) == [("www.example.test.", "A")]
    assert "flags: do" not in plain


def test_dig_nxdomain_and_nodata(server: Server) -> None:
    denial = "NSEC3" if server.denial == "nsec3" else "NSEC"  # type: ignore[attr-defined]
    out = dig(server, "+dnssec", "nope.example.test", "A")
    status, flags = header(out)
    assert status == "NXDOMAIN" and "aa" in flags
    auth = types_in(section(out, "AUTHORITY"))
    assert auth[:2] == [("example.test.", "SOA"), ("example.test.", "RRSIG SOA")]
    assert {t for _, t in auth[2:]} == {denial, f"RRSIG {denial}"}
    out = dig(server, "+dnssec", "www.example.test", "MX")
    status, flags = header(out)
    assert status == "NOERROR" and "aa" in flags and section(out, "ANSWER") == []
    assert denial in {t for _, t in types_in(section(out, "AUTHORITY"))}


def test_dig_referral_with_ds_and_glue(server: Server) -> None:
    out = dig(server, "+dnssec", "host.sub.example.test", "A")
    status, flags = header(out)
    assert status == "NOERROR" and flags == {"qr"}  # no AA on a referral
    assert types_in(section(out, "AUTHORITY")) == [
        ("sub.example.test.", "NS"), ("sub.example.test.", "DS"), ("sub.example.test.", "RRSIG DS")]
    assert types_in(section(out, "ADDITIONAL")) == [("ns.sub.example.test.", "A")]
    out = dig(server, "+dnssec", "sub.example.test", "DS")  # parent side, authoritative
    status, flags = header(out)
    assert "aa" in flags and types_in(section(out, "ANSWER"))[0] == ("sub.example.test.", "DS")


def test_dig_sees_tc_and_refused(server: Server) -> None:
    full = dig(server, "+dnssec", "+tcp", "big.example.test", "TXT")
    size = int(full.split("MSG SIZE  rcvd: ", 1)[1].split()[0])
    assert 512 < size <= 1232 and "tc" not in header(full)[1]
    fits = dig(server, "+dnssec", "+notcp", "+bufsize=1232", "big.example.test", "TXT")
    assert "tc" not in header(fits)[1] and "(UDP)" in fits
    out = dig(server, "+dnssec", "+notcp", "+ignore", "+bufsize=512", "big.example.test", "TXT")
    status, flags = header(out)
    assert "tc" in flags and status == "NOERROR" and section(out, "ANSWER") == []
    retried = dig(server, "+dnssec", "+notcp", "+bufsize=512", "big.example.test", "TXT")
    assert "Truncated, retrying in TCP mode." in retried and "(TCP)" in retried
    any_udp = dig(server, "+notcp", "+ignore", "example.test", "ANY")  # ANY: TCP only, as BIND
    assert "tc" in header(any_udp)[1]
    out = dig(server, "www.example.org", "A")
    assert header(out)[0] == "REFUSED"


# ---- dnspython over real sockets ------------------------------------------------------------


def test_udp_and_tcp_agree(server: Server) -> None:
    for qname, qtype in [("www.example.test.", "AAAA"), ("foo.wild.example.test.", "TXT"),
                         ("nope.example.test.", "A"), ("host.insecure.example.test.", "A")]:
        u = server.query(qname, qtype, want_dnssec=True)
        t = server.query(qname, qtype, tcp=True, want_dnssec=True)
        assert not u.flags & dns.flags.TC
        assert (u.rcode(), u.flags, u.answer, u.authority, u.additional) == (
            t.rcode(), t.flags, t.answer, t.authority, t.additional)


def test_tc_over_udp_then_full_over_tcp(server: Server) -> None:
    t = server.query("big.example.test.", "TXT", tcp=True, want_dnssec=True, payload=512)
    assert len(t.to_wire()) > 512 and not t.flags & dns.flags.TC and t.answer
    u = server.query("big.example.test.", "TXT", want_dnssec=True, payload=512)
    assert u.flags & dns.flags.TC and u.rcode() == dns.rcode.NOERROR and not u.answer
    n = server.query("big.example.test.", "TXT", use_edns=False)  # no EDNS: 512 bytes
    assert n.flags & dns.flags.TC and n.edns == -1


def _tcp_exchange(sock: socket.socket, wire: bytes) -> bytes:
    sock.sendall(struct.pack("!H", len(wire)) + wire)
    (n,) = struct.unpack("!H", _recv(sock, 2))
    return _recv(sock, n)


def _recv(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def test_tcp_several_queries_per_connection_and_idle_timeout(server: Server) -> None:
    with socket.create_connection((HOST, server.port), timeout=5) as sock:
        for i, name in enumerate(["www.example.test.", "mail.example.test.", "ns1.example.test."]):
            q = dns.message.make_query(name, "A")
            q.id = 1000 + i
            r = dns.message.from_wire(_tcp_exchange(sock, q.to_wire()))
            assert r.id == 1000 + i and r.answer[0].name == dns.name.from_text(name)
        # Two queries in one write (pipelined): two answers, in order.
        q1, q2 = dns.message.make_query("www.example.test.", "A"), dns.message.make_query("web.example.test.", "CNAME")
        sock.sendall(b"".join(struct.pack("!H", len(w)) + w for w in (q1.to_wire(), q2.to_wire())))
        for q in (q1, q2):
            (n,) = struct.unpack("!H", _recv(sock, 2))
            assert dns.message.from_wire(_recv(sock, n)).id == q.id
        # The server started with --tcp-idle-timeout 1: an idle connection gets closed.
        sock.settimeout(10)
        started = time.monotonic()
        assert sock.recv(1) == b""
        assert time.monotonic() - started < 8


def test_malformed_queries_get_formerr_and_serving_goes_on(server: Server) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.sendto(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07exa", (HOST, server.port))
        data, _ = s.recvfrom(4096)
        assert data[:2] == b"\x12\x34" and data[3] & 0x0F == dns.rcode.FORMERR
        s.sendto(b"\x00\x01", (HOST, server.port))  # no header: no answer, no crash
        notify = dns.message.make_query("example.test.", "SOA")
        notify.set_opcode(dns.opcode.NOTIFY)
        s.sendto(notify.to_wire(), (HOST, server.port))
        data, _ = s.recvfrom(4096)
        reply = dns.message.from_wire(data)  # a NOTIFY for a zone we are primary for: acknowledged, as BIND
        assert reply.opcode() == dns.opcode.NOTIFY and reply.rcode() == dns.rcode.NOERROR
        assert reply.flags & dns.flags.AA
    assert server.query("www.example.test.", "A").rcode() == dns.rcode.NOERROR


# ---- delv validates what we serve ---------------------------------------------------------


@pytest.mark.parametrize(("qname", "qtype", "verdict"), [
    ("www.example.test", "A", "; fully validated"),
    ("web.example.test", "A", "; fully validated"),
    ("anything.wild.example.test", "TXT", "; fully validated"),
    ("a.b.wild.example.test", "A", "; fully validated"),
    ("sub.example.test", "DS", "; fully validated"),
    ("example.test", "CDS", "; fully validated"),
    ("nope.example.test", "A", "; negative response, fully validated"),
    ("www.example.test", "MX", "; negative response, fully validated"),
    ("b.c.example.test", "A", "; negative response, fully validated"),
    ("insecure.example.test", "DS", "; negative response, fully validated"),
    ("anything.wild.example.test", "MX", "; negative response, fully validated"),
])
def test_delv_validates(server: Server, signed: dict[str, Path], qname: str, qtype: str, verdict: str) -> None:
    proc = subprocess.run(
        [need("delv"), f"@{HOST}", "-p", str(server.port), "-a", str(signed["anchor"]),
         "+root=example.test", qname, qtype],
        capture_output=True, text=True, timeout=60,
    )
    out = proc.stdout + proc.stderr
    assert verdict in out.splitlines(), out


# ---- start-up failures and reload -----------------------------------------------------------


def test_bad_zone_file_at_start_is_exit_2_with_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.zone"
    bad.write_text("$ORIGIN example.test.\n@ 3600 IN SOA ns h 1 2 3 4 5\n@ 3600 IN NS ns\nwww 3600 IN A 999.1.1.1\n")
    proc = sc("serve", "--zone", f"example.test={bad}", "--listen", f"{HOST}#{free_port()}")
    assert proc.returncode == 2
    assert f"{bad}:4:" in proc.stderr


def test_bogus_zone_at_start_is_refused(tmp_path: Path, signed: dict[str, Path]) -> None:
    nodes = load(signed["nsec"]).nodes
    www = dns.name.from_text("www.example.test.")
    for rds in nodes[www]:
        if rds.rdtype == dns.rdatatype.RRSIG and rds.covers == dns.rdatatype.A:
            rd = rds[0]
            sig = bytearray(rd.signature)  # type: ignore[attr-defined]
            sig[5] ^= 0xFF
            rds.discard(rd)
            rds.add(rd.replace(signature=bytes(sig)))
    bogus = tmp_path / "bogus.zone"
    dump(bogus, ORIGIN, nodes)
    proc = sc("serve", "--zone", f"example.test={bogus}", "--listen", f"{HOST}#{free_port()}")
    assert proc.returncode == 4 and "RRSIG_BAD_SIGNATURE" in proc.stderr


def test_expired_zone_is_refused_unless_forced_and_then_said_loudly(tmp_path: Path, signed: dict[str, Path]) -> None:
    """Expired signatures: refused at start (exit 4); `--force` serves it (an operator restoring
    service from the last known zone) with a loud warning; a bad signature stays refused."""
    expired = tmp_path / "expired.signed"
    sc("sign", signed["zone"], "--keys", signed["keys"], "-o", expired, "--inception", "now-30d",
       "--validity", "7d", "--jitter", "0", "-P", "--force", check=True)
    proc = sc("serve", "--zone", f"example.test={expired}", "--listen", f"{HOST}#{free_port()}")
    assert proc.returncode == 4 and "RRSIG_EXPIRED" in proc.stderr
    server = Server(tmp_path, {"example.test": expired}, "--force")
    try:
        assert "SERVED WITH --force" in server.text() and "bogus" in server.text()
        assert server.query("www.example.test.", "A").rcode() == dns.rcode.NOERROR
    finally:
        server.stop()
    bogus = tmp_path / "bogus.zone"
    bogus.write_text(expired.read_text().replace(" IN A 192.0.2.10", " IN A 192.0.2.11"))
    proc = sc("serve", "--force", "--zone", f"example.test={bogus}", "--listen", f"{HOST}#{free_port()}")
    assert proc.returncode == 4 and "RRSIG_BAD_SIGNATURE" in proc.stderr


def test_port_in_use_is_exit_3(signed: dict[str, Path]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind((HOST, 0))
        port = busy.getsockname()[1]
        proc = sc("serve", "--zone", f"example.test={signed['nsec']}", "--listen", f"{HOST}#{port}")
    assert proc.returncode == 3
    assert f"cannot listen on {HOST}#{port}: address already in use" in proc.stderr


def test_sighup_reload_swaps_good_zones_and_keeps_old_on_failure(tmp_path: Path, signed: dict[str, Path]) -> None:
    live = tmp_path / "example.test.signed"
    live.write_text(signed["nsec3"].read_text())
    server = Server(tmp_path, {"example.test": live})
    try:
        old = server.serial()
        # A good new version (serial incremented, NSEC this time): served after SIGHUP.
        staged = tmp_path / "staged.signed"
        sc("sign", signed["zone"], "--keys", signed["keys"], "-o", staged, "--serial", "increment", check=True)
        os.replace(staged, live)
        server.proc.send_signal(signal.SIGHUP)
        server.wait_log("reloaded zone example.test.")
        new = server.serial()
        assert new == old + 1
        assert server.query("nope.example.test.", "A", want_dnssec=True).authority[2].rdtype == dns.rdatatype.NSEC

        # A version with a syntax error: not loaded, error logged, old serial still served.
        live.write_text(live.read_text() + "broken 3600 IN A not-an-address\n")
        server.proc.send_signal(signal.SIGHUP)
        server.wait_log("reload of zone example.test. failed", 1)
        assert "example.test.signed:" in server.text().split("reload of zone example.test. failed", 1)[1]
        assert server.serial() == new

        # A version that parses but fails verification (expired signatures): not loaded either.
        expired = tmp_path / "expired.signed"
        sc("sign", signed["zone"], "--keys", signed["keys"], "-o", expired, "--serial", "unixtime",
           "--inception", "now-30d", "--validity", "7d", "--jitter", "0", "-P", "--force", check=True)
        os.replace(expired, live)
        server.proc.send_signal(signal.SIGHUP)
        server.wait_log("reload of zone example.test. failed", 2)
        assert "RRSIG_EXPIRED" in server.text()
        assert server.serial() == new
        assert server.proc.poll() is None
    finally:
        assert server.stop() == 0, server.text()


def _children(pid: int) -> set[int]:
    try:
        return {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except OSError:
        return set()


def _wait_children(pid: int, count: int, timeout: float = 10) -> set[int]:
    deadline = time.monotonic() + timeout
    while len(kids := _children(pid)) != count:
        assert time.monotonic() < deadline, f"{len(kids)} children, want {count}"
        time.sleep(0.05)
    return kids


def test_udp_workers_answer_reload_replace_and_stop(tmp_path: Path, signed: dict[str, Path]) -> None:
    """--udp-workers 3: three forked processes answer UDP, a fourth TCP; a SIGHUP
    that brings a new serial replaces them, and no query after the reload is answered from
    the old zone; a worker killed is replaced; SIGTERM leaves no process behind."""
    live = tmp_path / "example.test.signed"
    live.write_text(signed["nsec3"].read_text())
    server = Server(tmp_path, {"example.test": live}, "--udp-workers", "3")
    pid = server.proc.pid
    try:
        first = _wait_children(pid, 4)
        old = server.serial()
        assert all(server.serial() == old for _ in range(200))
        # The workers answer on their own: with the main process stopped, and then with the
        # main process and one worker stopped, every query is still answered.
        os.kill(pid, signal.SIGSTOP)
        try:
            assert all(server.serial() == old for _ in range(50))
            one = next(iter(first))
            os.kill(one, signal.SIGSTOP)
            try:
                assert all(server.serial() == old for _ in range(50))
            finally:
                os.kill(one, signal.SIGCONT)
        finally:
            os.kill(pid, signal.SIGCONT)

        staged = tmp_path / "staged.signed"
        sc("sign", signed["zone"], "--keys", signed["keys"], "--nsec3", "-o", staged,
           "--serial", "increment", check=True)
        os.replace(staged, live)
        server.proc.send_signal(signal.SIGHUP)
        server.wait_log("reloaded zone example.test.")
        assert [server.serial() for _ in range(300)] == [old + 1] * 300
        second = _wait_children(pid, 4)
        assert not second & first

        victim = next(iter(second))
        os.kill(victim, signal.SIGKILL)
        server.wait_log(f"worker {victim} ended unexpectedly")  # a UDP or the TCP one
        third = _wait_children(pid, 4)
        assert victim not in third
        assert server.serial() == old + 1
    finally:
        kids = _children(pid)
        assert server.stop() == 0, server.text()
    assert all(not Path(f"/proc/{k}").exists() or "Z" in Path(f"/proc/{k}/stat").read_text().split()[2]
               for k in kids)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
        again.bind((HOST, server.port))  # nothing holds the port any more
