"""dnsperf against `sigchain resolver` and Unbound (num-threads = cores) on the lab, one after
the other: warm (a small list, all cached after a priming pass) and cold (each name once:
wildcard and NXDOMAIN names nobody asked before), QPS, latency, and the ratios; memory per
cached entry from the resolver's own metrics.

`resolve.py --by-kind [NAMES]`: the lab, no Unbound: NAMES cold names of each kind (NXDOMAIN,
wildcard) in each zone resolved in process, one after another, with the CPU time and the
upstream queries per name.

`resolve.py --cpu [NAMES [KIND]]`: the lab; one `sigchain resolver --workers 1`, then Unbound
with one thread: the warm list for 10 s and NAMES cold names through dnsperf as in the main
bench (or, with KIND, all of one kind: ZONE.:nx or ZONE.:wild, e.g. insecure.test.:nx),
and each resolver process's CPU time per warm query and per cold name (end to end: the client
query read, resolution, validation and the response rendered). CPU time, unlike QPS, hardly
depends on what else the machine runs. Also, during the cold pass: the process's context
switches per cold name, the latency of a cached question asked every 5 ms (how long a
cache hit waits while the resolver is busy resolving), and sigchain's cold CPU split between
its client loop (the main thread) and its other threads (the resolution thread's loop).

`resolve.py --local [NAMES]`: no lab, no Unbound: the resolver's cold path alone, in process
(one worker), against the selection test's hierarchy on 127.55.201.x (sigchain serve):
NAMES new names under four signed zones, one after another and 200 at a time on the resolver's
resolution thread (as client queries are), with the CPU time per name."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import knot  # noqa: E402
from serve import cpu_seconds  # noqa: E402
from sign import tree_sample  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SIGCHAIN = str(ROOT / ".venv" / "bin" / "sigchain")
ADDR, SIGCHAIN_PORT, UNBOUND_PORT, METRICS = "127.55.0.30", 5301, 5302, 9301
OUTSTANDING = 200  # queries dnsperf keeps outstanding (-q), and --local's concurrent resolutions
WORKERS = int(os.environ.get("WORKERS", os.cpu_count() or 1))  # sigchain processes
ZONES = ("example.test.", "nsec.test.", "insecure.test.", "optout.test.", "unsigned.optout.test.")
WARM = [f"{label}{z} {t}" for z in ZONES for label, t in
        (("www.", "A"), ("www.", "AAAA"), ("mail.", "A"), ("", "MX"), ("nope.", "A"), ("www.", "TXT"))]


def cold_list(path: Path, count: int, tag: str) -> None:
    """Names nobody asked before: wildcard expansions and NXDOMAINs, spread over the zones."""
    with open(path, "w") as f:
        for i in range(count):
            z = ZONES[i % len(ZONES)]
            f.write(f"c{tag}{i}.wild.{z} A\n" if i % 2 else f"nx{tag}{i}.{z} A\n")


def dnsperf(port: int, qfile: Path, seconds: int, once: bool = False) -> dict[str, float]:
    args = ["dnsperf", "-s", ADDR, "-p", str(port), "-d", str(qfile), "-l", str(seconds), "-D",
            "-c", "8", "-q", str(OUTSTANDING), "-t", "10"] + (["-n", "1"] if once else [])
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    qps = float(re.search(r"Queries per second:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = re.search(r"Average Latency \(s\):\s+([\d.]+)", out)
    lost = re.search(r"Queries lost:\s+(\d+)", out)
    done = re.search(r"Queries completed:\s+(\d+)", out)
    codes = re.search(r"Response codes:\s+(.*)", out)
    return {"qps": qps, "latency_ms": float(lat.group(1)) * 1000 if lat else float("nan"),
            "lost": float(lost.group(1)) if lost else 0.0,
            "completed": float(done.group(1)) if done else float("nan"), "codes": codes.group(1) if codes else ""}  # type: ignore[dict-item]


def wait_answer(port: int, proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"resolver on port {port} exited before answering")
        r = subprocess.run(["dig", f"@{ADDR}", "-p", str(port), "+time=1", "+tries=1",
                            "www.example.test", "A"], capture_output=True, text=True)
        if "status: NOERROR" in r.stdout:
            return
        time.sleep(0.1)
    raise SystemExit(f"resolver on port {port} did not answer")


def unbound_conf(work: Path, lab: Path, threads: int = os.cpu_count() or 1) -> Path:
    """The lab's own Unbound config (its hints, anchor and settings) on the bench's address,
    with `threads` threads (one per core by default)."""
    text = (lab / "unbound.conf").read_text()
    text = re.sub(r"interface: .*", f"interface: {ADDR}", text)
    text = re.sub(r"port: 53\b", f"port: {UNBOUND_PORT}", text)
    text = re.sub(r"num-threads: .*", f"num-threads: {threads}\n\tso-reuseport: yes", text)
    conf = work / "unbound.conf"
    conf.write_text(text)
    return conf


def metrics() -> dict[str, float]:
    with urllib.request.urlopen(f"http://{ADDR}:{METRICS}/metrics", timeout=5) as page:
        text = page.read().decode()
    return {k: float(v) for k, _, v in (line.rpartition(" ") for line in text.splitlines()
                                       if line and not line.startswith("#"))}


def run_one(name: str, cmd: list[str], port: int, work: Path, seconds: int, cold: int) -> dict[str, object]:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_answer(port, proc)
        warm_file, cold_file = work / "warm", work / f"cold-{port}"
        warm_file.write_text("\n".join(WARM) + "\n")
        cold_list(cold_file, cold, "u" if port == UNBOUND_PORT else "s")
        dnsperf(port, warm_file, 2)  # prime
        warm = dnsperf(port, warm_file, seconds)
        before = tree_sample(proc.pid, {})
        cold_r = dnsperf(port, cold_file, seconds * 4, once=True)
        after = tree_sample(proc.pid, {})
        out: dict[str, object] = {"warm": warm, "cold": cold_r, "pss_mib": after / 2**20,
                                  "pss_growth_per_name": (after - before) / cold}
        if name == "sigchain":
            m = metrics()
            out["cache_bytes_per_entry"] = m["sigchain_resolver_cache_bytes"] / max(
                m["sigchain_resolver_cache_entries"], 1)
        return out
    finally:
        knot.stop(proc)


def local(count: int) -> None:
    """The in-process cold measurement (see the module docstring)."""
    import asyncio

    import dns.name
    import dns.rdatatype

    sys.path.insert(0, str(ROOT))
    from sigchain.services.resolver import ResolverService
    from sigchain.services.resolverconfig import from_flags
    from tests.interop.test_resolver_selection import hierarchy

    work = Path(tempfile.mkdtemp(prefix="sigchain-bench-resolve-"))
    print(f"# in process, one worker: {count} cold names (A, secure) under 4 signed zones")
    with hierarchy(work, "127.55.201.", names=count // 4 + 10, relays=False) as net:
        for mode in ("sequential", f"{OUTSTANDING} at once"):
            svc = ResolverService(from_flags(anchor=str(net.anchor), root_hints=str(net.hints)))
            for z in range(4):  # the zones' keys validated once, as in a running resolver
                svc.resolve(dns.name.from_text(f"n{count}.sel{z}."), dns.rdatatype.A)
            names = [dns.name.from_text(f"n{i // 4}.sel{i % 4}.") for i in range(count)]
            wall, cpu = time.perf_counter(), time.process_time()
            if mode == "sequential":
                out = [svc.resolve(q, dns.rdatatype.A, denials_tried=True) for q in names]
            else:  # as client queries are: on the resolution thread's event loop
                out = asyncio.run_coroutine_threadsafe(_at_once(svc, names, dns.rdatatype.A),
                                                       svc.resolutions.loop()).result()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            secure = sum(e.status is not None and e.status.value == "secure" for e in out)
            print(f"{mode}: {count / wall:.0f} names/s, {1000 * wall / count:.2f} ms wall and "
                  f"{1000 * cpu / count:.2f} ms CPU per name; {secure} of {count} secure")
            svc.close()
    shutil.rmtree(work, ignore_errors=True)


async def _at_once(svc, names: list, rdtype: int) -> list:  # type: ignore[no-untyped-def,type-arg]
    """Resolve `names` on the service's resolution loop, OUTSTANDING at a time."""
    import asyncio

    room = asyncio.Semaphore(OUTSTANDING)

    async def one(qname):  # type: ignore[no-untyped-def]
        async with room:
            return await svc._shared(qname, rdtype)
    return await asyncio.gather(*(one(q) for q in names))


