"""RFC 2136 UPDATE into `sigchain serve` (issue 15), with BIND's `nsupdate` as the client: a
TSIG-signed update allowed by the zone's allow-update adds and deletes records, served signed
at once, and the zone transferred out passes `dnssec-verify -z` (the policy signs with a CSK); an unsigned update, a wrong key,
an address the ACL does not list, a failing prerequisite and an update to a zone served from a
signed file change nothing and get their rcodes. The server runs UDP workers, so updates are
forwarded to the main process. Everything binds in 127.63.1.0/24 (this file's range)."""

from __future__ import annotations

import base64
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.update
import dns.zone
import pytest

from tests.conftest import EXAMPLE_ZONE, need, sc
from tests.interop.test_serve_hardening import Server
from tests.zonetools import keygen

HOST = "127.63.1.1"
SECRET = base64.b64encode(b"sigchain-update-test-secret-0123").decode()
WRONG = base64.b64encode(b"not-the-secret-at-all-0123456789").decode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    need("nsupdate")
    base = tmp_path_factory.mktemp("update")
    unsigned = base / "example.test.zone"
    unsigned.write_text(EXAMPLE_ZONE.read_text())
    keys = base / "other-keys"
    keygen(keys, "other.test", "csk")
    other = base / "other.test.zone"
    other.write_text("$ORIGIN other.test.\n$TTL 300\n@ SOA ns hostmaster 1 3600 600 86400 300\n"
                     "@ NS ns\nns A 192.0.2.53\n")
    signed = base / "other.test.signed"
    sc("sign", other, "--keys", keys, "-o", signed, check=True)
    # The zones go in as further tables after [options] (Server writes file-only zones).
    tables = (f'[keys.upd]\nalgorithm = "hmac-sha256"\nsecret = "{SECRET}"\n'
              f'[zones."example.test."]\nunsigned = "{unsigned}"\nkeys = "{base / "keys"}"\n'
              f'policy = "default"\nallow-transfer = ["any"]\n'
              f'allow-update = ["{HOST} key:upd"]\n'
              f'[zones."other.test."]\nfile = "{signed}"\nallow-update = ["key:upd"]\n')
    s = Server(base, {}, "udp-workers = 2\n" + tables, host=HOST)
    yield s
    assert s.stop() == 0, s.text()[-3000:]
    assert "Traceback" not in s.text()


def nsupdate(server: Server, commands: str, *, key: str | None = SECRET,
             source: str = HOST, tcp: bool = False) -> subprocess.CompletedProcess[str]:
    args = [need("nsupdate"), *(["-v"] if tcp else [])]
    if key is not None:
        args += ["-y", f"hmac-sha256:upd:{key}"]
    script = f"server {server.host} {server.port}\nlocal {source}\n{commands}\nsend\n"
    return subprocess.run(args, input=script, capture_output=True, text=True, timeout=30)


def serial(server: Server, zone: str = "example.test.") -> int:
    return int(server.query(zone, "SOA").answer[0][0].serial)  # type: ignore[attr-defined]


