"""`UdpWorkers.update`: a running worker takes a change handed to it (same pid, the next
answer from the new state); one that cannot apply it ends and is replaced by a worker
forked from the main process's current state. Real forked workers on a loopback socket."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from sigchain.edge.udpworkers import UdpWorkers

STATE = {"answer": b"v1"}  # what the handler answers (each process its own copy)


def handler(wire: bytes, tcp: bool, client: str) -> bytes:
    return STATE["answer"]


def on_update(payload: bytes) -> None:
    if payload == b"boom":
        raise ValueError("cannot apply this one")
    STATE["answer"] = payload


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


def ask(where: tuple[str, int]) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
        c.settimeout(2)
        c.sendto(b"\x00\x01question", where)
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