def by_kind(count: int) -> None:
    """The bench's cold names resolved in process against the lab, one kind at a time: CPU
    per name and upstream queries per name for NXDOMAIN and wildcard names in each zone."""
    import dns.name
    import dns.rdatatype

    sys.path.insert(0, str(ROOT))
    from sigchain.services.resolver import ResolverService
    from sigchain.services.resolverconfig import from_flags

    work = Path(tempfile.mkdtemp(prefix="sigchain-bench-resolve-"))
    lab = work / "lab"
    subprocess.run([SIGCHAIN, "lab", "up", "--dir", str(lab), "--resolver", "none"], check=True,
                   stdout=subprocess.DEVNULL)
    try:
        svc = ResolverService(from_flags(anchor=str(lab / "anchor.ds"), root_hints=str(lab / "root.hints")))
        for z in ZONES:  # delegations and keys known, as in a running resolver
            svc.resolve(dns.name.from_text(f"www.{z}"), dns.rdatatype.A)
        print(f"# in process, one thread: {count} cold names of each kind, one after another")
        print("| zone | names | CPU ms/name | upstream queries/name | status/rcode |")
        print("|---|---|---:|---:|---|")
        total = 0.0
        for z in ZONES:
            for kind in ("nx", "wild"):
                names = [dns.name.from_text(f"{kind}{i}." + ("wild." if kind == "wild" else "") + z)
                         for i in range(count)]
                asked, cpu = svc.upstream.stats["queries"], time.process_time()
                out = [svc.resolve(n, dns.rdatatype.A) for n in names]
                cpu = time.process_time() - cpu
                total += cpu
                kinds = sorted({f"{e.status.value if e.status else '-'}/{e.rcode}" for e in out})
                label = "NXDOMAIN" if kind == "nx" else "wildcard"
                print(f"| {z} | {label} | {1000 * cpu / count:.2f} | "
                      f"{(svc.upstream.stats['queries'] - asked) / count:.2f} | {', '.join(kinds)} |")
        print(f"mean: {1000 * total / (count * 2 * len(ZONES)):.2f} ms CPU per cold name")
        svc.close()
    finally:
        subprocess.run([SIGCHAIN, "lab", "down", "--dir", str(lab)], stdout=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)


