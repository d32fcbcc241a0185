"""`UdpWorkers.update`: a running worker takes a change handed to it (same pid, the next
answer from the new state); one that cannot apply it ends and is replaced by a worker
forked from the main process's current state; the TCP worker is not waited for, yet answers
nothing older than what `update` returned after. A worker replaced by `start()` answers the
datagram it holds before it stops. Real forked workers on loopback sockets."""

from __future__ import annotations

import os
import socket
import struct
import tempfile
import time
from collections.abc import Iterator

import pytest

from sigchain.edge.udpworkers import UdpWorkers

STATE = {"answer": b"v1"}  # what the handler answers (each process its own copy)


# Made by the worker as it starts on a b"...slow" query: it holds that datagram from then on.
HOLDING = os.path.join(tempfile.gettempdir(), f"udpworker-holding-{os.getpid()}")


def handler(wire: bytes, tcp: bool, client: str) -> bytes:
    if wire.endswith(b"slow"):
        open(HOLDING, "w").close()
        time.sleep(SLOW)
    return STATE["answer"]


def on_update(payload: bytes) -> None:
    if payload == b"boom":
        raise ValueError("cannot apply this one")
    if payload.startswith(b"slow"):
        time.sleep(SLOW)
    STATE["answer"] = payload


SLOW = 1.0  # seconds a b"slow..." update takes to apply


@pytest.fixture
def served() -> Iterator[tuple[UdpWorkers, tuple[str, int]]]:
    STATE["answer"] = b"v1"
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    workers = UdpWorkers(1, on_update=on_update)
    workers.start([(sock, handler)])
    yield workers, sock.getsockname()
    workers.stop()
    sock.close()


def ask(where: tuple[str, int], query: bytes = b"\x00\x01question") -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
        c.settimeout(2)
        c.sendto(query, where)
        return c.recv(512)


def test_a_running_worker_takes_updates_in_place(served: tuple[UdpWorkers, tuple[str, int]]) -> None:
    workers, where = served
    pids = list(workers.current)
    assert ask(where) == b"v1"
    for n in range(2, 6):
        STATE["answer"] = f"v{n}".encode()  # the main process's own state moves first
        assert workers.update(f"v{n}".encode()) == []  # applied and acknowledged in time
        assert ask(where) == f"v{n}".encode()
    assert workers.current == pids


def test_a_worker_that_cannot_apply_an_update_is_replaced(
        served: tuple[UdpWorkers, tuple[str, int]]) -> None:
    workers, where = served
    pids = list(workers.current)
    STATE["answer"] = b"v2"
    workers.update(b"boom")  # the worker ends instead of answering from the old state
    deadline = time.monotonic() + 10
    while workers.current == pids:
        assert time.monotonic() < deadline
        workers.reap()
        time.sleep(0.05)
    assert ask(where) == b"v2"  # the new worker was forked from the current state



def test_a_worker_replaced_mid_query_answers_the_datagram_it_holds(
        served: tuple[UdpWorkers, tuple[str, int]]) -> None:
    """`start()` again (a reload): the old worker is told to stop while it answers a query
    it took off the shared socket — nobody else can answer that one, so it does, then
    stops; a worker waiting for datagrams stops at once."""
    workers, where = served
    sock = socket.socket(fileno=socket.dup(workers._sockets[0][0]))  # the served socket
    [old] = workers.current
    if os.path.exists(HOLDING):
        os.unlink(HOLDING)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
        c.settimeout(2 + SLOW)
        c.sendto(b"\x00\x02slow", where)
        deadline = time.monotonic() + 5
        while not os.path.exists(HOLDING):  # the old worker holds it now
            assert time.monotonic() < deadline, "the worker did not take the query"
            time.sleep(0.01)
        os.unlink(HOLDING)
        STATE["answer"] = b"v2"
        workers.start([(sock, handler)])
        assert c.recv(512) == b"v1"  # not lost: answered by the process that took it
    assert ask(where) == b"v2"
    deadline = time.monotonic() + 5
    while old in workers.leaving:
        assert time.monotonic() < deadline, "the old worker did not stop"
        workers.reap()
        time.sleep(0.05)
    [new] = workers.current
    workers.start([(sock, handler)])  # an idle worker: it stops within a poll
    start = time.monotonic()
    while new in workers.leaving:
        assert time.monotonic() - start < 2.0, "the idle worker did not stop at once"
        workers.reap()
        time.sleep(0.01)
    sock.close()


@pytest.fixture(params=[1, 0], ids=["with a UDP worker", "TCP worker alone"])
def served_tcp(request: pytest.FixtureRequest
               ) -> Iterator[tuple[UdpWorkers, tuple[str, int], tuple[str, int]]]:
    STATE["answer"] = b"v1"
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    tcp = socket.create_server(("127.0.0.1", 0))
    workers = UdpWorkers(request.param, on_update=on_update)
    workers.start([(udp, handler)], [(tcp, handler)])
    yield workers, udp.getsockname(), tcp.getsockname()
    workers.stop()
    udp.close()
    tcp.close()


def ask_tcp(where: tuple[str, int]) -> bytes:
    query = b"\x00\x01question"  # not an UPDATE (opcode 5): answered from the zones
    with socket.create_connection(where, timeout=5) as c:
        c.sendall(struct.pack("!H", len(query)) + query)
        data = b""
        while len(data) < 2 or len(data) < 2 + struct.unpack("!H", data[:2])[0]:
            chunk = c.recv(512)
            assert chunk, "connection closed without an answer"
            data += chunk
        return data[2:]


def test_the_tcp_worker_is_not_waited_for_yet_answers_from_the_new_state(
        served_tcp: tuple[UdpWorkers, tuple[str, int], tuple[str, int]]) -> None:
    workers, udp, tcp = served_tcp
    assert ask_tcp(tcp) == b"v1"
    tcp_pid = workers.tcp_pid
    for n in range(2, 5):
        STATE["answer"] = f"v{n}".encode()
        assert workers.update(f"v{n}".encode()) == []
        assert ask_tcp(tcp) == f"v{n}".encode()  # asked at once: taken before answering
        if workers.current:
            assert ask(udp) == f"v{n}".encode()
    # An update slow to apply: `update` waits for the UDP worker's acknowledgement only;
    # the TCP worker applies it when it next answers (that answer waits, and is the new one).
    STATE["answer"] = b"slow-v5"
    start = time.monotonic()
    assert workers.update(b"slow-v5") == []
    waited = time.monotonic() - start
    assert waited >= SLOW if workers.current else waited < SLOW / 2, waited
    assert ask_tcp(tcp) == b"slow-v5"
    assert workers.tcp_pid == tcp_pid
