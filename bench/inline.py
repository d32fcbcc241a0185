"""Inline signing latency (issue 15): `sigchain serve` signs a generated zone itself (policy
"default"); one record is appended to the unsigned file and SIGHUP sent, five times; printed:
the start time and, per change, the milliseconds until the new name is answered with its
RRSIG over UDP. Usage: bench/inline.py [NAMES...] (default 10000 100000)."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rdatatype

sys.path.insert(0, str(Path(__file__).parent))
from genzone import generate  # noqa: E402

HOST, PORT = "127.62.1.1", 15399


def run(names: int, folder: Path) -> None:
    zone = folder / "zone"
    text = io.StringIO()
    generate("example.test.", names, text)
    zone.write_text(text.getvalue())
    (folder / "serve.toml").write_text(
        f'[zones."example.test."]\nunsigned = "zone"\nkeys = "keys"\npolicy = "default"\n'
        f'[[listen]]\naddress = "{HOST}#{PORT}"\n')
    log = folder / "log"
    start = time.monotonic()
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "sigchain", "serve", "--config",
                                 str(folder / "serve.toml")], stdout=out, stderr=subprocess.STDOUT)
    try:
        while "ready:" not in log.read_text():
            if proc.poll() is not None:
                sys.exit(log.read_text())
            time.sleep(0.1)
        print(f"{names} names: started (keys, sign, index) in {time.monotonic() - start:.1f} s")
        times = []
        for k in range(5):
            name = f"zz-added-{k}.example.test."
            with open(zone, "a") as f:
                f.write(f"{name} 300 IN A 192.0.2.{k}\n")
            query = dns.message.make_query(name, "A", want_dnssec=True)
            t0 = time.perf_counter()
            proc.send_signal(signal.SIGHUP)
            while True:
                try:
                    r = dns.query.udp(query, HOST, port=PORT, timeout=0.2)
                    if any(rr.rdtype == dns.rdatatype.RRSIG for rr in r.answer):
                        break
                except dns.exception.Timeout:
                    pass
                time.sleep(0.001)
            times.append((time.perf_counter() - t0) * 1000)
            time.sleep(0.5)
        print(f"{names} names: SIGHUP -> new signed record served, ms: "
              + " ".join(f"{t:.0f}" for t in times))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait()


if __name__ == "__main__":
    for n in [int(a) for a in sys.argv[1:]] or [10_000, 100_000]:
        with tempfile.TemporaryDirectory() as d:
            run(n, Path(d))
