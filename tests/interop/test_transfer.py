"""Zone transfers out of `sigchain serve --config` to a real secondary: NSD, as root in the
foreground with its own config, pidfile and zone directory, on 127.0.0.2 (a high port).

The judges are independent of our code: NSD (TSIG verification, applying AXFR and IXFR,
serving the result), `sigchain verify` on what NSD serves (dumped by AXFR from NSD), BIND's
dig (TSIG-signed AXFR), and dnspython's transfer client applying an IXFR onto an old copy.

One pair of servers serves the whole module; the zone changes in the later tests, so they
run in file order (pytest's default). Teardown stops both by PID.
"""

from __future__ import annotations

import base64
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.dnssec
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.xfr
import dns.zone
import pytest

from tests.conftest import EXAMPLE_ZONE, free_port, need, sc, sigchain_cmd
from tests.zonetools import keygen

SERVE_HOST = "127.0.0.1"  # sigchain serve, the primary
NSD_HOST = "127.0.0.2"  # NSD, the secondary
ALLOWED = "127.0.0.3"  # allowed to transfer by address, without a key
OTHER = "127.0.0.4"  # allowed nothing
SECOND = "127.0.0.5"  # a second listen address, serving only other.test.
ORIGIN = dns.name.from_text("example.test.")
KEY_NAME = dns.name.from_text("xfr-key.")


def wait_for(what: str, predicate: Callable[[], bool], timeout: float = 30.0, *,
             text: Callable[[], str] = lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}\n{text()}"
        time.sleep(0.1)


def _stop(proc: subprocess.Popen[bytes], extra_pids: tuple[int, ...] = ()) -> int:
    for pid in (*extra_pids, proc.pid):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return proc.returncode


class Serve:
    """`sigchain serve --config`; its log goes to a file the tests read."""

    def __init__(self, folder: Path, config: Path, port: int):
        self.port = port
        self.log = folder / "serve.log"
        self._logf = open(self.log, "w")
        self.proc = subprocess.Popen([*sigchain_cmd(), "serve", "--config", str(config)],
                                     stdout=self._logf, stderr=subprocess.STDOUT)
        wait_for("sigchain serve to start", lambda: "ready:" in self.text() or self.proc.poll() is not None,
                 text=self.text)
        assert self.proc.poll() is None, self.text()

    def text(self) -> str:
        return self.log.read_text()

    def stop(self) -> int:
        code = _stop(self.proc) if self.proc.poll() is None else self.proc.returncode
        self._logf.close()
        return code


