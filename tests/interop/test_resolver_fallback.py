"""The resolver survives a lost answer and a 512-byte middlebox, on real sockets: a single
forwarder (127.55.210.x: a relay in front of a signed root served by `sigchain serve`) that
loses the answers to one question is still asked for the next, which resolves at once; and a
zone whose only server sits behind a proxy that drops UDP answers over 512 bytes without TC
(127.55.211.x: the lab's `small` proxy) resolves with AD after the EDNS fallback (512-byte
buffer, TC, TCP), the next question going straight to the working mode with no timeout."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dns.name
import dns.rdatatype
import pytest

from sigchain.services.resolver import ResolverService
from sigchain.services.resolverconfig import from_flags
from tests.conftest import terminate
from tests.interop import resolving
from tests.interop.test_resolver_selection import Relay, _serve, _sign, _wait_served, _zone

N = dns.name.from_text
BIG_TXT = " ".join(f'"{chr(97 + i) * 200}"' for i in range(4))  # ~800 bytes, DO answer > 512


class Lossy(Relay):
    """A UDP relay to `upstream` that loses the next `drop` datagrams (a lost answer)."""

    def __init__(self, address: str, upstream: str):
        self.drop, self.dropped = 0, 0
        super().__init__(address, upstream)

    def handle(self, wire: bytes, client: tuple[str, int]) -> None:
        if self.drop > 0:
            self.drop -= 1
            self.dropped += 1
            return
        super().handle(wire, client)


def _root_with(d: Path, address: str, body: str, children: dict[str, tuple[str, str]]) -> Path:
    """A signed root on `address` holding `body` and delegating each child (origin → its
    server's address, its DS line); writes root.hints and anchor.key into `d`."""
    text = (f"$ORIGIN .\n$TTL 3600\n@ SOA ns.root. h.root. 1 7200 3600 1209600 300\n"
            f"@ NS ns.root.\nns.root. A {address}\n{body}")
    for origin, (server, ds) in children.items():
        text += f"{origin} NS ns.{origin}\nns.{origin} A {server}\n{ds}"
    signed = _sign(d, {".": text})["."][0]
    (d / "root.hints").write_text(f". 3600000 NS ns.root.\nns.root. 3600000 A {address}\n")
    (d / "anchor.key").write_text(next((d / "keys-.").glob("*.key")).read_text())
    return signed


@pytest.fixture(scope="module")
def lossy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lossy, Path]]:
    d = tmp_path_factory.mktemp("lossy")
    backend, relay = "127.55.210.1", "127.55.210.2"
    body = "".join(f"n{i} A 192.0.2.{i + 1}\n" for i in range(20))
    proc = _serve(d, "root", [backend], {".": _root_with(d, backend, body, {})})
    listener = None
    try:
        _wait_served(backend, ".")
        listener = Lossy(relay, backend)
        yield listener, d
    finally:
        if listener is not None:
            listener.close()
        terminate(proc)


def _secure(service: ResolverService, name: str, rdtype: int = dns.rdatatype.A,
            way: str = "blocking") -> float:
    """Resolve `name` (it must be secure: AD); the seconds it took."""
    started = time.monotonic()
    entry = resolving.resolve(way, service, N(name), rdtype)
    assert entry.status is not None and entry.status.value == "secure", (name, entry.ede)
    return time.monotonic() - started


@pytest.mark.parametrize("way", resolving.WAYS)
def test_a_single_forwarder_that_lost_answers_is_asked_again_at_once(lossy, way: str) -> None:
    relay, d = lossy
    relay.dropped = 0
    service = ResolverService(from_flags(anchor=str(d / "anchor.key"),
                                         forward=[f".={relay.address}"]))
    try:
        _secure(service, "n1.", way=way)  # measured: a fast forwarder
        relay.drop = 2  # the answer to the next question is lost, and so is its retry
        lost = resolving.resolve(way, service, N("n2."), dns.rdatatype.A)
        assert relay.dropped == 2 and (lost.status is None or lost.status.value != "secure")
        assert _secure(service, "n3.", way=way) < 0.5  # not held down with nobody else to ask
        assert _secure(service, "n4.", way=way) < 0.5
    finally:
        service.close()


@pytest.fixture(scope="module")
def middlebox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The root on .1; `big.`, served on .3, delegated to .2: the `small` proxy in front."""
    d = tmp_path_factory.mktemp("middlebox")
    root_ip, proxy_ip, backend = "127.55.211.1", "127.55.211.2", "127.55.211.3"
    body = "".join(f"t{i} TXT {BIG_TXT}\nn{i} A 192.0.2.{i + 1}\n" for i in range(10))
    child, ds = _sign(d, {"big.": _zone("big.", {"ns": proxy_ip}, body)})["big."]
    root = _root_with(d, root_ip, "", {"big.": (proxy_ip, ds)})
    procs = [_serve(d, "root", [root_ip], {".": root}), _serve(d, "big", [backend], {"big.": child})]
    try:
        _wait_served(root_ip, ".")
        _wait_served(backend, "big.")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "sigchain.services.labproxy", "small", proxy_ip, backend],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))
        _wait_served(proxy_ip, "big.")
        yield d
    finally:
        for p in procs:
            terminate(p)


@pytest.mark.parametrize("way", resolving.WAYS)
def test_a_path_losing_answers_over_512_bytes_falls_back_and_remembers(middlebox: Path, way: str) -> None:
    service = ResolverService(from_flags(anchor=str(middlebox / "anchor.key"),
                                         root_hints=str(middlebox / "root.hints")))
    try:
        _secure(service, "n0.big.", way=way)  # small answers pass: the server is measured as fast
        first = _secure(service, "t0.big.", dns.rdatatype.TXT, way)  # lost at 1232, then 512+TCP
        second = _secure(service, "t1.big.", dns.rdatatype.TXT, way)  # straight to 512+TCP
        third = _secure(service, "t2.big.", dns.rdatatype.TXT, way)
        assert first >= 0.2 and second < 0.2 and third < 0.2, (first, second, third)
        entry = resolving.resolve(way, service, N("t3.big."), dns.rdatatype.TXT)
        txt = [r for r in entry.answer if r.rdtype == dns.rdatatype.TXT]
        assert [len(s) for s in txt[0][0].strings] == [200] * 4  # the whole answer, over TCP
    finally:
        service.close()
