"""Zone signing across processes: prepare once, share the units out to a pool of workers in
large batches, write the signed text as a stream in canonical order."""

from __future__ import annotations

import collections
import contextlib
import multiprocessing
import os
from collections.abc import Callable, Iterator
from dataclasses import replace
from multiprocessing.pool import AsyncResult, Pool

from cryptography.hazmat.primitives import serialization

from sigchain.core.sign import signer
from sigchain.model.keys import KeyPair

BATCH = 2000  # units per task: large enough that pickling and scheduling stay cheap
EARLY_POOL_BYTES = 1 << 20  # zone files this big get their workers started before reading

_worker_ctx: tuple[bytes, signer.SigningContext] | None = None


def _portable(ctx: signer.SigningContext) -> tuple[signer.SigningContext, list[bytes]]:
    """Private keys do not pickle: send them as PKCS#8 DER (in memory, to our own children)."""
    ders = [
        k.private.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        for k in ctx.keys
    ]
    return replace(ctx, keys=tuple(replace(k, private=None) for k in ctx.keys)), ders


def _sign_batch(
    token: bytes, ctx: signer.SigningContext, ders: list[bytes], batch: signer.Batch
) -> tuple[str, list[int]]:
    """A worker's task. The context comes with every batch (a pool may be started before the
    zone is read, so before the context exists); its keys are loaded once per signing run."""
    global _worker_ctx
    if _worker_ctx is None or _worker_ctx[0] != token:
        keys: list[KeyPair] = [
            replace(k, private=serialization.load_der_private_key(der, None))
            for k, der in zip(ctx.keys, ders, strict=True)
        ]
        _worker_ctx = token, replace(ctx, keys=tuple(keys))
    return signer.sign_units(batch, _worker_ctx[1])


def _warm() -> None:
    """Worker start-up: importing this module imports the signer, dnspython and cryptography."""


def default_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@contextlib.contextmanager
def worker_pool(threads: int) -> Iterator[Pool | None]:
    """The signing processes, started now: a fresh interpreter importing cryptography and
    dnspython takes a second or more, which can overlap reading and preparing the zone."""
    if threads <= 1:
        yield None
        return
    # forkserver: workers start from a small clean process, not as copies of this one with
    # the whole zone in it (the garbage collector would touch, and so copy, every page).
    mp = multiprocessing.get_context("forkserver")
    with mp.Pool(threads, initializer=_warm) as pool:
        yield pool


def sign_stream(
    prep: signer.Prepared,
    threads: int,
    counts: list[int],
    progress: Callable[[int], None] | None = None,
    pool: Pool | None = None,
) -> Iterator[str]:
    """Yield the signed zone's text in canonical order; `counts` gets signatures per key.
    At most a few batches per worker are in flight, so memory stays bounded. `pool` is one
    from `worker_pool` started earlier (closed here when the stream ends); without it, one
    is started here when worth it."""
    batches = prep.batches(BATCH)

    def tally(result: tuple[str, list[int]], n: int) -> str:
        text, c = result
        for i, v in enumerate(c):
            counts[i] += v
        if progress is not None:
            progress(n)
        return text

    if threads <= 1 or prep.total <= BATCH:
        for b in batches:
            yield tally(signer.sign_units(b, prep.ctx), b.units)
        return
    if pool is None:
        with worker_pool(threads) as own:
            yield from sign_stream(prep, threads, counts, progress, own)
        return
    ctx, ders = _portable(prep.ctx)
    token = os.urandom(8)
    pending: collections.deque[tuple[int, AsyncResult]] = collections.deque()
    for b in batches:
        pending.append((b.units, pool.apply_async(_sign_batch, (token, ctx, ders, b))))
        while len(pending) > 3 * threads:
            n, res = pending.popleft()
            yield tally(res.get(), n)
    while pending:
        n, res = pending.popleft()
        yield tally(res.get(), n)
    pool.close()  # done with it: the workers exit (and free their memory) before any verifying