def test_nsupdate_adds_and_deletes_and_the_zone_verifies(server: Server, tmp_path: Path) -> None:
    before = serial(server)
    r = nsupdate(server, "zone example.test\n"
                         "update add new.example.test. 300 A 192.0.2.99\n"
                         "update add new.example.test. 300 TXT \"added by nsupdate\"\n"
                         "update delete mail.example.test. A")
    assert r.returncode == 0, r.stdout + r.stderr
    added = server.query("new.example.test.", "A")
    assert added.rcode() == dns.rcode.NOERROR
    types = {rrset.rdtype for rrset in added.answer}
    assert types == {dns.rdatatype.A, dns.rdatatype.RRSIG}, added
    gone = server.query("mail.example.test.", "A")
    assert gone.rcode() in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN) and not any(
        rrset.rdtype == dns.rdatatype.A for rrset in gone.answer)
    assert serial(server) > before
    # Over TCP too (nsupdate -v), then the whole zone transferred out verifies.
    r = nsupdate(server, "zone example.test\nupdate delete new.example.test. TXT", tcp=True)
    assert r.returncode == 0, r.stdout + r.stderr
    axfr = dns.zone.from_xfr(dns.query.xfr(server.host, "example.test.", port=server.port,
                                           timeout=10, relativize=False), relativize=False)
    zone = tmp_path / "axfr.zone"
    axfr.to_file(str(zone), relativize=False)
    assert not any(r.rdtype == dns.rdatatype.TXT
                   for r in server.query("new.example.test.", "TXT").answer)
    verify = subprocess.run([need("dnssec-verify"), "-z", "-o", "example.test.", str(zone)],
                            capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0, verify.stdout + verify.stderr


@pytest.mark.parametrize(("why", "kwargs", "expect"), [
    ("unsigned", {"key": None}, "update failed: REFUSED"),
    ("wrong key", {"key": WRONG}, "update failed: NOTAUTH(BADSIG)"),  # as BIND
    ("address not listed", {"source": "127.63.1.2"}, "update failed: REFUSED"),
])
def test_refused_updates_change_nothing(server: Server, why: str, kwargs: dict[str, object],
                                        expect: str) -> None:
    before = serial(server)
    r = nsupdate(server, "zone example.test\nupdate add intruder.example.test. 300 A 192.0.2.66",
                 **kwargs)  # type: ignore[arg-type]
    assert r.returncode != 0 and expect in r.stdout + r.stderr, (why, r.stdout + r.stderr)
    assert server.query("intruder.example.test.", "A").rcode() == dns.rcode.NXDOMAIN
    assert serial(server) == before


@pytest.mark.parametrize(("prereq", "rcode"), [
    ("prereq nxdomain www.example.test.", "YXDOMAIN"),
    ("prereq yxdomain nothere.example.test.", "NXDOMAIN"),
    ("prereq yxrrset www.example.test. TXT", "NXRRSET"),
    ("prereq nxrrset www.example.test. A", "YXRRSET"),
])
def test_failing_prerequisites_get_their_rcodes(server: Server, prereq: str, rcode: str) -> None:
    before = serial(server)
    r = nsupdate(server, f"zone example.test\n{prereq}\n"
                         "update add intruder.example.test. 300 A 192.0.2.66")
    assert r.returncode != 0 and f"update failed: {rcode}" in r.stdout + r.stderr, r.stderr
    assert server.query("intruder.example.test.", "A").rcode() == dns.rcode.NXDOMAIN
    assert serial(server) == before


def test_a_zone_served_from_a_signed_file_refuses_updates(server: Server) -> None:
    before = serial(server, "other.test.")
    r = nsupdate(server, "zone other.test\nupdate add x.other.test. 300 A 192.0.2.1",
                 source="127.63.1.3")
    assert r.returncode != 0 and "update failed: REFUSED" in r.stdout + r.stderr, r.stderr
    assert serial(server, "other.test.") == before
    assert "served from a signed file" in server.text()


def _workers(server: Server) -> set[int]:
    """The server's forked answering workers (its child processes)."""
    pid = server.proc.pid
    kids: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        kids |= {int(p) for p in (task / "children").read_text().split()}
    return kids


def _served_everywhere(server: Server, name: str, before: int) -> None:
    """`name`'s A record is answered signed over UDP and TCP, and an IXFR from serial
    `before` carries it (with its RRSIG) incrementally."""
    for tcp in (True, False):
        r = server.query(name, "A", tcp=tcp)
        assert {rrset.rdtype for rrset in r.answer} == {dns.rdatatype.A, dns.rdatatype.RRSIG}, r
    messages = list(dns.query.xfr(server.host, "example.test.", rdtype=dns.rdatatype.IXFR,
                                  serial=before, port=server.port, timeout=10,
                                  relativize=False))
    rrsets = [rrset for m in messages for rrset in m.answer]
    soas = [rrset for rrset in rrsets if rrset.rdtype == dns.rdatatype.SOA]
    assert len(soas) > 1, "an IXFR answered with the whole zone, not the difference"
    owners = {(rrset.name.to_text(), rrset.rdtype) for rrset in rrsets}
    assert (name, dns.rdatatype.A) in owners and (name, dns.rdatatype.RRSIG) in owners, owners


def test_changes_reach_the_running_workers_without_forking_new_ones(server: Server) -> None:
    """An UPDATE and a SIGHUP after an edit of the unsigned file are handed to the running
    workers (same pids), and served at once over UDP, TCP and IXFR."""
    workers = _workers(server)
    assert len(workers) == 3  # two for UDP, one for TCP
    before = serial(server)
    r = nsupdate(server, "zone example.test\nupdate add kept.example.test. 300 A 192.0.2.71")
    assert r.returncode == 0, r.stdout + r.stderr
    _served_everywhere(server, "kept.example.test.", before)
    assert _workers(server) == workers
    # Over TCP (nsupdate -v), which the TCP worker forwards: it is not waited for and takes
    # the new version lazily, yet answers nothing older than the reply.
    before = serial(server)
    r = nsupdate(server, "zone example.test\nupdate add viatcp.example.test. 300 A 192.0.2.73",
                 tcp=True)
    assert r.returncode == 0, r.stdout + r.stderr
    _served_everywhere(server, "viatcp.example.test.", before)
    assert _workers(server) == workers

    before = serial(server)
    unsigned = server.log.parent / "example.test.zone"
    with open(unsigned, "a") as f:
        f.write("edited.example.test. 300 IN A 192.0.2.72\n")
    server.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 30
    while serial(server) == before:
        assert time.monotonic() < deadline, server.text()[-3000:]
        time.sleep(0.05)
    _served_everywhere(server, "edited.example.test.", before)
    assert _workers(server) == workers
    assert "did not apply an update" not in server.text()


@pytest.mark.parametrize("zone", ["other.test.", "not-served.test."])
def test_update_replies_say_the_servers_edns_size(server: Server, zone: str) -> None:
    """An UPDATE's reply (REFUSED here, NOTAUTH for a zone not served) carries the server's
    EDNS UDP size, 1232 by default, as every other answer does (dnspython's default is 8192)."""
    update = dns.update.UpdateMessage(zone)
    update.use_edns(0)
    update.add("x", 300, "A", "192.0.2.1")
    reply = dns.query.udp(update, HOST, port=server.port, timeout=5, source="127.63.1.3")
    assert reply.rcode() in (dns.rcode.REFUSED, dns.rcode.NOTAUTH) and reply.payload == 1232
