"""Inline signing under dynamic update, served end to end: sigchain serve, named and knotd
each sign an unsigned zone themselves (one CSK, P-256, NSEC3 0 iterations, no salt), then
take TSIG-signed RFC 2136 UPDATEs of one record each; the latency is from sending the
UPDATE until the new record is answered with its RRSIG (polled over UDP every ms).

With `--via sighup` (sigchain only) each change is a record appended to the unsigned file
and SIGHUP, the latency until it is answered signed the same way.

Usage: bench/resign [NAMES ...] [--updates N] [--servers LIST] [--via update|sighup]
(default 10000 100000; 1000000 takes long)"""

from __future__ import annotations

import argparse
import base64
import functools
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsigkeyring
import dns.update

sys.path.insert(0, str(Path(__file__).resolve().parent))
import genzone  # noqa: E402
import knot  # noqa: E402

from sigchain.edge import loopback  # noqa: E402
from sigchain.errors import SigchainError  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SIGCHAIN = str(ROOT / ".venv" / "bin" / "sigchain")
ORIGIN = "bench.test."
# Its own loopback address: bench/sign and bench/serve use 127.0.0.1 (bench/sign's knotd on
# port 53541 too), and the interop tests their 127.5x-127.6x ranges; both may run meanwhile.
# named listens only on addresses configured on an interface: it is added to lo for the run
# when missing (as the lab adds its own; root needed) and removed after.
ADDR = "127.65.0.1"
SECRET = base64.b64encode(b"sigchain-bench-resign-key-32byte").decode()
KEYRING = dns.tsigkeyring.from_text({"upd.": ("hmac-sha256", SECRET)})
SIGN_TIMEOUT = 3600.0
NAMED_QUANTUM = 10000  # named's signing quantum (see named_conf)


def ask(port: int, qname: str, rdtype: str, timeout: float = 0.5) -> dns.message.Message | None:
    q = dns.message.make_query(qname, rdtype, want_dnssec=True)
    q.flags &= ~dns.flags.RD
    try:
        return dns.query.udp(q, ADDR, port=port, timeout=timeout, ignore_trailing=True)
    except (OSError, dns.exception.DNSException):
        return None


def signed_answer(port: int, qname: str, rdtype: str) -> bool:
    """The server answers `qname`/`rdtype` with the data and an RRSIG over it."""
    r = ask(port, qname, rdtype)
    if r is None or r.rcode() != dns.rcode.NOERROR:
        return False
    want = dns.rdatatype.from_text(rdtype)
    have = {(rr.rdtype, rr.covers) for rr in r.answer}
    return (want, 0) in have and (dns.rdatatype.RRSIG, want) in have


def fully_signed(port: int, names: int) -> bool:
    """The zone is served signed throughout: NSEC3PARAM at the apex and RRSIGs on names
    spread over the zone (named and knotd sign in the background after loading)."""
    if not signed_answer(port, ORIGIN, "NSEC3PARAM"):
        return False
    step = max(1, names // 16)
    sample = [i for i in range(0, names, step) if i % 20 > 2] + [names - 1]
    return all(signed_answer(port, f"h{i:07d}.{ORIGIN}", "A") for i in sample if i % 20 > 2)


def wait(what: Callable[[], bool], proc: subprocess.Popen, timeout: float, label: str) -> float:  # type: ignore[type-arg]
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"{label} exited ({proc.returncode})")
        if what():
            return time.monotonic() - start
        time.sleep(0.05)
    raise SystemExit(f"{label}: not signed within {timeout:.0f} s")


def send_update(port: int, name: str, address: str) -> None:
    """A TSIG-signed UPDATE adding one A record."""
    upd = dns.update.UpdateMessage(ORIGIN, keyring=KEYRING, keyname="upd.",
                                   keyalgorithm="hmac-sha256")
    upd.add(name, 300, "A", address)
    reply = dns.query.tcp(upd, ADDR, port=port, timeout=30)
    if reply.rcode() != dns.rcode.NOERROR:
        raise SystemExit(f"UPDATE on port {port}: {dns.rcode.to_text(reply.rcode())}")


