"""A real DNSSEC hierarchy on loopback for `sigchain trace` and `delv`, built at test time.

    127.54.0.1  named   .                 signed by sigchain (KSK + ZSK)
    127.54.0.2  named   test.             signed by dnssec-signzone (NSEC)
    127.54.0.3  named   zones signed by `sigchain sign`:
                          sc.test.        NSEC: www, wildcard, CNAME and DNAME into bind.test., big TXT
                          sc3.test.       NSEC3: www, wildcard, empty non-terminal
                          optout.test.    NSEC3 opt-out, delegates unsigned.optout.test. (no DS)
                          and the breaks: dsmismatch, expired, future, tampered, stripped,
                          iter200 (NSEC3, 200 iterations), keytrap (decoy keys and signatures)
    127.54.0.4  named   bind.test. (dnssec-signzone NSEC), bind3.test. (dnssec-signzone
                        NSEC3), ldns.test. (ldns-signzone NSEC3), dsa.test. (ldns-signzone
                        with DSA, an algorithm neither validator supports)
    127.54.0.5  named   unsigned.test., unsigned.optout.test. (not signed)
    127.54.0.9  named   a validating recursive resolver: these root hints, this anchor

The /32 addresses are added to `lo` for the hierarchy's lifetime (named binds only interface
addresses) and removed afterwards — only those this module added. Everything is built with
the wall clock, as named and delv use it.
"""

from __future__ import annotations

import concurrent.futures
import os
import random
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rdtypes.ANY.DNSKEY
import dns.rdtypes.ANY.RRSIG
import dns.zone
from dns.rdatatype import RdataType

from sigchain.edge import keystore
from tests.conftest import need, sc, terminate
from tests.zonetools import keygen_apart, sign_rrset

PREFIX = "127.54.0."
ROOT_IP, TLD_IP, SC_IP, PEER_IP, PLAIN_IP, RESOLVER_IP = (PREFIX + str(i) for i in (1, 2, 3, 4, 5, 9))
SERVERS = (ROOT_IP, TLD_IP, SC_IP, PEER_IP, PLAIN_IP, RESOLVER_IP)
N = dns.name.from_text

SOA = "@ SOA ns hostmaster 1 7200 3600 1209600 300\n@ NS ns\n"
BIG_TXT = "".join(f'big TXT "{i:02d} {"x" * 240}"\n' for i in range(8))

