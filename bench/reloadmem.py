"""`bench/serve --reload`: the memory of a reload. Two versions of a signed zone that differ in
one record and the serial (signed deterministically with the same keys and inception, so the
rest of their signatures are the same), the first served, then the second swapped in: the sum
of PSS over the server's processes before the reload (steady), its highest value sampled every
50 ms across the reload (peak) and after it, the main process's own peak RSS during the reload
(VmHWM, reset at the SIGHUP), and the seconds until the new serial is answered. sigchain serve
(2 UDP workers) and named (SIGHUP: reload) one after the other; knotd (SIGHUP) when installed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rdataclass
import dns.rdatatype
import genzone
import knot
from sign import tree_sample

ADDR = "127.0.0.1"
CHANGED = ("h0000005 IN A 10.0.0.5", "h0000005 IN A 10.99.0.5")


def versions(work: Path, origin: str, names: int, sigchain: str) -> tuple[Path, Path]:
    """The two signed versions: serial S with the record as generated, serial S+1 changed."""
    keys, inception = work / "keys", str(int(time.time()) - 3600)
    for role in ("ksk", "zsk"):
        subprocess.run([sigchain, "keygen", origin, "--role", role, "--dir", str(keys)],
                       check=True, stdout=subprocess.DEVNULL)
    out = []
    for tag, change in (("v1", False), ("v2", True)):
        zone, signed = work / f"{tag}.zone", work / f"{tag}.signed"
        with open(zone, "w") as f:
            genzone.generate(origin, names, f)
        if change:
            text = zone.read_text().replace("2026112901", "2026112902").replace(*CHANGED)
            zone.write_text(text)
        subprocess.run([sigchain, "sign", str(zone), "--keys", str(keys), "--nsec3", "-o",
                        str(signed), "--deterministic", "--inception", inception],
                       check=True, stdout=subprocess.DEVNULL)
        out.append(signed)
    return out[0], out[1]


def serial(port: int, origin: str) -> int | None:
    """The SOA serial the server on ADDR@port answers now (None: no answer)."""
    try:
        reply = dns.query.udp(dns.message.make_query(origin, "SOA"), ADDR, timeout=0.2,
                              port=port)
    except (OSError, dns.exception.DNSException):
        return None
    soa = reply.get_rrset(reply.answer, dns.name.from_text(origin), dns.rdataclass.IN,
                          dns.rdatatype.SOA)
    return int(soa[0].serial) if soa else None


def _vm(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    return 0


def measure(cmd: list[str], port: int, live: Path, new: Path, origin: str,
            want: int) -> dict[str, float]:
    """Serve `live`, then replace it with `new` and SIGHUP; memory before, during, after."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        knot.wait_soa(port, origin, signed=True, proc=proc, timeout=900)
        time.sleep(2)  # workers forked, start-up garbage gone
        steady, rss = tree_sample(proc.pid, {}), _vm(proc.pid, "VmRSS:")
        with open(f"/proc/{proc.pid}/clear_refs", "w") as f:
            f.write("5")  # the peak RSS (VmHWM) restarts from now
        tmp = live.with_suffix(".tmp")
        shutil.copy(new, tmp)
        os.replace(tmp, live)
        start = time.monotonic()
        proc.send_signal(signal.SIGHUP)
        peak, took = steady, 0.0
        while time.monotonic() - start < 900:
            peak = max(peak, tree_sample(proc.pid, {}))
            if not took and serial(port, origin) == want:
                took = time.monotonic() - start
            if took and time.monotonic() - start > took + 2:  # the old processes gone
                break
            time.sleep(0.05)
        hwm, after = _vm(proc.pid, "VmHWM:"), tree_sample(proc.pid, {})
    finally:
        knot.stop(proc)
    mib = 2**20
    return {"steady": steady / mib, "peak": peak / mib, "after": after / mib,
            "main_rss": rss / mib, "main_hwm": hwm / mib, "seconds": took}


def run(work: Path, origin: str, names: int, sigchain: str) -> None:
    v1, v2 = versions(work, origin, names, sigchain)
    want = 2026112902
    live = work / "live.signed"
    conf = work / "named.conf"
    conf.write_text(
        f'options {{ directory "{work}"; pid-file "{work}/named.pid"; listen-on port 53552 '
        f'{{ {ADDR}; }};\n  listen-on-v6 {{ none; }}; recursion no; notify no; }};\n'
        f'zone "{origin}" {{ type primary; file "{live}"; }};\n')
    servers = {
        "sigchain serve": (53551, [sigchain, "serve", "--zone", f"{origin}={live}", "--listen",
                                   f"{ADDR}#53551", "--udp-workers", "2"]),
        "named": (53552, ["named", "-g", "-c", str(conf)]),
    }
    if shutil.which("knotd"):
        kconf = knot.config(work, origin, live, 53553, sign=False)
        servers["knotd"] = (53553, ["knotd", "-c", str(kconf)])
    results = {}
    for name, (port, cmd) in servers.items():
        shutil.copy(v1, live)
        results[name] = measure(cmd, port, live, v2, origin, want)
    print(f"# reload of a {names}-name NSEC3 zone, one record changed (re-signed), "
          f"{os.cpu_count()} cores shared; PSS summed over the server's processes")
    print("| server | steady PSS MiB | peak PSS MiB | peak ÷ steady | after MiB "
          "| main RSS MiB | main peak RSS MiB | reload s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['steady']:.0f} | {r['peak']:.0f} | {r['peak'] / r['steady']:.2f} "
              f"| {r['after']:.0f} | {r['main_rss']:.0f} | {r['main_hwm']:.0f} "
              f"| {r['seconds']:.1f} |")