def change_latencies(port: int, count: int, change: Callable[[str, str], None]) -> list[float]:
    """`count` one-record changes (`change(name, address)`); seconds from making each until
    it is served signed."""
    out = []
    for n in range(count):
        name = f"rs{n:05d}-{os.getpid()}.{ORIGIN}"
        start = time.perf_counter()
        change(name, f"192.0.2.{n % 250 + 1}")
        while not signed_answer(port, name, "A"):
            if time.perf_counter() - start > 30:
                raise SystemExit(f"port {port}: {name} not served signed within 30 s")
            time.sleep(0.001)
        out.append(time.perf_counter() - start)
    return out


def named_conf(work: Path, zone: Path, port: int) -> list[str]:
    keys = work / "named-keys"
    keys.mkdir()
    shutil.copy(zone, work / "named.zone")
    conf = work / "named.conf"
    conf.write_text(
        f'options {{ directory "{work}"; pid-file "{work}/named.pid"; listen-on port {port} {{ {ADDR}; }};\n'
        '  listen-on-v6 { none; }; recursion no; notify no; dnssec-validation no; };\n'
        f'key "upd." {{ algorithm hmac-sha256; secret "{SECRET}"; }};\n'
        'dnssec-policy "bench" { keys { csk lifetime unlimited algorithm ecdsap256sha256; };\n'
        '  nsec3param iterations 0 optout no salt-length 0; };\n'
        f'zone "{ORIGIN}" {{ type primary; file "{work}/named.zone"; key-directory "{keys}";\n'
        '  dnssec-policy "bench"; inline-signing yes; allow-update { key "upd."; };\n'
        # named signs a new key's zone in quanta of sig-signing-nodes names (default 100) or
        # sig-signing-signatures signatures (default 10), a timer apart: 496 s for 100k names.
        # Quanta of 10000 sign as fast as the cores allow; the updates timed are unaffected.
        f'  sig-signing-nodes {NAMED_QUANTUM}; sig-signing-signatures {NAMED_QUANTUM}; }};\n'
    )
    return ["named", "-g", "-n", str(os.cpu_count() or 1), "-c", str(conf)]


def knot_conf(work: Path, zone: Path, port: int) -> list[str]:
    db = work / "knotdb"
    db.mkdir()
    shutil.copy(zone, work / "knot.zone")
    cores = os.cpu_count() or 1
    conf = work / "knot.conf"
    conf.write_text(
        f"server:\n    rundir: {db}\n    listen: {ADDR}@{port}\n"
        f"    udp-workers: {cores}\n    tcp-workers: {cores}\n    background-workers: {cores}\n"
        f"database:\n    storage: {db}\n"
        "log:\n  - target: stderr\n    any: notice\n"
        f"key:\n  - id: upd.\n    algorithm: hmac-sha256\n    secret: {SECRET}\n"
        "acl:\n  - id: upd\n    key: upd.\n    action: update\n"
        "policy:\n  - id: bench\n    algorithm: ecdsap256sha256\n    single-type-signing: on\n"
        "    nsec3: on\n    nsec3-iterations: 0\n    nsec3-salt-length: 0\n"
        f"    signing-threads: {cores}\n"
        f"zone:\n  - domain: {ORIGIN}\n    file: {work}/knot.zone\n    storage: {db}\n"
        "    zonefile-sync: -1\n    zonefile-load: whole\n    semantic-checks: off\n"
        # the default 100 MiB journal cannot hold the first signing of 1M names
        "    journal-max-usage: 8G\n"
        "    dnssec-signing: on\n    dnssec-policy: bench\n    acl: upd\n"
    )
    return ["knotd", "-c", str(conf)]


def sigchain_conf(work: Path, zone: Path, port: int) -> list[str]:
    shutil.copy(zone, work / "sigchain.zone")
    (work / "sigchain-keys").mkdir(mode=0o700)
    conf = work / "sigchain.toml"
    conf.write_text(
        f'[keys."upd."]\nalgorithm = "hmac-sha256"\nsecret = "{SECRET}"\n\n'
        f'[zones."{ORIGIN}"]\nunsigned = "sigchain.zone"\nkeys = "sigchain-keys"\n'
        'policy = "default"\nallow-update = ["key:upd."]\n\n'
        f'[[listen]]\naddress = "{ADDR}#{port}"\n'
    )
    return [SIGCHAIN, "serve", "--config", str(conf)]


