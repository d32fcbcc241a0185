"""The garbage collector during loads: the zone versions being served stay out of its way
while the next ones are read (memory), and it is held off while an index is built (time)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def served_versions_frozen() -> Iterator[None]:
    """Move every object alive now (the zones being served, shared copy-on-write with the
    forked workers answering from them) out of the collector's generations while the next
    versions are read: each full collection the reload's allocations bring would otherwise
    write to every one of them and make the main process copy the old zones' pages (measured:
    ~20 MiB of PSS at the peak of a 20k-name reload). Unfrozen after, so the old version can
    be freed once it is no longer served."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@contextmanager
def collector_held_off() -> Iterator[None]:
    """The cyclic garbage collector held off while an index is built: its millions of new
    objects (none garbage) would trigger collections walking them over and over (at 100k
    names the build took about twice as long)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
