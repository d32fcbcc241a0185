"""Signed zones on 127.57.x for the exporter tests: `ops.test.` served by two servers, one
with older signatures (and serial), and its parent `test.` with the DS — at one parent server
for the zone's KSK, at another for a key the zone does not have."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rdatatype
import dns.zone
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ROOT, free_port, need, sc, sigchain_cmd, terminate
from tests.zonetools import keygen

ZONE = "ops.test."
FRESH, STALE = "127.57.1.1", "127.57.1.2"  # ns1 and ns2 of ops.test.
PARENT, WRONG_PARENT = "127.57.0.1", "127.57.0.2"
SILENT = "127.57.9.9"  # bound by the tests, never answers
RESOLVER, BOGUS_RESOLVER = "127.57.0.53", "127.57.0.54"  # Unbound via PARENT, via WRONG_PARENT
MIXED = "127.57.1.3"  # the whole-zone (AXFR) probe target
DAY = 86400

OPS = """$ORIGIN ops.test.
$TTL 300
@    IN SOA ns1 hostmaster {serial} 3600 600 1209600 300
     IN NS  ns1
     IN NS  ns2
ns1  IN A   127.57.1.1
ns2  IN A   127.57.1.2
www  IN A   127.57.1.10
     IN TXT "exporter test"
mail IN A   127.57.1.25
"""

PARENT_ZONE = """$ORIGIN test.
$TTL 300
@    IN SOA ns hostmaster 1 3600 600 1209600 300
     IN NS  ns
ns   IN A   127.57.0.1
ops  IN NS  ns1.ops
ops  IN NS  ns2.ops
ns1.ops IN A 127.57.1.1
ns2.ops IN A 127.57.1.2
{ds}
"""


def ds_line(keys: Path, base: str) -> str:
    return sc("ds", keys / f"{base}.key", check=True).stdout.strip()


def build(base: Path, stale_expiry_days: float = 2, parents: bool = True) -> dict[str, Path]:
    """Sign the zones: fresh (now-1h, 14 days), stale (serial one lower, expiring in
    `stale_expiry_days`), the parent with the right DS and a parent with a wrong one."""
    keys, other = base / "keys", base / "other"
    ksk = keygen(keys, "ops.test", "ksk")
    keygen(keys, "ops.test", "zsk")
    out: dict[str, Path] = {}
    for name, serial, extra in (
            ("fresh", 2, ["--validity", "14d"]),
            ("stale", 1, ["--inception", "now-10d",
                          "--validity", f"{int(10 * DAY + stale_expiry_days * DAY)}"])):
        src = base / f"ops.{name}.zone"
        src.write_text(OPS.format(serial=serial))
        out[name] = base / f"ops.{name}.signed"
        sc("sign", src, "--keys", keys, "-o", out[name], "--jitter", "0", *extra, check=True)
    if not parents:
        return out
    pkeys = base / "pkeys"
    csk = keygen(pkeys, "test", "csk")
    (base / "test.ds").write_text(ds_line(pkeys, csk))
    stranger = keygen(other, "ops.test", "ksk")
    for name, ds in (("parent", ds_line(keys, ksk)), ("wrong", ds_line(other, stranger))):
        src = base / f"test.{name}.zone"
        src.write_text(PARENT_ZONE.format(ds=ds))
        out[name] = base / f"test.{name}.signed"
        sc("sign", src, "--origin", "test.", "--keys", pkeys, "-o", out[name], check=True)
    return out


def mixed(base: Path, zones: dict[str, Path]) -> Path:
    """The fresh zone with www's A signature taken from the stale one (same keys, so it
    verifies): only a whole-zone probe sees that signature's early expiry."""
    fresh = dns.zone.from_file(str(zones["fresh"]), ZONE, relativize=False)
    stale = dns.zone.from_file(str(zones["stale"]), ZONE, relativize=False)
    www = dns.name.from_text("www", dns.name.from_text(ZONE))
    old = stale.find_rdataset(www, dns.rdatatype.RRSIG, dns.rdatatype.A)
    fresh.replace_rdataset(www, old)
    path = base / "ops.mixed.signed"
    fresh.to_file(str(path), relativize=False)
    return path