# zone → (server, signer, body); the body follows $ORIGIN/$TTL and the SOA/NS lines.
SC_ZONES = {
    "sc.test.": (SC_IP, "sigchain", f"""ns A {SC_IP}
www A 192.0.2.1
www AAAA 2001:db8::1
*.wild TXT "wildcard"
alias CNAME www.bind.test.
dangling CNAME nope.bind.test.
old DNAME bind.test.
a.b.c A 192.0.2.3
{BIG_TXT}"""),
    "sc3.test.": (SC_IP, "sigchain-nsec3", f"""ns A {SC_IP}
www A 192.0.2.2
*.wild TXT "wildcard"
a.b.c A 192.0.2.3
"""),
    "optout.test.": (SC_IP, "sigchain-optout", f"""ns A {SC_IP}
www A 192.0.2.4
unsigned NS ns.unsigned
ns.unsigned A {PLAIN_IP}
other NS ns.unsigned
"""),
    "dsmismatch.test.": (SC_IP, "sigchain", f"ns A {SC_IP}\nwww A 192.0.2.5\n"),
    "expired.test.": (SC_IP, "sigchain-expired", f"ns A {SC_IP}\nwww A 192.0.2.6\n"),
    "future.test.": (SC_IP, "sigchain-future", f"ns A {SC_IP}\nwww A 192.0.2.7\n"),
    "tampered.test.": (SC_IP, "sigchain", f"ns A {SC_IP}\nwww A 192.0.2.8\n"),
    "stripped.test.": (SC_IP, "sigchain", f"ns A {SC_IP}\nwww A 192.0.2.9\n"),
    "iter200.test.": (SC_IP, "sigchain-iter200", f"ns A {SC_IP}\nwww A 192.0.2.10\n"),
    "keytrap.test.": (SC_IP, "sigchain", f'ns A {SC_IP}\nwww A 192.0.2.11\nwww TXT "trap"\n'),
}
PEER_ZONES = {
    "bind.test.": (PEER_IP, "dnssec-signzone", f"""ns A {PEER_IP}
www A 192.0.2.20
*.wild TXT "wildcard"
"""),
    "bind3.test.": (PEER_IP, "dnssec-signzone-nsec3", f"""ns A {PEER_IP}
www A 192.0.2.21
a.b.c A 192.0.2.22
"""),
    "ldns.test.": (PEER_IP, "ldns-signzone-nsec3", f"""ns A {PEER_IP}
www A 192.0.2.23
*.wild TXT "wildcard"
"""),
    "dsa.test.": (PEER_IP, "ldns-signzone-dsa", f"ns A {PEER_IP}\nwww A 192.0.2.24\n"),
}
PLAIN_ZONES = {
    "unsigned.test.": (PLAIN_IP, "none", f"ns A {PLAIN_IP}\nwww A 192.0.2.30\n"
                                         "alias CNAME www.tampered.test.\n"),
    "unsigned.optout.test.": (PLAIN_IP, "none", f"ns A {PLAIN_IP}\nhost A 192.0.2.31\n"),
}
LEAVES = {**SC_ZONES, **PEER_ZONES, **PLAIN_ZONES}
DECOY_KEYS = 9  # keytrap.test.: DNSKEYs sharing one key tag
DECOY_SIGS = 12  # keytrap.test.: RRSIGs over www TXT that verify under no key


def _run(args: list[str | Path], cwd: Path | None = None) -> str:
    proc = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def _write_zone(path: Path, origin: str, body: str) -> Path:
    path.write_text(f"$ORIGIN {origin}\n$TTL 3600\n{SOA}{body}")
    return path


def _dnskeys(keydir: Path, origin: str, ksk_only: bool = True) -> list[dns.rdata.Rdata]:
    """The DNSKEY records in the K-files of a key directory (KSKs only by default)."""
    out = []
    for f in sorted(keydir.glob(f"K{origin}+*.key")):
        for line in f.read_text().splitlines():
            if line.startswith(";") or "DNSKEY" not in line:
                continue
            rd = dns.rdata.from_text("IN", "DNSKEY", line.split("DNSKEY", 1)[1])
            if not ksk_only or rd.flags & 1:  # type: ignore[attr-defined]
                out.append(rd)
    return out


def ds_lines(origin: str, keys: list[dns.rdata.Rdata]) -> str:
    rel = N(origin).relativize(N("test.")).to_text() if origin != "test." else "@"
    return "".join(f"{rel} DS {dns.dnssec.make_ds(origin, k, 'SHA256').to_text()}\n" for k in keys)  # type: ignore[arg-type]


# -- signers -------------------------------------------------------------------------------------


def _sign_sigchain(d: Path, origin: str, unsigned: Path, flavour: str) -> Path:
    keys = d / "keys"
    keys.mkdir()
    if flavour == "sigchain" and origin == "sc.test.":
        sc("keygen", origin, "--role", "ksk", "--dir", keys, check=True)
        sc("keygen", origin, "--role", "zsk", "--dir", keys, check=True)
    else:
        sc("keygen", origin, "--role", "csk", "--dir", keys, check=True)
    out = d / "signed"
    extra: list[str] = {
        "sigchain": [], "sigchain-nsec3": ["--nsec3"], "sigchain-optout": ["--nsec3", "--opt-out"],
        "sigchain-expired": ["--inception", "now-30d", "--validity", "10d", "--jitter", "0", "-P", "--force"],
        "sigchain-future": ["--inception", "now+10d", "--validity", "30d", "--jitter", "0", "-P", "--force"],
        "sigchain-iter200": ["--nsec3", "--iterations", "200", "--force"],
    }[flavour]
    sc("sign", unsigned, "--keys", keys, "-o", out, *extra, check=True)
    return out