class Nsd:
    """NSD as a secondary of sigchain serve: transfers and NOTIFY TSIG-signed with `secret`
    as key xfr-key (or without a key when `secret` is None), AXFR out to loopback without a
    key (so the tests can dump what it serves)."""

    def __init__(self, folder: Path, port: int, primary_port: int, secret: str | None, *,
                 host: str = NSD_HOST, primary: str = SERVE_HOST, zone: str = "example.test"):
        self.port = port
        self.host = host
        self.dir = folder
        self.conf = folder / "nsd.conf"
        self.logfile = folder / "nsd.log"
        self.pidfile = folder / "nsd.pid"
        key = "NOKEY" if secret is None else "xfr-key"
        keydef = "" if secret is None else \
            f'key:\n    name: "xfr-key"\n    algorithm: hmac-sha256\n    secret: "{secret}"\n'
        self.conf.write_text(f"""
server:
    ip-address: {host}@{port}
    do-ip6: no
    username: ""
    chroot: ""
    zonesdir: "{folder}"
    database: ""
    zonelistfile: "{folder}/zone.list"
    xfrdfile: "{folder}/xfrd.state"
    xfrdir: "{folder}/xfr"
    pidfile: "{self.pidfile}"
    logfile: "{self.logfile}"
    verbosity: 2
    server-count: 1
    xfrd-reload-timeout: 0
remote-control:
    control-enable: no
{keydef}zone:
    name: "{zone}"
    zonefile: "{folder}/{zone}.zone"
    request-xfr: {primary}@{primary_port} {key}
    allow-notify: 127.0.0.0/8 {key}
    provide-xfr: 127.0.0.0/8 NOKEY
""")
        check = subprocess.run([need("nsd-checkconf"), str(self.conf)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        self.out = open(folder / "nsd.stdout", "w")
        self.proc = subprocess.Popen([need("nsd"), "-d", "-c", str(self.conf)],
                                     stdout=self.out, stderr=subprocess.STDOUT)
        wait_for("nsd to start", lambda: "nsd started" in self.text() or self.proc.poll() is not None,
                 text=self.text)
        assert self.proc.poll() is None, self.text()

    def text(self) -> str:
        log = self.logfile.read_text() if self.logfile.exists() else ""
        return log + (self.dir / "nsd.stdout").read_text()

    def serial(self) -> int | None:
        try:
            r = dns.query.udp(dns.message.make_query(ORIGIN, "SOA"), self.host, port=self.port,
                              timeout=1)
        except (dns.exception.Timeout, OSError):
            return None
        if r.rcode() != dns.rcode.NOERROR or not r.answer:
            return None
        return int(r.answer[0][0].serial)  # type: ignore[attr-defined]

    def stop(self) -> None:
        """SIGTERM to NSD's main process (its pidfile) and to the process we started."""
        pids: tuple[int, ...] = ()
        if self.pidfile.exists() and self.pidfile.read_text().strip().isdigit():
            pids = (int(self.pidfile.read_text().strip()),)
        if self.proc.poll() is None:
            _stop(self.proc, pids)
        self.out.close()
        # Nothing of ours may outlive the module: NSD's children carry our config path.
        for pid in _pids_with(str(self.conf)):
            os.kill(pid, signal.SIGKILL)


def _pids_with(needle: str) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if needle in cmdline:
                out.append(int(entry))
    return out


def sign(unsigned: Path, keys: Path, live: Path, inception: int, out: Path) -> None:
    """Sign the unsigned zone with the published serial + 1 (`--serial increment` counts from
    the input's serial, so that is set to the live one first); deterministic, with fixed
    signature times: only what changed gets new signatures, as with an incremental signer."""
    if live.exists():
        serial = dns.zone.from_file(str(live), ORIGIN, relativize=False).get_soa().serial
        text = re.sub(r"(IN\s+SOA\s+\S+\s+\S+\s+)\d+", rf"\g<1>{serial}", unsigned.read_text(), count=1)
        unsigned.write_text(text)
    sc("sign", unsigned, "--keys", keys, "-o", out, "--nsec3", "--serial", "increment",
       "--deterministic", "--inception", str(inception), "--validity", "14d", "--threads", "1",
       check=True)


@dataclass
class Setup:
    base: Path
    keys: Path
    unsigned: Path
    live: Path
    secret: str
    inception: int
    serve: Serve
    nsd: Nsd
    second_port: int

    @property
    def keyring(self) -> dict[dns.name.Name, dns.tsig.Key]:
        return {KEY_NAME: dns.tsig.Key(KEY_NAME, self.secret, "hmac-sha256")}

    def sign(self, out: Path) -> None:
        sign(self.unsigned, self.keys, self.live, self.inception, out)

    def serial(self) -> int:
        r = dns.query.udp(dns.message.make_query(ORIGIN, "SOA"), SERVE_HOST, port=self.serve.port, timeout=5)
        return int(r.answer[0][0].serial)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    need("nsd")
    base = tmp_path_factory.mktemp("transfer")
    keys = base / "keys"
    keygen(keys, "example.test", "ksk")
    keygen(keys, "example.test", "zsk")
    unsigned = base / "example.test.zone"
    unsigned.write_text(EXAMPLE_ZONE.read_text())
    secret = base64.b64encode(os.urandom(32)).decode()
    (base / "tsig.key").write_text(
        f'# as tsig-keygen writes it\nkey "xfr-key" {{\n\talgorithm hmac-sha256;\n\tsecret "{secret}";\n}};\n')
    serve_port, nsd_port, second_port = free_port(SERVE_HOST), free_port(NSD_HOST), free_port(SECOND)
    config = base / "serve.toml"
    config.write_text(f"""
tsig-keyfile = "tsig.key"

[zones."example.test."]
file = "example.test.signed"
allow-transfer = ["{ALLOWED}", "key:xfr-key"]
also-notify = [{{ address = "{NSD_HOST}#{nsd_port}", key = "xfr-key" }}]

[zones."other.test."]
file = "other.test.zone"

[[listen]]
address = "{SERVE_HOST}#{serve_port}"
zones = ["example.test."]

[[listen]]
address = "{SECOND}#{second_port}"
zones = ["other.test"]
""")
    (base / "other.test.zone").write_text(
        "$ORIGIN other.test.\n@ 3600 IN SOA ns hostmaster 1 7200 3600 1209600 300\n"
        "@ 3600 IN NS ns\nns 3600 IN A 192.0.2.53\n")
    live = base / "example.test.signed"
    inception = int(time.time()) - 3600
    sign(unsigned, keys, live, inception, live)
    nsd_dir = base / "nsd"
    nsd_dir.mkdir()
    serve = Serve(base, config, serve_port)
    try:
        nsd = Nsd(nsd_dir, nsd_port, serve_port, secret)
    except BaseException:
        serve.stop()
        raise
    try:
        yield Setup(base, keys, unsigned, live, secret, inception, serve, nsd, second_port)
    finally:
        nsd.stop()
        assert serve.stop() == 0, serve.text()
        assert not _pids_with(str(nsd_dir / "nsd.conf")), "NSD left running"


def _axfr(host: str, port: int, keyring: dict | None = None, source: str | None = None) -> dns.zone.Zone:  # type: ignore[type-arg]
    """A whole zone by AXFR with dnspython's transfer client (TSIG verified when keyed)."""
    zone = dns.zone.Zone(ORIGIN, relativize=False)
    q, _ = dns.xfr.make_query(zone, serial=None, keyring=keyring, keyname=KEY_NAME if keyring else None)
    dns.query.inbound_xfr(host, zone, q, port=port, timeout=10, source=source)
    return zone


def _records(zone: dns.zone.Zone) -> set[tuple[dns.name.Name, int, str]]:
    return {(n, rds.ttl, rd.to_text()) for n, node in zone.nodes.items() for rds in node.rdatasets for rd in rds}


def _dump_and_verify(zone: dns.zone.Zone, path: Path) -> None:
    zone.to_file(str(path), relativize=False, want_origin=True)
    proc = sc("verify", path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _tcp(wire: bytes, port: int, source: str) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.bind((source, 0))
        s.connect((SERVE_HOST, port))
        s.sendall(len(wire).to_bytes(2, "big") + wire)
        n = int.from_bytes(_recv(s, 2), "big")
        return _recv(s, n)


def _recv(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        assert chunk, "connection closed"
        buf += chunk
    return buf


# ---- (a) NSD transfers the signed zone and serves it ----------------------------------------


def test_nsd_transfers_the_signed_zone_and_serves_it(setup: Setup) -> None:
    serial = setup.serial()
    wait_for("NSD to serve the zone", lambda: setup.nsd.serial() == serial, text=setup.nsd.text)
    assert "TSIG verified with key xfr-key" in setup.nsd.text()
    assert "(TSIG xfr-key): AXFR of zone example.test. ended" in setup.serve.text()
    q = dns.message.make_query("www.example.test.", "A", want_dnssec=True)
    r = dns.query.udp(q, NSD_HOST, port=setup.nsd.port, timeout=5)
    assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA
    keys = dns.query.tcp(dns.message.make_query(ORIGIN, "DNSKEY", want_dnssec=True), NSD_HOST,
                         port=setup.nsd.port, timeout=5)
    dnskey = keys.find_rrset(keys.answer, ORIGIN, dns.rdataclass.IN, dns.rdatatype.DNSKEY)
    a = r.find_rrset(r.answer, dns.name.from_text("www.example.test."), dns.rdataclass.IN, dns.rdatatype.A)
    sig = r.find_rrset(r.answer, a.name, dns.rdataclass.IN, dns.rdatatype.RRSIG, dns.rdatatype.A)
    dns.dnssec.validate(a, sig, {ORIGIN: dnskey})  # raises if NSD serves a bad signature
    nx = dns.query.udp(dns.message.make_query("nope.example.test.", "A", want_dnssec=True),
                       NSD_HOST, port=setup.nsd.port, timeout=5)
    assert nx.rcode() == dns.rcode.NXDOMAIN
    assert dns.rdatatype.NSEC3 in {x.rdtype for x in nx.authority}


# ---- (b) what NSD serves passes sigchain verify ---------------------------------------------


def test_what_nsd_serves_passes_sigchain_verify(setup: Setup, tmp_path: Path) -> None:
    wait_for("NSD to catch up", lambda: setup.nsd.serial() == setup.serial(), text=setup.nsd.text)
    from_nsd = _axfr(NSD_HOST, setup.nsd.port)
    _dump_and_verify(from_nsd, tmp_path / "from-nsd.zone")
    ours = _axfr(SERVE_HOST, setup.serve.port, setup.keyring)
    assert _records(from_nsd) == _records(ours)
    types = {rds.rdtype for node in ours.nodes.values() for rds in node.rdatasets}
    assert {dns.rdatatype.RRSIG, dns.rdatatype.NSEC3, dns.rdatatype.DNSKEY,
            dns.rdatatype.NSEC3PARAM, dns.rdatatype.DS} <= types


# ---- (c) a change: NOTIFY, IXFR, the new serial served ---------------------------------------


def test_zone_change_is_notified_and_nsd_takes_an_ixfr(setup: Setup, tmp_path: Path) -> None:
    old = setup.serial()
    wait_for("NSD to catch up", lambda: setup.nsd.serial() == old, text=setup.nsd.text)
    client_copy = _axfr(SERVE_HOST, setup.serve.port, setup.keyring)  # a secondary left behind
    for step, (name, address) in enumerate([("new", "192.0.2.77"), ("newer", "192.0.2.78")], 1):
        setup.unsigned.write_text(setup.unsigned.read_text() + f"{name} 3600 IN A {address}\n")
        staged = setup.base / "staged.signed"
        setup.sign(staged)
        os.replace(staged, setup.live)
        setup.serve.proc.send_signal(signal.SIGHUP)
        new = old + step
        wait_for(f"NSD to serve serial {new}", lambda n=new: setup.nsd.serial() == n,
                 text=lambda: setup.serve.text() + setup.nsd.text())
        for needle in (f"NOTIFY for zone example.test. serial {new} to {NSD_HOST}#{setup.nsd.port} "
                       "(TSIG xfr-key.): answered NOERROR",
                       f"(TSIG xfr-key): IXFR of zone example.test. started (serial {new - 1} -> {new};"):
            wait_for(needle, lambda n=needle: n in setup.serve.text(), 10, text=setup.serve.text)
        assert f"notify for example.test. from 127.0.0.1 serial {new}" in setup.nsd.text()
        r = dns.query.udp(dns.message.make_query(f"{name}.example.test.", "A"), NSD_HOST,
                          port=setup.nsd.port, timeout=5)
        assert r.answer and r.answer[0][0].to_text() == address
    # The IXFR carried the changes only, not the whole zone.
    log = setup.serve.text()
    axfr_records = int(log.split("AXFR of zone example.test. ended: ", 1)[1].split(", ", 1)[1].split()[0])
    ixfr_records = int(log.rsplit("IXFR of zone example.test. ended: ", 1)[1].split(", ", 1)[1].split()[0])
    assert 4 <= ixfr_records < axfr_records / 2
    # NSD applied both IXFRs: what it serves is the zone sigchain serves, and it verifies.
    from_nsd = _axfr(NSD_HOST, setup.nsd.port)
    ours = _axfr(SERVE_HOST, setup.serve.port, setup.keyring)
    assert _records(from_nsd) == _records(ours)
    _dump_and_verify(from_nsd, tmp_path / "from-nsd.zone")
    # A client two versions behind gets one condensed IXFR (RFC 1995 §5) that dnspython applies
    # (it raises on deleting a record it does not have).
    q, serial = dns.xfr.make_query(client_copy, keyring=setup.keyring, keyname=KEY_NAME)
    assert serial == old and q.question[0].rdtype == dns.rdatatype.IXFR
    dns.query.inbound_xfr(SERVE_HOST, client_copy, q, port=setup.serve.port, timeout=10)
    assert _records(client_copy) == _records(ours)
    assert f"IXFR of zone example.test. started (serial {old} -> {old + 2}; 2 version(s) condensed" \
        in setup.serve.text()


# ---- (d) who may transfer, and TSIG errors ----------------------------------------------------


def test_transfers_refused_without_the_key_or_from_other_addresses(setup: Setup) -> None:
    port = setup.serve.port
    for source in (SERVE_HOST, OTHER):
        for rdtype in ("AXFR", "IXFR"):
            q = dns.message.make_query(ORIGIN, rdtype)
            if rdtype == "IXFR":
                q.authority = [dns.rrset.from_text(ORIGIN, 0, "IN", "SOA", "a. b. 1 1 1 1 1")]
            r = dns.message.from_wire(_tcp(q.to_wire(), port, source))
            assert r.rcode() == dns.rcode.REFUSED and r.answer == [], (source, rdtype)
    # The address ACL alone lets 127.0.0.3 transfer unsigned; AXFR over UDP stays FORMERR.
    assert _records(_axfr(SERVE_HOST, port, source=ALLOWED))
    r = dns.query.udp(dns.message.make_query(ORIGIN, "AXFR"), SERVE_HOST, port=port, timeout=5,
                      source=ALLOWED)
    assert r.rcode() == dns.rcode.FORMERR
    # The key alone lets 127.0.0.4 transfer.
    assert _records(_axfr(SERVE_HOST, port, setup.keyring, source=OTHER))
    assert f"client {OTHER}: AXFR of zone example.test.: denied" in setup.serve.text()


def test_wrong_secret_is_notauth_badsig_and_unknown_key_badkey(setup: Setup) -> None:
    wrong = dns.tsig.Key(KEY_NAME, base64.b64encode(b"w" * 32).decode(), "hmac-sha256")
    stranger = dns.tsig.Key("stranger.", setup.secret, "hmac-sha256")
    for key, error in ((wrong, dns.rcode.BADSIG), (stranger, dns.rcode.BADKEY)):
        q = dns.message.make_query(ORIGIN, "AXFR")
        q.use_tsig(key)
        r = dns.message.from_wire(_tcp(q.to_wire(), setup.serve.port, SERVE_HOST), keyring=False)
        assert r.rcode() == dns.rcode.NOTAUTH and r.tsig_error == error and r.answer == []
    assert "request has invalid signature: TSIG xfr-key: BADSIG" in setup.serve.text()


def test_dig_axfr_with_a_tsig_key(setup: Setup) -> None:
    def dig(*args: str) -> str:
        proc = subprocess.run([need("dig"), f"@{SERVE_HOST}", "-p", str(setup.serve.port),
                               "+time=5", "+tries=1", "example.test", "AXFR", *args],
                              capture_output=True, text=True, timeout=30)
        return proc.stdout + proc.stderr

    good = dig("-y", f"hmac-sha256:xfr-key:{setup.secret}")
    assert "XFR size:" in good and "Transfer failed" not in good and "verify" not in good.lower()
    zone = _axfr(SERVE_HOST, setup.serve.port, setup.keyring)
    count = sum(len(rds) for node in zone.nodes.values() for rds in node.rdatasets)
    assert f"XFR size: {count + 1} records" in good  # the SOA comes twice
    assert "xfr-key.\t\t0\tANY\tTSIG\thmac-sha256." in good
    bad = dig("-y", f"hmac-sha256:xfr-key:{base64.b64encode(b'w' * 32).decode()}")
    assert "BADSIG" in bad and "Transfer failed." in bad
    assert "Transfer failed." in dig()  # no key from 127.0.0.1: refused


def test_notify_to_sigchain_is_answered(setup: Setup) -> None:
    q = dns.message.make_query(ORIGIN, "SOA")
    q.flags = dns.flags.AA
    q.set_opcode(dns.opcode.NOTIFY)
    q.use_tsig(setup.keyring)
    r = dns.query.udp(q, SERVE_HOST, port=setup.serve.port, timeout=5)  # verifies our TSIG
    assert r.opcode() == dns.opcode.NOTIFY and r.rcode() == dns.rcode.NOERROR
    assert r.flags & dns.flags.AA and r.had_tsig


# ---- config errors ----------------------------------------------------------------------------


def test_bad_config_is_exit_2_naming_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "serve.toml"
    bad.write_text('[zones."example.test."]\nfile = "z.signed"\nallow-transfer = ["key:missing"]\n')
    proc = sc("serve", "--config", bad)
    assert proc.returncode == 2
    assert f"{bad}:3: zones.\"example.test.\".allow-transfer: no TSIG key 'missing'" in proc.stderr
    proc = sc("serve", "--config", bad, "--zone", "example.test=x")
    assert proc.returncode == 2 and "cannot be combined" in proc.stderr


def test_each_address_serves_its_own_zones(setup: Setup) -> None:
    second = setup.second_port

    def ask(host: str, port: int, name: str, rdtype: str = "SOA") -> dns.message.Message:
        return dns.query.tcp(dns.message.make_query(name, rdtype), host, port=port, timeout=5)

    assert ask(SECOND, second, "other.test.").answer[0][0].serial == 1
    assert ask(SECOND, second, "example.test.").rcode() == dns.rcode.REFUSED
    assert ask(SERVE_HOST, setup.serve.port, "other.test.").rcode() == dns.rcode.REFUSED
    assert ask(SERVE_HOST, setup.serve.port, "example.test.").rcode() == dns.rcode.NOERROR
    q = dns.message.make_query(ORIGIN, "AXFR")
    q.use_tsig(setup.keyring)
    r = dns.query.tcp(q, SECOND, port=second, timeout=5)  # not served there: NOTAUTH, signed
    assert r.rcode() == dns.rcode.NOTAUTH and r.had_tsig