UNBOUND = """server:
  interface: {address}@53
  do-ip6: no
  do-not-query-localhost: no
  username: ""
  chroot: ""
  directory: "{dir}"
  pidfile: "{dir}/unbound-{address}.pid"
  use-syslog: no
  logfile: ""
  verbosity: 1
  module-config: "validator iterator"
  trust-anchor: "{anchor}"
  qname-minimisation: no
  local-zone: "test." nodefault
  harden-referral-path: no
  target-fetch-policy: "0 0 0 0 0"
stub-zone:
  name: "test."
  stub-addr: {parent}@53
"""


def unbound(base: Path, address: str, parent: str) -> subprocess.Popen[bytes]:
    """A validating Unbound on `address`, trusting `test.`'s key, with `parent` as the
    server of `test.`; returns once it answers."""
    conf = base / f"unbound-{address}.conf"
    conf.write_text(UNBOUND.format(address=address, dir=base, parent=parent,
                                   anchor=(base / "test.ds").read_text().strip()))
    log = open(base / f"unbound-{address}.log", "wb")
    proc = subprocess.Popen([need("unbound"), "-d", "-c", str(conf)], stdout=log,
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while True:
        try:
            dns.query.udp(dns.message.make_query("test.", "SOA"), address, timeout=0.5)
            return proc
        except (dns.exception.Timeout, OSError):
            if proc.poll() is not None or time.monotonic() > deadline:
                terminate(proc)
                raise AssertionError((base / f"unbound-{address}.log").read_text()) from None


class Daemon:
    """A sigchain subprocess (serve or exporter) logging to a file, ready when it says so."""

    def __init__(self, log: Path, args: list[str], ready: str = "ready:"):
        self.log = log
        self._f = open(log, "w")
        self.proc = subprocess.Popen([*sigchain_cmd(), *args], stdout=self._f,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while ready not in self.text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"{args[0]} did not get ready:\n{self.text()}")
            time.sleep(0.05)

    def text(self) -> str:
        return self.log.read_text()

    def stop(self) -> int:
        terminate(self.proc)
        self._f.close()
        return self.proc.returncode


def serve(log_dir: Path, address: str, zone: str, path: Path, *extra: str) -> Daemon:
    return Daemon(log_dir / f"serve-{address}.log",
                  ["serve", "--listen", f"{address}#53", "--zone", f"{zone}={path}",
                   "--udp-workers", "1", *extra])


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
RULES = ROOT / "alerts" / "dnssec.rules.yml"


def scrape(url: str) -> Samples:
    """A /metrics page, read with prometheus_client's own parser."""
    with urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def get_json(url: str) -> dict:  # type: ignore[type-arg]
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


@contextlib.contextmanager
def prometheus(base: Path, address: str, target: str, short_for: str) -> Iterator[str]:
    """Debian's Prometheus on `address` scraping `target` (HOST:PORT) every second and
    evaluating the shipped rules and a copy whose `for: 15m` is `short_for` (group
    dnssec-short); its URL."""
    short = base / "short.rules.yml"
    short.write_text(RULES.read_text().replace("name: dnssec\n", "name: dnssec-short\n")
                     .replace("for: 15m", f"for: {short_for}"))
    config = base / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: ['{RULES}', '{short}']\n"
        f"scrape_configs:\n  - job_name: dnssec\n    static_configs:\n"
        f"      - targets: ['{target}']\n")
    web = free_port(address)
    with open(base / "prometheus.log", "w") as log:
        proc = subprocess.Popen([need("prometheus"), f"--config.file={config}",
                                 f"--storage.tsdb.path={base / 'tsdb'}",
                                 f"--web.listen-address={address}:{web}"],
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            yield f"http://{address}:{web}"
        finally:
            terminate(proc)
