"""Server selection by measured RTT inside the resolver, on real sockets (127.55.200.x): a
signed root and signed zones served by `sigchain serve`; sel0.-sel3. each have a fast server
and a slow one (a relay adding 100 ms), dead0.-dead3. a fast one and one that never answers
(named so that each referral lists the slow or dead server first, in canonical order: a
resolver that follows the referral's order asks it first every time). After a
few questions nearly every query goes to the fast server (each relay counts what it got), and
the dead server does not add its timeout to every resolution, even after its hold-down ends."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dns.dnssec
import dns.message
import dns.name
import dns.query
import dns.rdatatype
import pytest

from sigchain.clock import SystemClock
from sigchain.core.resolve.exchange import Query
from sigchain.core.resolve.selection import HOLD_DOWN, MIN_TIMEOUT, Selection
from sigchain.core.validate.anchors import Server
from sigchain.edge import keystore
from sigchain.edge.transport import Transport, drive, drive_async
from sigchain.services.resolver import ResolverService
from sigchain.services.resolverconfig import from_flags
from tests.conftest import sigchain_cmd, terminate
from tests.interop.hostile_net import Silent, _Listener
from tests.zonetools import keygen

PREFIX = "127.55.200."
SLOW_DELAY = 0.1
NAMES = 200  # A records per zone
N = dns.name.from_text


class Relay(_Listener):
    """Passes each query to `upstream` after `delay` seconds (each in its own thread, so that
    the delay does not queue) and the reply back; counts the queries by zone."""

    def __init__(self, address: str, upstream: str, delay: float = 0.0):
        self.upstream, self.delay = upstream, delay
        self.received: Counter[str] = Counter()
        super().__init__(address)

    def handle(self, wire: bytes, client: tuple[str, int]) -> None:
        try:
            qname = dns.message.from_wire(wire).question[0].name
        except Exception:  # noqa: BLE001 (not DNS: dropped)
            return
        self.received[qname.split(2)[1].to_text() if len(qname) > 1 else "."] += 1
        threading.Thread(target=self._relay, args=(wire, client), daemon=True).start()

    def _relay(self, wire: bytes, client: tuple[str, int]) -> None:
        time.sleep(self.delay)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as up:
            up.settimeout(3)
            up.sendto(wire, (self.upstream, 53))
            try:
                answer, _ = up.recvfrom(65535)
            except OSError:
                return
        self.sock.sendto(answer, client)


def _zone(origin: str, servers: dict[str, str], body: str) -> str:
    ns = "".join(f"@ NS {label}.ns.{origin}\n{label}.ns.{origin} A {a}\n" for label, a in servers.items())
    return f"$ORIGIN {origin}\n$TTL 3600\n@ SOA {next(iter(servers))}.ns.{origin} h.{origin} 1 7200 3600 1209600 300\n{ns}{body}"


def _sign(d: Path, zones: dict[str, str]) -> dict[str, tuple[Path, str]]:
    """Sign each origin's text with a fresh CSK, all at once; origin → (the signed file, the
    DS line for the parent)."""
    procs, out = [], {}
    for origin, text in zones.items():
        keys = d / f"keys-{origin}"
        base = keygen(keys, origin, "csk")
        unsigned = d / f"{origin}zone"
        unsigned.write_text(text)
        signed = d / f"{origin}signed"
        procs.append(subprocess.Popen(
            [*sigchain_cmd(), "sign", str(unsigned), "--keys", str(keys), "-o", str(signed),
             "--validity", "30d", "--jitter", "0", "--threads", "1"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        key = keystore.load_public(str(keys / f"{base}.key"))[2]
        out[origin] = signed, f"{origin} 3600 IN DS {dns.dnssec.make_ds(N(origin), key, 'SHA256')}\n"
    for proc in procs:
        text = proc.communicate(timeout=120)[0]
        assert proc.returncode == 0, text
    return out


@dataclass
class Net:
    hints: Path
    anchor: Path
    relays: list[_Listener]  # fast, slow, silent (none: the fast address is the server's own)


def _serve(d: Path, name: str, addresses: list[str], zones: dict[str, Path]) -> subprocess.Popen:  # type: ignore[type-arg]
    args = [*sigchain_cmd(), "serve", "--udp-workers", "1"]
    for address in addresses:
        args += ["--listen", address]
    for origin, path in zones.items():
        args += ["--zone", f"{origin}={path}"]
    with open(d / f"{name}.log", "w") as log:
        return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)


def _wait_served(address: str, origin: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            r = dns.query.udp(dns.message.make_query(origin, "SOA"), address, timeout=0.5)
            if r.answer:
                return
        except (OSError, dns.exception.Timeout):
            pass
        time.sleep(0.05)
    raise AssertionError(f"{origin} not served on {address}")


@contextmanager
def hierarchy(d: Path, prefix: str = PREFIX, names: int = NAMES, relays: bool = True) -> Iterator[Net]:
    """The root and the sel and dead zones (`names` A records each) on `prefix`.201-205.
    Without `relays`, the fast address is served directly and nothing listens on the slow
    and dead ones (for measuring the resolver alone: bench/resolve.py --local)."""
    root_ip, fast, slow, dead, backend = (prefix + str(i) for i in (201, 202, 203, 204, 205))
    body = "".join(f"n{i} A 192.0.2.{i % 250 + 1}\n" for i in range(names))
    servers = {f"sel{i}.": {"fast": fast, "lag": slow} for i in range(4)}
    servers |= {f"dead{i}.": {"fast": fast, "dead": dead} for i in range(4)}
    children = _sign(d, {z: _zone(z, ns, body) for z, ns in servers.items()})
    root_text = (f"$ORIGIN .\n$TTL 3600\n@ SOA ns.root. h.root. 1 7200 3600 1209600 300\n"
                 f"@ NS ns.root.\nns.root. A {root_ip}\n")
    for z, ns in servers.items():
        root_text += "".join(f"{z} NS {label}.ns.{z}\n{label}.ns.{z} A {a}\n" for label, a in ns.items())
        root_text += children[z][1]
    root = _sign(d, {".": root_text})["."][0]
    (d / "root.hints").write_text(f". 3600000 NS ns.root.\nns.root. 3600000 A {root_ip}\n")
    key = next((d / "keys-.").glob("*.key"))
    (d / "anchor.key").write_text(key.read_text())
    zones = {z: f for z, (f, _) in children.items()}
    procs = [_serve(d, "root", [root_ip], {".": root}),
             _serve(d, "zones", [backend] if relays else [backend, fast], zones)]
    listeners: list[_Listener] = []
    try:
        _wait_served(root_ip, ".")
        _wait_served(backend, "dead3.")
        if relays:
            listeners = [Relay(fast, backend), Relay(slow, backend, SLOW_DELAY), Silent(dead)]
        yield Net(d / "root.hints", d / "anchor.key", listeners)
    finally:
        for r in listeners:
            r.close()
        for p in procs:
            terminate(p)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    with hierarchy(tmp_path_factory.mktemp("selection")) as made:
        yield made


class Later(SystemClock):
    """The wall clock, with monotonic time that a test moves ahead (to end hold-downs)."""

    ahead = 0.0

    def monotonic(self) -> float:
        return super().monotonic() + self.ahead


def _service(net: Net) -> ResolverService:
    return ResolverService(from_flags(anchor=str(net.anchor), root_hints=str(net.hints)))


def _secure(service: ResolverService, name: str) -> float:
    """Resolve `name` A (it must be secure); the seconds it took."""
    started = time.monotonic()
    entry = service.resolve(N(name), dns.rdatatype.A)
    assert entry.status is not None and entry.status.value == "secure", (name, entry.ede)
    return time.monotonic() - started


def test_nearly_all_queries_go_to_the_faster_server(net: Net) -> None:
    service = _service(net)
    try:
        for i in range(60):
            _secure(service, f"n{i}.sel{i % 4}.")
        fast_relay, slow_relay, _ = net.relays
        assert isinstance(fast_relay, Relay) and isinstance(slow_relay, Relay)
        fast = sum(n for z, n in fast_relay.received.items() if z.startswith("sel"))
        slow = sum(n for z, n in slow_relay.received.items() if z.startswith("sel"))
        assert fast + slow >= 60
        assert slow <= 4 and fast >= 0.9 * (fast + slow), (fast, slow)
    finally:
        service.close()


def test_a_dead_server_does_not_add_its_timeout_to_every_resolution(net: Net) -> None:
    """Three rounds over the four zones, each round after every hold-down has run out: the
    dead server, known to be slowest, is not asked first again."""
    service = _service(net)
    clock = service.upstream.clock = Later()
    try:
        waits = []
        for round in range(3):
            waits += [_secure(service, f"n{round * 8 + i}.dead{i % 4}.") for i in range(8)]
            clock.ahead += 301  # past the longest hold-down
        silent = net.relays[2]
        assert isinstance(silent, Silent) and silent.received <= 2
        slow = [w for w in waits if w >= 1.0]  # the dead server's 1.5-s timeout, waited out
        assert len(slow) <= 1, waits
    finally:
        service.close()


@pytest.mark.parametrize("driven", ["blocking", "event loop"])
def test_a_quick_timeout_is_retried_in_full_then_the_server_is_held_down(driven: str) -> None:
    """The transport with a selection: a server measured as fast gets a short timeout; when
    it stays silent it is asked once more with the full timeout, then held down: the next
    query skips it while another server is there to ask, and, as its only server, probes it
    once with a short timeout (never leaving the query with nobody to ask). The same with
    blocking sockets (a trace) and on an event loop (the resolver's resolutions)."""

    def exchange(net: Transport, query: Query) -> tuple[object, str]:
        if driven == "blocking":
            return drive(net.exchanging(query))
        return asyncio.run(drive_async(net.exchanging(query)))

    silent, other = Silent(PREFIX + "210"), Silent(PREFIX + "211")
    try:
        server = Server(silent.address)
        selection = Selection(max_timeout=0.6)
        selection.answered(server, 0.001)
        net = Transport(5.0, 0.6, selection=selection)
        query = Query(N("n1.sel0."), dns.rdatatype.A, (server,))
        started = time.monotonic()
        reply, error = exchange(net, query)
        waited = time.monotonic() - started
        assert reply is None and "timed out" in error
        assert silent.received == 2 and MIN_TIMEOUT + 0.6 <= waited < MIN_TIMEOUT + 0.6 + 0.5
        assert selection.held((server,), time.monotonic()) != {}
        both = Query(N("n1.sel0."), dns.rdatatype.A, (server, Server(other.address)))
        reply, error = exchange(Transport(5.0, 0.3, selection=selection), both)
        assert reply is None and f"held down {HOLD_DOWN[0]:.0f} s more" in error
        assert silent.received == 2 and other.received == 2
        started = time.monotonic()
        reply, error = exchange(Transport(5.0, 0.6, selection=selection), query)
        waited = time.monotonic() - started
        assert reply is None and "timed out" in error and silent.received == 3
        assert waited < selection.probe_timeout(server) + 0.3
    finally:
        silent.close()
        other.close()


def _at_once(address: str, held: bool, count: int = 20) -> tuple[Selection, list[str], int]:
    """`count` resolutions at once on an event loop, each asking one query of a server that
    never answers, measured fast before (and held down when `held`): the selection after,
    each resolution's error, and how many queries the server received."""
    silent = Silent(address)
    try:
        server = Server(silent.address)
        selection = Selection(max_timeout=0.6)
        selection.answered(server, 0.001)
        for _ in range(2 if held else 0):
            selection.timed_out(server, 0.2, time.monotonic())
        query = Query(N("n1.sel0."), dns.rdatatype.A, (server,))

        async def together() -> list[tuple[object, str]]:
            return await asyncio.gather(*(
                drive_async(Transport(5.0, 0.6, selection=selection).exchanging(query))
                for _ in range(count)))

        errors = [error for _, error in asyncio.run(together())]
    finally:
        silent.close()
    return selection, errors, silent.received


def test_resolutions_at_once_send_a_held_down_server_one_probe() -> None:
    """Resolutions on the resolver's event loop that all find their only server held down at
    the same time: one probes it, the others give up at once saying it is being probed (not
    one probe each: up to 256 resolutions run at once)."""
    _, errors, received = _at_once(PREFIX + "212", held=True)
    assert received == 1
    assert sum("timed out" in e for e in errors) == 1, errors
    assert sum("being probed, skipped" in e for e in errors) == 19, errors


def test_a_server_held_down_meanwhile_is_not_asked_again_with_a_small_buffer() -> None:
    """Resolutions at once whose queries to a fast server all time out: once two misses
    held it down, the others do not send their 512-byte retry (which would double its load
    and, sent after the hold-down began, double the hold-down)."""
    selection, errors, received = _at_once(PREFIX + "213", held=False)
    assert sum("held down since, not asked again" in e for e in errors) >= 18, errors
    assert 20 < received <= 22
    held = selection.held((Server(PREFIX + "213"),), time.monotonic())
    assert list(held.values()) and 0 < list(held.values())[0] <= HOLD_DOWN[0]  # not doubled