def switches(pid: int) -> int:
    """Context switches (voluntary and not) of all of a process's threads so far."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        for line in (task / "status").read_text().splitlines():
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                total += int(line.split()[1])
    return total


def main_thread_cpu(pid: int) -> float:
    """User + system CPU of a process's main thread (the resolver's client loop) so far."""
    fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def hit_latency(port: int, stop: threading.Event, out: list[float]) -> None:
    """Ask a cached question every 5 ms until `stop`; each answer's latency into `out`."""
    query = b"\x00\x00\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x07example\x04test\x00\x00\x01\x00\x01"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        sock.connect((ADDR, port))
        while not stop.is_set():
            started = time.monotonic()
            sock.send(query)
            try:
                sock.recv(4096)
                out.append(time.monotonic() - started)
            except TimeoutError:
                out.append(2.0)
            time.sleep(0.005)


def _kind(kind: str) -> tuple[str, str]:
    zone, _, what = kind.rpartition(":")
    if not zone.endswith(".") or what not in ("nx", "wild"):
        raise SystemExit(f"{kind}: give the kind as ZONE.:nx or ZONE.:wild (e.g. insecure.test.:nx)")
    return zone, what


def one_kind(path: Path, count: int, tag: str, kind: str) -> None:
    """`count` cold names of one kind, ZONE:nx (NXDOMAIN) or ZONE:wild (wildcard expansions)."""
    zone, what = _kind(kind)
    with open(path, "w") as f:
        for i in range(count):
            f.write(f"c{tag}{i}.wild.{zone} A\n" if what == "wild" else f"nx{tag}{i}.{zone} A\n")


