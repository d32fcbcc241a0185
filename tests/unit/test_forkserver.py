"""The signing and verifying workers' process context: Ctrl-C ignored from a worker's birth,
and a pool stopped after a failure without waiting on its task thread."""

from __future__ import annotations

import subprocess
import sys
import time

from tests.conftest import ROOT

# Run in a fresh interpreter: the forkserver is one per process, and this one's may have
# been started already by other tests.
_PROBE = """
import signal, sys
sys.path.insert(0, sys.argv[1])
from sigchain.edge import forkserver

def probe(q):
    q.put(signal.getsignal(signal.SIGINT) == signal.SIG_IGN)

if __name__ == "__main__":
    ctx = forkserver.context()
    q = ctx.Queue()
    p = ctx.Process(target=probe, args=(q,))
    p.start()
    print(q.get(timeout=60), signal.getsignal(signal.SIGINT) is signal.default_int_handler)
    p.join()
"""

_STUCK = """
import sys, time
sys.path.insert(0, sys.argv[1])
from sigchain.edge import forkserver

if __name__ == "__main__":
    pool = forkserver.context().Pool(1)
    busy = pool.apply_async(time.sleep, (60,))
    big = [pool.apply_async(len, (b"x" * (8 << 20),)) for _ in range(4)]  # fills the pipe
    time.sleep(1)  # the task thread is now stuck writing into it; the worker sleeps
    workers = list(pool._pool)
    started = time.monotonic()
    forkserver.stop(pool, failed=True)
    time.sleep(0.5)  # the pool's upkeep would have started another worker by now
    alive = sum(w.is_alive() for w in pool._pool)
    print(f"{time.monotonic() - started:.1f}", [w.exitcode for w in workers], alive)
"""


def test_workers_ignore_ctrl_c_from_birth_and_the_parent_does_not(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Before their initializer runs: a worker killed by Ctrl-C while starting left
    multiprocessing's Pool waiting forever on its task thread."""
    script = tmp_path / "probe.py"
    script.write_text(_PROBE)
    out = subprocess.run([sys.executable, script, ROOT / "src"], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["True", "True"], out.stderr


def test_a_pool_stopped_after_a_failure_ends_at_once_with_its_workers(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """stop(failed=True) with the task thread stuck writing and the worker busy: it returns
    at once, the worker is killed (not terminated) and the pool's upkeep starts no other.
    (It does not recreate Pool.terminate()'s hang, a race this setup does not win.)"""
    script = tmp_path / "stuck.py"
    script.write_text(_STUCK)
    started = time.monotonic()
    out = subprocess.run([sys.executable, script, ROOT / "src"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    seconds, exits, alive = out.stdout.split()
    assert float(seconds) < 6 and exits == "[-9]" and alive == "0", out.stdout
    assert time.monotonic() - started < 60  # and the process exits: no thread or worker waited on
