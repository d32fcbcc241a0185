"""The transport's use of server selection, with the exchanges made by a function (no
network): what a held-down server's probe claim becomes when the probe is not sent, and
errors of this host (out of sockets or buffers) that must not hold a server down."""

from __future__ import annotations

import errno
import time

import dns.name
import dns.rdatatype

from sigchain.core.resolve.exchange import Query
from sigchain.core.resolve.selection import HOLD_DOWN, Selection
from sigchain.core.validate.anchors import Server
from sigchain.edge.transport import NoReply, Transport, drive

SERVER = Server("127.0.0.53")
QUERY = Query(dns.name.from_text("www.example.test."), dns.rdatatype.A, (SERVER,))


def _held_down(selection: Selection, now: float) -> None:
    selection.answered(SERVER, 0.001)
    for _ in range(2):
        selection.timed_out(SERVER, 0.2, now)


def _refuse(*_: object) -> object:
    raise ConnectionRefusedError(errno.ECONNREFUSED, "refused")


def test_a_probe_not_sent_gives_its_claim_back() -> None:
    """Budget spent before the probe went out, or the server already failed in this run:
    no probe is under way, so others may probe."""
    selection = Selection()
    net = Transport(0.0, 1.0, selection=selection)  # no time left: nothing is sent
    _held_down(selection, net.clock.monotonic())
    reply, error = drive(net.exchanging(QUERY), _refuse)
    assert reply is None and "time budget spent" in error and net.queries == 0
    assert not selection.probing(SERVER, net.clock.monotonic())

    net = Transport(5.0, 1.0, selection=selection)
    net.unanswered[SERVER] = "refused"  # it refused an earlier query of this run
    reply, error = drive(net.exchanging(QUERY), _refuse)
    assert reply is None and net.queries == 0 and "held down" in error
    assert not selection.probing(SERVER, net.clock.monotonic())
    payloads: list[int] = []

    def refuse(server: Server, message: object, timeout: float) -> object:
        payloads.append(message.payload)  # type: ignore[attr-defined]
        return _refuse()

    assert drive(Transport(5.0, 1.0, selection=selection).exchanging(QUERY), refuse)[0] is None
    assert selection.probing(SERVER, net.clock.monotonic())  # a probe that went out keeps it
    assert payloads == [512]  # asked with the small buffer: it gets no retry


def test_errors_of_this_host_do_not_hold_the_server_down() -> None:
    """EMFILE or ENOBUFS say this host is short of something, not that the server is gone;
    a refusal is the server's."""
    for number in sorted({errno.EMFILE, errno.ENOBUFS}):
        selection = Selection()
        selection.answered(SERVER, 0.001)

        def local(*_: object, number: int = number) -> object:
            raise OSError(number, "local")

        for _ in range(3):
            net = Transport(5.0, 1.0, selection=selection)
            reply, error = drive(net.exchanging(QUERY), local)
            assert reply is None and "local" in error
            assert net.unanswered == {}  # not reported as the server's failure
        assert selection.held((SERVER,), 0.0) == {} and selection.order((SERVER,), 0.0) == [SERVER]
    selection = Selection()
    for _ in range(2):
        drive(Transport(5.0, 1.0, selection=selection).exchanging(QUERY), _refuse)
    assert selection.held((SERVER,), Transport(5.0, 1.0).clock.monotonic()) != {}


def test_a_query_whose_own_miss_held_the_server_down_still_asks_again_small() -> None:
    """A server with one miss left over: this query's timeout is its second and holds it
    down; the query still asks it once more with the 512-byte buffer (an answer lost on the
    path at 1232 bytes is how such a server looks), and that retry's miss is the same
    silence: the hold-down is the first one, not doubled."""
    selection = Selection(max_timeout=1.0)
    selection.answered(SERVER, 0.001)
    net = Transport(5.0, 1.0, selection=selection)
    selection.timed_out(SERVER, 0.2, net.clock.monotonic() - 60)  # one miss, long ago
    payloads: list[int] = []

    def silent(server: Server, message: object, timeout: float) -> object:
        payloads.append(message.payload)  # type: ignore[attr-defined]
        time.sleep(0.001)
        raise NoReply(timeout, 0)

    reply, error = drive(net.exchanging(QUERY), silent)
    assert reply is None and payloads == [1232, 512], error
    held = selection.held((SERVER,), net.clock.monotonic())
    assert 0 < held[SERVER] <= HOLD_DOWN[0]
