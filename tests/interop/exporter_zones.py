"""Signed zones on 127.57.x for the exporter tests: `ops.test.` served by two servers, one
with older signatures (and serial), and its parent `test.` with the DS — at one parent server
for the zone's KSK, at another for a key the zone does not have."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tests.conftest import sc, sigchain_cmd, terminate
from tests.zonetools import keygen

ZONE = "ops.test."
FRESH, STALE = "127.57.1.1", "127.57.1.2"  # ns1 and ns2 of ops.test.
PARENT, WRONG_PARENT = "127.57.0.1", "127.57.0.2"
SILENT = "127.57.9.9"  # nothing listens there
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


def build(base: Path, stale_expiry_days: float = 2) -> dict[str, Path]:
    """Sign the zones: fresh (now-1h, 14 days), stale (serial one lower, expiring in
    `stale_expiry_days`), the parent with the right DS and a parent with a wrong one."""
    keys, other = base / "keys", base / "other"
    ksk = keygen(keys, "ops.test", "ksk")
    keygen(keys, "ops.test", "zsk")
    stranger = keygen(other, "ops.test", "ksk")
    out: dict[str, Path] = {}
    for name, serial, extra in (
            ("fresh", 2, ["--validity", "14d"]),
            ("stale", 1, ["--inception", "now-10d",
                          "--validity", f"{int(10 * DAY + stale_expiry_days * DAY)}"])):
        src = base / f"ops.{name}.zone"
        src.write_text(OPS.format(serial=serial))
        out[name] = base / f"ops.{name}.signed"
        sc("sign", src, "--keys", keys, "-o", out[name], "--jitter", "0", *extra, check=True)
    pkeys = base / "pkeys"
    keygen(pkeys, "test", "csk")
    for name, ds in (("parent", ds_line(keys, ksk)), ("wrong", ds_line(other, stranger))):
        src = base / f"test.{name}.zone"
        src.write_text(PARENT_ZONE.format(ds=ds))
        out[name] = base / f"test.{name}.signed"
        sc("sign", src, "--origin", "test.", "--keys", pkeys, "-o", out[name], check=True)
    return out


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