SERVERS = {"sigchain serve": (53541, sigchain_conf), "named": (53542, named_conf),
           "knotd": (53543, knot_conf)}


def by_sighup(proc: subprocess.Popen, unsigned: Path) -> Callable[[str, str], None]:  # type: ignore[type-arg]
    """A change made by appending to the unsigned file and SIGHUP (sigchain serve)."""
    def change(name: str, address: str) -> None:
        with open(unsigned, "a") as f:
            f.write(f"{name} 300 IN A {address}\n")
        proc.send_signal(signal.SIGHUP)
    return change


def run_one(label: str, port: int, make: Callable[[Path, Path, int], list[str]], work: Path,
            zone: Path, names: int, updates: int, via: str = "update") -> dict[str, float]:
    sub = work / label.split()[0]
    sub.mkdir()
    cmd = make(sub, zone, port)
    log = open(sub / "log", "w")
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=sub)
    try:
        wait(lambda: fully_signed(port, names), proc, SIGN_TIMEOUT, label)
        signed_s = time.monotonic() - start
        time.sleep(2)  # let background signing settle before timing single changes
        change = by_sighup(proc, sub / "sigchain.zone") if via == "sighup" else \
            functools.partial(send_update, port)
        lat = change_latencies(port, updates, change)
    finally:
        knot.stop(proc)
        log.close()
    lat_ms = sorted(x * 1000 for x in lat)
    return {"signed_s": signed_s, "median_ms": statistics.median(lat_ms),
            "p90_ms": lat_ms[int(0.9 * (len(lat_ms) - 1))], "max_ms": lat_ms[-1]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("names", type=int, nargs="*", default=[10_000, 100_000])
    p.add_argument("--updates", type=int, default=20)
    p.add_argument("--servers", default=",".join(SERVERS),
                   help=f"comma-separated subset of: {', '.join(SERVERS)}")
    p.add_argument("--via", choices=("update", "sighup"), default="update",
                   help="how each change is made (sighup: sigchain serve only)")
    args = p.parse_args()
    if args.via == "sighup":
        args.servers = "sigchain serve"
    missing = [t for t in ("named", "knotd") if shutil.which(t) is None]
    if missing:
        raise SystemExit(f"missing peers {missing}: run dev/peers")
    added = ADDR not in loopback.addresses()
    if added:
        try:
            loopback.add(ADDR)
        except SigchainError as exc:
            raise SystemExit(f"{exc} (named needs {ADDR} configured on lo)") from None
    try:
        rows = run_all(args)
    finally:
        if added:
            loopback.remove(ADDR)
    report(rows, args.updates, args.via)


def run_all(args: argparse.Namespace) -> list[tuple[int, str, dict[str, float]]]:
    rows = []
    for names in args.names:
        work = Path(tempfile.mkdtemp(prefix="sigchain-bench-resign-"))
        zone = work / "unsigned.zone"
        with open(zone, "w") as f:
            genzone.generate(ORIGIN, names, f)
        for label in args.servers.split(","):
            port, make = SERVERS[label.strip()]
            r = run_one(label.strip(), port, make, work, zone, names, args.updates, args.via)
            rows.append((names, label.strip(), r))
            print(f"# {names} names, {label}: {r}", flush=True)
        shutil.rmtree(work)
    return rows


def report(rows: list[tuple[int, str, dict[str, float]]], updates: int, via: str) -> None:
    how = "UPDATEs (TSIG, TCP)" if via == "update" else "edits of the unsigned file + SIGHUP"
    print(f"# one CSK P-256, NSEC3 0 iterations; {updates} one-record {how} per "
          f"server, latency until served with its RRSIG; {os.cpu_count()} cores shared")
    print("| names | server | first full sign s | update median ms | p90 ms | max ms "
          "| median ÷ best peer |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for names, label, r in rows:
        peers = [x for n, lbl, x in rows if n == names and lbl != "sigchain serve"]
        best = min(x["median_ms"] for x in peers) if peers else float("nan")
        print(f"| {names} | {label} | {r['signed_s']:.1f} | {r['median_ms']:.1f} "
              f"| {r['p90_ms']:.1f} | {r['max_ms']:.1f} | {r['median_ms'] / best:.2f} |")


if __name__ == "__main__":
    main()