def cpu_per_name(count: int, kind: str | None = None) -> None:
    """End to end, one process or thread each: CPU time per warm query and per cold name (see
    the module docstring); `kind`: the cold names all of one kind (`one_kind`)."""
    if kind:
        _kind(kind)  # before the lab is brought up
    work = Path(tempfile.mkdtemp(prefix="sigchain-bench-resolve-"))
    lab = work / "lab"
    subprocess.run([SIGCHAIN, "lab", "up", "--dir", str(lab), "--resolver", "none"], check=True,
                   stdout=subprocess.DEVNULL)
    runs = {
        "sigchain": ([SIGCHAIN, "resolver", "--listen", f"{ADDR}#{SIGCHAIN_PORT}", "--anchor",
                      str(lab / "anchor.ds"), "--root-hints", str(lab / "root.hints"),
                      "--workers", "1"], SIGCHAIN_PORT),
        "unbound": (["unbound", "-d", "-c", str(unbound_conf(work, lab, 1))], UNBOUND_PORT),
    }
    print(f"# one process (Unbound: one thread) each; warm list for 10 s, then {count} cold names "
          f"{'(' + kind + ') ' if kind else ''}once (dnsperf -c 8 -q 200), load {os.getloadavg()[0]:.1f}")
    print("| resolver | warm QPS | CPU µs per warm query | cold QPS | CPU ms per cold name | cold lost "
          "| switches per cold name | hit latency during cold p50 / p99 ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    out, split = {}, {}
    try:
        for name, (cmd, port) in runs.items():
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_answer(port, proc)
                warm_file, cold_file = work / "warm", work / f"cold-{port}"
                warm_file.write_text("\n".join(WARM) + "\n")
                tag = "p" if name == "sigchain" else "q"
                if kind:
                    one_kind(cold_file, count, tag, kind)
                else:
                    cold_list(cold_file, count, tag)
                dnsperf(port, warm_file, 2)  # delegations and zone keys known
                before = cpu_seconds(proc.pid)
                warm = dnsperf(port, warm_file, 10)
                warm_cpu = (cpu_seconds(proc.pid) - before) / warm["completed"]
                before, switched = cpu_seconds(proc.pid), switches(proc.pid)
                main_before = main_thread_cpu(proc.pid)
                stop, hits = threading.Event(), []  # type: ignore[var-annotated]
                prober = threading.Thread(target=hit_latency, args=(port, stop, hits))
                prober.start()
                try:
                    cold = dnsperf(port, cold_file, 60, once=True)
                finally:
                    stop.set()
                    prober.join()
                cold_cpu = (cpu_seconds(proc.pid) - before) / count
                main_cpu = (main_thread_cpu(proc.pid) - main_before) / count
                switched = (switches(proc.pid) - switched) / count
                hits.sort()
            finally:
                knot.stop(proc)
            out[name] = (warm_cpu, cold_cpu)
            split[name] = (main_cpu, cold_cpu - main_cpu)
            print(f"| {name} | {warm['qps']:.0f} | {1e6 * warm_cpu:.1f} | {cold['qps']:.0f} | "
                  f"{1000 * cold_cpu:.3f} | {cold['lost']:.0f} | {switched:.1f} | "
                  f"{1000 * hits[len(hits) // 2]:.1f} / {1000 * hits[int(len(hits) * 0.99)]:.1f} |")
    finally:
        subprocess.run([SIGCHAIN, "lab", "down", "--dir", str(lab)], stdout=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)
    (sw, sc), (uw, uc) = out["sigchain"], out["unbound"]
    print(f"CPU per query, sigchain ÷ Unbound: warm {sw / uw:.2f}, cold {sc / uc:.2f}")
    main_ms, rest_ms = (1000 * x for x in split["sigchain"])
    print(f"sigchain's cold CPU by thread: the client loop {main_ms:.3f} ms per name (queries read, "
          f"cache and RFC 8198 answers, hand-overs), the other threads {rest_ms:.3f} ms (resolutions)")


def main() -> None:
    if sys.argv[1:2] == ["--cpu"]:
        cpu_per_name(int(sys.argv[2]) if len(sys.argv) > 2 else 3000,
                     sys.argv[3] if len(sys.argv) > 3 else None)
        return
    if sys.argv[1:2] == ["--local"]:
        local(int(sys.argv[2]) if len(sys.argv) > 2 else 2000)
        return
    if sys.argv[1:2] == ["--by-kind"]:
        by_kind(int(sys.argv[2]) if len(sys.argv) > 2 else 300)
        return
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    cold = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    work = Path(tempfile.mkdtemp(prefix="sigchain-bench-resolve-"))
    lab = work / "lab"
    subprocess.run([SIGCHAIN, "lab", "up", "--dir", str(lab), "--resolver", "none"], check=True,
                   stdout=subprocess.DEVNULL)
    try:
        results = {
            "sigchain": run_one("sigchain", [
                SIGCHAIN, "resolver", "--listen", f"{ADDR}#{SIGCHAIN_PORT}", "--anchor",
                str(lab / "anchor.ds"), "--root-hints", str(lab / "root.hints"),
                "--metrics", f"{ADDR}#{METRICS}", "--workers", str(WORKERS)],
                SIGCHAIN_PORT, work, seconds, cold),
            "unbound": run_one("unbound", ["unbound", "-d", "-c", str(unbound_conf(work, lab))],
                               UNBOUND_PORT, work, seconds, cold),
        }
    finally:
        subprocess.run([SIGCHAIN, "lab", "down", "--dir", str(lab)], stdout=subprocess.DEVNULL)
    report(results, seconds, cold)
    shutil.rmtree(work, ignore_errors=True)


def report(results: dict[str, dict[str, object]], seconds: int, cold: int) -> None:
    print(f"# lab, DO=0, warm: {len(WARM)} questions for {seconds} s; cold: {cold} new names once; "
          f"dnsperf -c 8 -q 200; {os.cpu_count()} cores shared; sigchain --workers {WORKERS}, "
          f"Unbound num-threads {os.cpu_count()}")
    print("| resolver | warm QPS | warm ms | cold QPS | cold ms | cold lost | PSS MiB | rcodes (cold) |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for name, r in results.items():
        w, c = r["warm"], r["cold"]
        print(f"| {name} | {w['qps']:.0f} | {w['latency_ms']:.2f} | {c['qps']:.0f} | "  # type: ignore[index]
              f"{c['latency_ms']:.2f} | {c['lost']:.0f} | {r['pss_mib']:.0f} | {c['codes']} |")  # type: ignore[index]
    s, u = results["sigchain"], results["unbound"]
    print(f"warm: sigchain = {s['warm']['qps'] / u['warm']['qps']:.2f}x Unbound; "  # type: ignore[index]
          f"cold: {s['cold']['qps'] / u['cold']['qps']:.2f}x; "  # type: ignore[index]
          f"sigchain cache {s['cache_bytes_per_entry']:.0f} bytes/entry (estimate), "
          f"PSS growth {s['pss_growth_per_name']:.0f} bytes per cold name "
          f"(Unbound {u['pss_growth_per_name']:.0f})")


if __name__ == "__main__":
    main()