def _sign_bind(d: Path, origin: str, unsigned: Path, flavour: str) -> Path:
    keys = d / "keys"
    keys.mkdir()
    keygen = need("dnssec-keygen")
    _run([keygen, "-q", "-a", "ECDSAP256SHA256", "-K", keys, "-f", "KSK", origin])
    _run([keygen, "-q", "-a", "ECDSAP256SHA256", "-K", keys, origin])
    out = d / "signed"
    nsec3 = ["-3", "-", "-H", "0"] if flavour.endswith("nsec3") else []
    _run([need("dnssec-signzone"), "-q", "-S", "-K", keys, *nsec3, "-o", origin, "-f", out, unsigned], cwd=d)
    return out


def _sign_ldns(d: Path, origin: str, unsigned: Path, flavour: str) -> Path:
    keys = d / "keys"
    keys.mkdir()
    alg = ["-a", "DSA", "-b", "1024"] if flavour.endswith("dsa") else ["-a", "ECDSAP256SHA256"]
    ksk = _run([need("ldns-keygen"), *alg, "-k", origin], cwd=keys).strip()
    zsks = keys / "zsk"  # ldns-keygen overwrites a file of the same tag: the ZSK apart
    zsks.mkdir()
    zsk = _run([need("ldns-keygen"), *alg, origin], cwd=zsks).strip()
    out = d / "signed"
    nsec3 = ["-n", "-t", "0"] if flavour.endswith("nsec3") else []
    _run([need("ldns-signzone"), *nsec3, "-o", origin, "-f", out, unsigned, zsks / zsk, keys / ksk])
    return out


# -- breaking signed zones after the fact ----------------------------------------------------


def _edit(path: Path, origin: str, change: Callable[[dns.zone.Zone], None]) -> None:
    zone = dns.zone.from_file(str(path), origin, relativize=False, check_origin=False)
    change(zone)
    zone.to_file(str(path), relativize=False, want_origin=True)


def _tamper(zone: dns.zone.Zone) -> None:
    """www A changes after signing: its RRSIG no longer verifies."""
    rds = zone.find_rdataset("www.tampered.test.", RdataType.A)
    rds.clear()
    rds.add(dns.rdata.from_text("IN", "A", "192.0.2.66"))


def _strip(zone: dns.zone.Zone) -> None:
    """Every RRSIG removed, as a DNSSEC-unaware middlebox would deliver the zone."""
    for _, node in zone.nodes.items():
        for rds in list(node.rdatasets):
            if rds.rdtype == RdataType.RRSIG:
                node.rdatasets.remove(rds)


def _decoy_keys(count: int, avoid: set[int]) -> tuple[int, list[dns.rdata.Rdata]]:
    """`count` real P-256 public keys whose DNSKEY records all share one key tag: each key's
    unassigned flag bits are set so the RFC 4034 Appendix B checksum comes out the same."""
    from cryptography.hazmat.primitives.asymmetric import ec

    rng = random.Random(4034)
    target = rng.randrange(1, 65535)
    while target in avoid:
        target = rng.randrange(1, 65535)
    keys: list[dns.rdata.Rdata] = []
    while len(keys) < count:
        pub = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()
        raw = pub.x.to_bytes(32, "big") + pub.y.to_bytes(32, "big")
        base = dns.rdtypes.ANY.DNSKEY.DNSKEY(dns.rdataclass.IN, RdataType.DNSKEY, 0, 3, 13, raw)
        rest = dns.dnssec.key_id(base)  # the checksum with flags 0
        for carry in (0, 1):
            flags = (target - rest - carry) % 65536
            if flags & 0x0100 and not flags & 0x0080:  # ZONE set, REVOKE clear
                rd = base.replace(flags=flags)
                if dns.dnssec.key_id(rd) == target:
                    keys.append(rd)
                    break
    return target, keys


