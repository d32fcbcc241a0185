"""A clock-shift shim for test processes: an LD_PRELOAD library (built with gcc) that moves the
wall clock of any process (BIND, Python) by SIGCHAIN_CLOCK_SHIFT seconds."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from tests.conftest import need

# libfaketime deadlocks in BIND 9.18's jemalloc (libfaketime issue #130), so dnssec-verify runs
# with this shim preloaded instead: the wall clock moved by SIGCHAIN_CLOCK_SHIFT seconds.
CLOCK_SHIFT_C = r"""
#define _GNU_SOURCE
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
static long shift(void) { const char *s = getenv("SIGCHAIN_CLOCK_SHIFT"); return s ? atol(s) : 0; }
int clock_gettime(clockid_t c, struct timespec *ts) {
    int r = (int)syscall(SYS_clock_gettime, c, ts);
    if (r == 0 && (c == CLOCK_REALTIME || c == CLOCK_REALTIME_COARSE)) ts->tv_sec += shift();
    return r;
}
int gettimeofday(struct timeval *tv, void *tz) {
    struct timespec ts;
    int r = clock_gettime(CLOCK_REALTIME, &ts);
    if (r == 0 && tv) { tv->tv_sec = ts.tv_sec; tv->tv_usec = ts.tv_nsec / 1000; }
    (void)tz;
    return r;
}
time_t time(time_t *t) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (t) *t = ts.tv_sec;
    return ts.tv_sec;
}
"""


def build(tmp: Path) -> str:
    """Compile the shim into `tmp`; its path, for LD_PRELOAD."""
    (tmp / "clockshift.c").write_text(CLOCK_SHIFT_C)
    lib = tmp / "clockshift.so"
    subprocess.run([need("gcc"), "-shared", "-fPIC", "-O2", "-o", str(lib),
                    str(tmp / "clockshift.c")], check=True, capture_output=True)
    return str(lib)


def environment(shim: str, at: int) -> dict[str, str]:
    """This process's environment with the shim preloaded and the clock moved to `at`."""
    return {**os.environ, "LD_PRELOAD": shim, "SIGCHAIN_CLOCK_SHIFT": str(at - int(time.time()))}
