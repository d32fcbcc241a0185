"""Server selection by measured RTT (core.resolve.selection), at fake monotonic times: the
fastest server first, unknown servers tried before known-slow ones, exploration of the slower
ones now and then, timeouts from the RTT, and back-off for a server that keeps timing out."""

from __future__ import annotations

import random

from sigchain.core.resolve import selection as sel
from sigchain.core.resolve.selection import Selection
from sigchain.core.validate.anchors import Server

FAST, SLOW, DEAD, NEW = (Server(f"192.0.2.{i}") for i in (1, 2, 3, 4))


def _pick(s: Selection, servers: tuple[Server, ...], now: float, rtts: dict[Server, float]) -> Server:
    """Ask as a resolver would: the first in order answers after its RTT (None: times out,
    and the next is asked)."""
    for server in s.order(servers, now):
        rtt = rtts[server]
        if rtt is None:
            s.timed_out(server, s.timeout(server), now)
            continue
        s.answered(server, rtt)
        return server
    raise AssertionError("nobody answered")


def test_after_a_few_queries_nearly_all_go_to_the_fastest() -> None:
    s = Selection(rng=random.Random(1))
    rtts = {FAST: 0.002, SLOW: 0.150}
    picks = [_pick(s, (SLOW, FAST), float(i), rtts) for i in range(300)]
    assert picks[2:].count(FAST) >= 0.95 * len(picks[2:])
    assert SLOW in picks  # measured at the start, and explored again later on
    assert s.srtt(FAST) is not None and s.srtt(FAST) < 0.01  # type: ignore[operator]


def test_unknown_servers_start_small_and_random_so_each_is_tried() -> None:
    starts = set()
    for seed in range(20):
        s = Selection(rng=random.Random(seed))
        s.answered(SLOW, 0.200)
        order = s.order((SLOW, NEW), 0.0)
        assert order[0] == NEW  # unknown (1-32 ms) before a server known to take 200 ms
        starts.add(s.srtt(NEW))
        assert sel.UNKNOWN_RTT[0] <= s.srtt(NEW) <= sel.UNKNOWN_RTT[1]  # type: ignore[operator]
    assert len(starts) == 20


def test_timeout_follows_the_rtt_within_bounds() -> None:
    s = Selection(max_timeout=1.5)
    assert s.timeout(NEW) == 1.5  # never measured: the most
    for _ in range(10):
        s.answered(FAST, 0.001)
    assert s.timeout(FAST) == sel.MIN_TIMEOUT
    for _ in range(10):
        s.answered(SLOW, 0.400)
    assert 0.4 <= s.timeout(SLOW) < 0.6
    s.timed_out(SLOW, s.timeout(SLOW), 0.0)  # a timeout doubles it, up to the maximum
    assert 0.8 <= s.timeout(SLOW) <= 1.2
    s.timed_out(SLOW, s.timeout(SLOW), 0.0)
    assert s.timeout(SLOW) == 1.5


def test_a_dead_server_goes_last_then_is_held_down_with_exponential_backoff() -> None:
    s = Selection(rng=random.Random(3))
    s.answered(FAST, 0.002)
    assert s.timed_out(DEAD, 1.5, 0.0) == 0.0  # one miss: not held, but asked last
    assert s.order((DEAD, FAST), 1.0) == [FAST, DEAD]
    assert s.timed_out(DEAD, 1.5, 10.0) == sel.HOLD_DOWN[0]  # again: held down
    assert s.order((DEAD, FAST), 11.0) == [FAST]
    assert s.held((DEAD, FAST), 11.0) == {DEAD: sel.HOLD_DOWN[0] - 1.0}
    now, holds = 10.0 + sel.HOLD_DOWN[0], []
    for _ in range(10):  # still silent after each hold-down: it doubles, up to the cap
        assert DEAD in s.order((DEAD,), now)
        hold = s.timed_out(DEAD, 1.5, now)
        holds.append(hold)
        now += hold
    assert holds[:3] == [2 * sel.HOLD_DOWN[0], 4 * sel.HOLD_DOWN[0], 8 * sel.HOLD_DOWN[0]]
    assert holds[-1] == sel.HOLD_DOWN[1]
    s.answered(DEAD, 0.003)  # it answers again: the back-off is over
    assert s.held((DEAD,), now) == {} and s.timed_out(DEAD, 0.2, now) == 0.0


