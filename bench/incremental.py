"""Incremental signing latency (pure function time): one single-record dynamic update —
checked by the RFC 2136 core and applied by the incremental signer (re-sign, chain repair,
SOA) — at several zone sizes. Flat means no work in proportion to the zone per change.

    .venv/bin/python bench/incremental.py [NAMES...]    (default 10000 100000)
"""

from __future__ import annotations

import io
import os
import statistics
import sys
import tempfile
import time

import dns.name
import dns.update

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import genzone  # noqa: E402

from sigchain.core.dnssec import algorithms, keyfile  # noqa: E402
from sigchain.core.dnssec.rrsig import SigWindow  # noqa: E402
from sigchain.core.sign import signer  # noqa: E402
from sigchain.core.sign.incremental import SignedZone  # noqa: E402
from sigchain.core.update.process import parse, process  # noqa: E402
from sigchain.core.zone.nsec3hash import Nsec3Params  # noqa: E402
from sigchain.edge import zonefile  # noqa: E402
from sigchain.model.keys import KeyPair, KeyRole, KeyTiming  # noqa: E402

ORIGIN = dns.name.from_text("bench.test.")
CHANGES = 30


def _keys() -> list[KeyPair]:
    a = algorithms.get(13)
    out = []
    for role in (KeyRole.KSK, KeyRole.ZSK):
        priv = algorithms.generate(a)
        out.append(KeyPair(ORIGIN, 13, keyfile.make_dnskey(a, priv, role.flags), priv, KeyTiming()))
    return out


def _updates(i: int) -> list[dns.update.UpdateMessage]:
    """A new name (new NSEC3 record, a neighbour's next pointer), a record added to an
    existing name, a name deleted."""
    add = dns.update.UpdateMessage(ORIGIN)
    add.add(f"new{i}.bench.test.", 300, "A", "192.0.2.7")
    more = dns.update.UpdateMessage(ORIGIN)
    more.add(f"h{i * 97 + 5:07d}.bench.test.", 300, "TXT", f'"change {i}"')
    gone = dns.update.UpdateMessage(ORIGIN)
    gone.delete(f"h{i * 89 + 6:07d}.bench.test.")
    return [add, more, gone]


def run(names: int, nsec3: Nsec3Params | None) -> tuple[float, float, float]:
    buf = io.StringIO()
    genzone.generate(ORIGIN.to_text(), names, buf)
    with tempfile.NamedTemporaryFile("w", suffix=".zone") as f:
        f.write(buf.getvalue())
        f.flush()
        _, rrsets, _ = zonefile.load_records(f.name, ORIGIN.to_text())
    now = int(time.time())
    opts = signer.SignOptions(SigWindow(now - 3600, 14 * 86400, 86400, b"b"), nsec3,
                              serial="increment")
    t0 = time.perf_counter()
    zone, _ = SignedZone.sign(rrsets, ORIGIN, _keys(), opts, now)
    full = time.perf_counter() - t0
    times = []
    for i in range(CHANGES):
        for u in _updates(i):
            wire = u.to_wire()
            t0 = time.perf_counter()
            res = process(parse(wire), zone, ORIGIN, True)  # type: ignore[arg-type]
            zone.apply(res.changes, SigWindow(now - 3600 + i, 14 * 86400, 86400, b"b"), now + i)
            times.append(time.perf_counter() - t0)
    return full, statistics.median(times) * 1000, max(times) * 1000


def main(argv: list[str]) -> None:
    sizes = [int(a) for a in argv] or [10_000, 100_000]
    print("| names | denial | full sign s | one change median ms | max ms |")
    print("|---:|---|---:|---:|---:|")
    for n in sizes:
        for label, nsec3 in (("NSEC", None), ("NSEC3", Nsec3Params())):
            full, med, worst = run(n, nsec3)
            print(f"| {n} | {label} | {full:.1f} | {med:.2f} | {worst:.2f} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