def _keytrap(keys_dir: Path) -> Callable[[dns.zone.Zone], None]:
    """DECOY_KEYS DNSKEYs sharing a key tag join the (re-signed) DNSKEY RRset; www TXT carries
    DECOY_SIGS RRSIGs naming that tag and none that verifies (CVE-2023-50387's shape)."""
    def change(zone: dns.zone.Zone) -> None:
        origin = zone.origin
        assert origin is not None
        pairs = keystore.load_zone_keys(str(keys_dir), origin)
        dnskey = zone.find_rdataset(origin, RdataType.DNSKEY)
        tag, decoys = _decoy_keys(DECOY_KEYS, {dns.dnssec.key_id(k) for k in dnskey})
        for rd in decoys:
            dnskey.add(rd)
        old = zone.find_rdataset(origin, RdataType.RRSIG, RdataType.DNSKEY)[0]
        sigs = zone.find_rdataset(origin, RdataType.RRSIG, RdataType.DNSKEY)
        sigs.clear()
        for k in pairs:
            sigs.add(sign_rrset(origin, RdataType.DNSKEY, dnskey.ttl, list(dnskey), k, origin,
                                old.inception, old.expiration))  # type: ignore[attr-defined]
        www = N("www.keytrap.test.")
        txt = zone.find_rdataset(www, RdataType.RRSIG, RdataType.TXT)
        real = txt[0]
        txt.clear()
        rng = random.Random(50387)
        for _ in range(DECOY_SIGS):
            txt.add(real.replace(key_tag=tag, signature=rng.randbytes(64)))  # type: ignore[attr-defined]

    return change


# -- named ---------------------------------------------------------------------------------------


@dataclass
class Named:
    address: str
    directory: Path
    conf: str
    proc: subprocess.Popen[bytes] | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.directory / "named.log"

    def start(self) -> None:
        conf = self.directory / "named.conf"
        conf.write_text(self.conf)
        with open(self.log, "wb") as logf:
            self.proc = subprocess.Popen([need("named"), "-4", "-g", "-n", "1", "-c", str(conf)],
                                         stdout=logf, stderr=subprocess.STDOUT)

    def wait(self, deadline: float) -> None:
        assert self.proc is not None
        while "running" not in self.log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"named on {self.address} did not start:\n{self.log.read_text()}")
            time.sleep(0.05)

    def stop(self) -> None:
        terminate(self.proc)


def _options(d: Path, address: str, extra: str) -> str:
    return f"""options {{
  directory "{d}"; pid-file "{d}/named.pid"; managed-keys-directory "{d}";
  session-keyfile "{d}/session.key"; dump-file "{d}/cache.db";
  listen-on port 53 {{ {address}; }}; listen-on-v6 {{ none; }};
  notify no; {extra}
}};
controls {{ }};
"""


# -- the hierarchy -------------------------------------------------------------------------------