def test_misses_of_queries_sent_before_a_hold_down_began_do_not_lengthen_it() -> None:
    """Many resolutions that asked one silent server at once time out together: only the
    first misses count; a probe sent during the hold-down that times out doubles it."""
    s = Selection(rng=random.Random(4))
    assert s.timed_out(DEAD, 1.5, 10.0) == 0.0
    assert s.timed_out(DEAD, 1.5, 10.1) == sel.HOLD_DOWN[0]  # held down from 10.1
    for i in range(50):  # the other queries, sent at about 8.6, time out now
        assert s.timed_out(DEAD, 1.5, 10.1 + i * 0.001) == 0.0
    assert s.held((DEAD,), 11.0) == {DEAD: 10.1 + sel.HOLD_DOWN[0] - 11.0}
    assert s.timed_out(DEAD, 0.2, 15.3) == 2 * sel.HOLD_DOWN[0]  # the probe, sent at 15.1


def test_a_dead_server_costs_its_timeout_only_now_and_then() -> None:
    s = Selection(rng=random.Random(5))
    rtts = {FAST: 0.002, DEAD: None}
    waited = 0.0
    for i in range(500):
        for server in s.order((DEAD, FAST), float(i)):
            if server == DEAD:
                waited += s.timeout(DEAD)
                s.timed_out(DEAD, s.timeout(DEAD), float(i))
                continue
            s.answered(FAST, rtts[FAST])  # type: ignore[arg-type]
            break
    assert waited <= 3 * 1.5  # not 500 timeouts: a handful over the whole run


def test_memory_is_bounded() -> None:
    s = Selection()
    for i in range(sel.MAX_SERVERS + 50):
        s.answered(Server(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"), 0.01)
    assert len(s._infra) == sel.MAX_SERVERS


def test_when_every_server_is_held_down_the_one_freed_first_is_still_probed() -> None:
    s = Selection(max_timeout=1.5, rng=random.Random(4))
    s.answered(FAST, 0.002)
    s.answered(SLOW, 0.100)
    assert s.probe((FAST, SLOW), 0.0) is None  # some server usable: no probe
    for server, at in ((SLOW, 0.0), (FAST, 1.0)):
        s.timed_out(server, 0.2, at)
        s.timed_out(server, 0.2, at)
    assert s.order((FAST, SLOW), 2.0) == []
    assert s.probe((FAST, SLOW), 2.0) == SLOW  # its hold-down ends first
    assert s.probe((FAST,), 2.0) == FAST  # a single forwarder is never left unasked
    assert sel.MIN_TIMEOUT <= s.probe_timeout(FAST) <= 0.75 < s.timeout(FAST) + 0.5
    s.answered(FAST, 0.002)  # the probe's answer ends the hold-down
    assert s.order((FAST, SLOW), 2.1) == [FAST] and s.held((FAST,), 2.1) == {}
    s.reached(SLOW)  # an answer over TCP (no RTT sample) ends it too
    assert s.held((SLOW,), 2.1) == {}


def test_a_held_down_server_is_probed_by_one_query_at_a_time() -> None:
    """Many resolutions finding every server held down at once send it one probe, not one
    each; the next may go once that probe timed out, and its answer ends the hold-down."""
    s = Selection(max_timeout=1.5)
    s.answered(FAST, 0.002)
    s.timed_out(FAST, 0.2, 1.0)
    s.timed_out(FAST, 0.2, 1.0)
    assert s.probe((FAST,), 2.0) == FAST and s.probing(FAST, 2.0)
    assert [s.probe((FAST,), 2.0 + i / 100) for i in range(10)] == [None] * 10
    assert s.probe((FAST, SLOW), 2.0) is None  # SLOW not held down: asked, no probe
    waited = s.probe_timeout(FAST)
    assert not s.probing(FAST, 2.0 + waited) and s.probe((FAST,), 2.0 + waited) == FAST
    s.answered(FAST, 0.002)
    assert not s.probing(FAST, 2.0 + waited) and s.order((FAST,), 2.0 + waited) == [FAST]


def test_a_server_that_loses_large_answers_is_asked_with_a_small_buffer_for_a_while() -> None:
    s = Selection()
    assert s.payload(FAST, 0.0) == 1232 and s.payload(NEW, 0.0) == 1232
    s.needs_small(FAST, 10.0)
    assert s.payload(FAST, 11.0) == 512 and s.payload(SLOW, 11.0) == 1232
    assert s.payload(FAST, 10.0 + sel.SMALL_FOR + 1) == 1232  # tried at 1232 again later
