"""The resolver's resolution thread on its own: nothing handed over is left without an outcome
when it stops, whether running, not yet begun, or handed over after the stop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time

import pytest

from sigchain.services.resolverthread import CLIENTS, ResolutionThread, unanswered


def test_every_question_handed_over_gets_an_outcome_when_the_thread_stops() -> None:
    thread = ResolutionThread(running=2, queued=100)
    loop = thread.loop()
    done: list[str] = []
    lock = threading.Lock()

    def record(what: str) -> None:
        with lock:
            done.append(what)

    def hand(i: int) -> None:
        async def work() -> None:
            await thread.shared(i, lambda: asyncio.sleep(30))
            record(f"{i} finished")

        if not thread.start(i, work, lambda: record(f"{i} abandoned")):
            record(f"{i} refused")

    began = threading.Event()
    loop.call_soon_threadsafe(lambda: [hand(i) for i in range(3)])  # these begin to run
    loop.call_soon_threadsafe(began.set)
    assert began.wait(5)
    for i in range(3, 8):  # these are created in the same turn as the stop: never begun
        loop.call_soon_threadsafe(hand, i)
    loop.call_soon_threadsafe(lambda: (loop.stop(), loop.call_soon(hand, 8)))  # 8: after it
    thread.close()
    outcome = dict(d.split() for d in done)
    assert len(done) == 9 and sorted(outcome, key=int) == [str(i) for i in range(9)], done
    assert {outcome[str(i)] for i in range(8)} == {"abandoned"}  # cancelled, begun or not
    assert outcome["8"] == "refused"
    assert loop.is_closed()
    assert thread.loop() is not loop and not thread.loop().is_closed()  # started anew on use
    thread.close()


def test_a_crowd_asking_one_question_leaves_room_for_other_questions() -> None:
    """The bound counts distinct questions (as Unbound's mesh states), not clients: many
    clients asking one slow name do not crowd out the others; all clients have a bound too."""
    thread = ResolutionThread(running=2, queued=3)

    async def hand(questions: list[str]) -> list[bool]:
        return [thread.start(q, lambda: asyncio.sleep(30), lambda: None) for q in questions]

    def started(*questions: str) -> list[bool]:
        return asyncio.run_coroutine_threadsafe(hand(list(questions)), thread.loop()).result(5)

    try:
        assert started(*["popular"] * 2 * CLIENTS) == [True] * 2 * CLIENTS
        assert started("a", "b", "c") == [True, True, False]  # three distinct questions at most
        assert thread.waiting == (3, 2 * CLIENTS + 2)
        room = 3 * CLIENTS - thread.waiting[1]
        assert started(*["popular"] * (room + 1)) == [True] * room + [False]  # all clients
        assert started("a") == [False]
    finally:
        thread.close()
    assert thread.waiting == (0, 0)


def test_a_client_answer_left_unanswered_is_completed_once_and_quietly(
        caplog: pytest.LogCaptureFixture) -> None:
    """As a question is abandoned (the thread stopping) its client's answer becomes None,
    unless it was answered or the client gave up (a TCP connection gone): never completed
    twice, and no 'unexpected state' logged by concurrent.futures at each stop."""
    pending, running, answered, gone = (concurrent.futures.Future[bytes | None]() for _ in range(4))
    running.set_running_or_notify_cancel()
    answered.set_running_or_notify_cancel()
    answered.set_result(b"reply")
    gone.cancel()
    with caplog.at_level(logging.DEBUG):
        for f in (pending, running, answered, gone):
            unanswered(f)
            unanswered(f)
    assert pending.result(0) is None and running.result(0) is None
    assert answered.result(0) == b"reply" and gone.cancelled()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
@pytest.mark.parametrize("where", ["a callback", "a question's task"])
def test_a_thread_that_died_leaves_no_client_waiting_nor_questions_counted(where: str) -> None:
    """Should the thread end abnormally (an exception out of its loop: SystemExit, a bug)
    with questions on it, each of their clients is told none will come (`abandoned`: as a
    drop, not left waiting: over TCP the connection then closes), and the thread started
    anew on the next use does not count them: 1024 of them would have every later question
    dropped."""
    thread = ResolutionThread(running=2, queued=1)
    abandoned: list[str] = []

    async def hand(question: str, work=lambda: asyncio.sleep(30)) -> bool:  # type: ignore[no-untyped-def]
        return thread.start(question, work, lambda: abandoned.append(question))

    async def die() -> None:
        raise SystemExit  # out of run_forever: the thread ends

    loop = thread.loop()
    assert asyncio.run_coroutine_threadsafe(hand("a"), loop).result(5)
    assert thread.waiting == (1, 1)
    dead = thread._started[1]  # type: ignore[index]
    if where == "a callback":
        loop.call_soon_threadsafe(lambda: (_ for _ in ()).throw(SystemExit))
    else:
        thread.queued = 2
        loop.call_soon_threadsafe(lambda: loop.create_task(hand("b", die)))
    dead.join(5)
    assert not dead.is_alive() and loop.is_closed()
    assert sorted(abandoned) == (["a"] if where == "a callback" else ["a", "b"])
    thread.queued = 1
    try:
        assert asyncio.run_coroutine_threadsafe(hand("c"), thread.loop()).result(5)
        assert thread.waiting == (1, 1)
    finally:
        thread.close()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_what_is_handed_over_as_the_thread_dies_is_run_or_refused() -> None:
    """Questions handed over while the thread ends abnormally (a client thread does not wait
    for it): each hand-over is either run (by the ending thread, which refuses to start it, or
    by the one started anew) or refused on the spot, so that its client is answered or told
    none will come; none is lost in the ending loop's queue as it is closed."""
    thread = ResolutionThread(running=2, queued=10)
    ran: set[int] = set()
    accepted: list[int] = []
    first = thread.loop()
    dying = thread._started[1]  # type: ignore[index]
    first.call_soon_threadsafe(time.sleep, 0.05)  # the hand-overs below start meanwhile
    first.call_soon_threadsafe(lambda: (_ for _ in ()).throw(SystemExit))
    i = 0
    deadline = time.monotonic() + 10
    while (dying.is_alive() or i < 20000) and time.monotonic() < deadline:
        if thread.hand(ran.add, i):
            accepted.append(i)
        i += 1
    assert not dying.is_alive() and first.is_closed()
    try:
        asyncio.run_coroutine_threadsafe(asyncio.sleep(0), thread.loop()).result(5)  # the rest ran
        assert accepted and set(accepted) == ran
    finally:
        thread.close()