@dataclass
class Hierarchy:
    base: Path
    anchor_ds: list[str] = field(default_factory=list)  # the root's DS records, presentation form
    named: list[Named] = field(default_factory=list)
    added: list[str] = field(default_factory=list)

    # files the tests hand to sigchain trace and delv
    @property
    def hints(self) -> Path:
        return self.base / "root.hints"

    @property
    def bind_anchor(self) -> Path:
        return self.base / "anchor.conf"  # BIND trust-anchors syntax (also for delv -a)

    @property
    def zone_anchor(self) -> Path:
        return self.base / "anchor.ds"  # zone-file DS syntax

    def zone_file(self, origin: str) -> Path:
        return self.base / origin.rstrip(".") / "signed"

    def leaf_ksk_anchor(self, origin: str) -> Path:
        """A zone's own KSK DNSKEY(s), zone-file syntax: the zone as its own trust anchor."""
        path = self.base / f"{origin.rstrip('.')}.anchor"
        keys = _dnskeys(self.base / origin.rstrip(".") / "keys", origin)
        path.write_text("".join(f"{origin} IN DNSKEY {k.to_text()}\n" for k in keys))
        return path

    def build(self) -> None:
        """Keys and signed zones, bottom-up (children's DS into test., test.'s into .)."""
        jobs: dict[str, concurrent.futures.Future[Path | None]] = {}
        with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            for origin, (_, signer, body) in LEAVES.items():
                jobs[origin] = pool.submit(self._leaf, origin, signer, body)
            for job in jobs.values():
                job.result()
        # a KSK the DS in test. names for dsmismatch.test. (never used to sign, no tag of its keys)
        keygen_apart(self.base / "dsmismatch.test" / "keys", self.base / "dsmismatch-wrong",
                     "dsmismatch.test.", "ksk")
        self._edits()

        delegations = [f"ns A {TLD_IP}\n"]
        for origin, (ip, signer, _) in LEAVES.items():
            rel = N(origin).relativize(N("test.")).to_text()
            if origin.count(".") > 2:  # below a leaf (unsigned.optout.test.): not in test.
                continue
            delegations.append(f"{rel} NS ns.{rel}\nns.{rel} A {ip}\n")
            if signer == "none":
                continue
            d = self.base / ("dsmismatch-wrong" if origin == "dsmismatch.test." else origin.rstrip("."))
            keys = _dnskeys(d if origin == "dsmismatch.test." else d / "keys", origin)
            delegations.append(ds_lines(origin, keys))
        tld_dir = self.base / "test"
        tld_dir.mkdir()
        self._leaf_signed(tld_dir, "test.", "dnssec-signzone", "".join(delegations))
        tld_ksks = _dnskeys(tld_dir / "keys", "test.")

        root_dir = self.base / "root"
        root_dir.mkdir()
        root_body = f"ns.root. A {ROOT_IP}\ntest. NS ns.test.\nns.test. A {TLD_IP}\n" + "".join(
            f"test. DS {dns.dnssec.make_ds('test.', k, 'SHA256').to_text()}\n" for k in tld_ksks)  # type: ignore[arg-type]
        unsigned = root_dir / "unsigned"
        unsigned.write_text("$ORIGIN .\n$TTL 3600\n. SOA ns.root. hostmaster.root. 1 7200 3600 1209600 300\n"
                            f". NS ns.root.\n{root_body}")
        keys = root_dir / "keys"
        keys.mkdir()
        sc("keygen", ".", "--role", "ksk", "--dir", keys, check=True)
        sc("keygen", ".", "--role", "zsk", "--dir", keys, check=True)
        sc("sign", unsigned, "--origin", ".", "--keys", keys, "-o", root_dir / "signed", check=True)
        self.anchor_ds = [dns.dnssec.make_ds(".", k, "SHA256").to_text() for k in _dnskeys(keys, ".")]  # type: ignore[arg-type]

        self.hints.write_text(f".  3600000  NS  ns.root.\nns.root.  3600000  A  {ROOT_IP}\n")
        self.zone_anchor.write_text("".join(f". IN DS {ds}\n" for ds in self.anchor_ds))
        entries = []
        for ds in self.anchor_ds:
            tag, alg, dt, digest = ds.split(maxsplit=3)
            entries.append(f'  . static-ds {tag} {alg} {dt} "{digest}";\n')
        self.bind_anchor.write_text("trust-anchors {\n" + "".join(entries) + "};\n")

    def _leaf(self, origin: str, signer: str, body: str) -> None:
        d = self.base / origin.rstrip(".")
        d.mkdir()
        self._leaf_signed(d, origin, signer, body)

    def _leaf_signed(self, d: Path, origin: str, signer: str, body: str) -> Path:
        unsigned = _write_zone(d / "unsigned", origin, body)
        if signer == "none":
            shutil.copy(unsigned, d / "signed")
            return d / "signed"
        if signer.startswith("sigchain"):
            return _sign_sigchain(d, origin, unsigned, signer)
        if signer.startswith("dnssec-signzone"):
            return _sign_bind(d, origin, unsigned, signer)
        return _sign_ldns(d, origin, unsigned, signer)

    def _edits(self) -> None:
        _edit(self.zone_file("tampered.test."), "tampered.test.", _tamper)
        _edit(self.zone_file("stripped.test."), "stripped.test.", _strip)
        _edit(self.zone_file("keytrap.test."), "keytrap.test.", _keytrap(self.base / "keytrap.test" / "keys"))

    # -- servers ----------------------------------------------------------------------------

    def start(self) -> None:
        present = set(_lo_addresses())
        for ip in SERVERS:
            if ip not in present:
                _run([need("ip"), "addr", "add", f"{ip}/32", "dev", "lo"])
                self.added.append(ip)
        zones_at: dict[str, list[tuple[str, Path]]] = {
            ROOT_IP: [(".", self.base / "root" / "signed")],
            TLD_IP: [("test.", self.base / "test" / "signed")],
        }
        for origin, (ip, _, _) in LEAVES.items():
            zones_at.setdefault(ip, []).append((origin, self.zone_file(origin)))
        for ip, zones in zones_at.items():
            d = self.base / f"named-{ip}"
            d.mkdir()
            conf = _options(d, ip, "recursion no; dnssec-validation no;") + "".join(
                f'zone "{o}" {{ type primary; file "{f}"; check-names ignore; }};\n' for o, f in zones)
            self.named.append(Named(ip, d, conf))
        d = self.base / f"named-{RESOLVER_IP}"
        d.mkdir()
        resolver = _options(d, RESOLVER_IP, f"""recursion yes; allow-recursion {{ 127.0.0.0/8; }};
  allow-query {{ 127.0.0.0/8; }}; allow-query-cache {{ 127.0.0.0/8; }};
  query-source address {RESOLVER_IP}; dnssec-validation yes; synth-from-dnssec no;
  servfail-ttl 0; empty-zones-enable no; edns-udp-size 1232; max-udp-size 1232;""")
        resolver += f'zone "." {{ type hint; file "{self.hints}"; }};\n'
        resolver += self.bind_anchor.read_text()
        self.named.append(Named(RESOLVER_IP, d, resolver))
        for n in self.named:
            n.start()
        deadline = time.monotonic() + 60
        for n in self.named:
            n.wait(deadline)

    def stop(self) -> None:
        for n in self.named:
            n.stop()
        for ip in self.added:
            subprocess.run([need("ip"), "addr", "del", f"{ip}/32", "dev", "lo"], capture_output=True)
        self.added.clear()


def _lo_addresses() -> list[str]:
    out = _run([need("ip"), "-o", "-4", "addr", "show", "dev", "lo"])
    return [line.split()[3].split("/")[0] for line in out.splitlines() if " inet " in line]


if __name__ == "__main__":  # build and serve until interrupted, for poking with dig/delv
    import sys
    import tempfile

    def _exit(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _exit)
    signal.signal(signal.SIGINT, _exit)
    h = Hierarchy(Path(tempfile.mkdtemp(prefix="trace-hierarchy-")))
    t0 = time.monotonic()
    try:
        h.build()
        print(f"built in {time.monotonic() - t0:.1f}s in {h.base}", file=sys.stderr)
        h.start()
    except BaseException:
        h.stop()
        raise
    print(f"serving; anchors {h.bind_anchor}, hints {h.hints}", file=sys.stderr)
    try:
        signal.pause()
    finally:
        h.stop()
