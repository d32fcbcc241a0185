"""Signatures verified at a zone's last load, so a reload checks only the new ones (pure).

A signature's digest covers the key that verified it, the signature and the data it signs
(the RRSIG's fields with its validity window, then the RRset in canonical form): the same
digest means the same key would verify the same signature over the same data again, so its
crypto can be skipped. Everything else is checked as before — the RRSIG's fields and its
validity window against `now` are checked when the signature is planned, before any crypto,
so an unchanged RRSIG that has expired since the last load is still refused, and data
changed under an old RRSIG no longer has the digest of a verified signature."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sigchain.core.verify.verifier import Checker, Job

SIZE = 16  # bytes per digest: a reload of 1M names keeps ~40 MB of them


def digest(key: bytes, signature: bytes, data: bytes) -> bytes:
    h = hashlib.blake2b(struct.pack("!HH", len(key), len(signature)), digest_size=SIZE)
    h.update(key)
    h.update(signature)
    h.update(data)
    return h.digest()


def known_set(packed: bytes) -> frozenset[bytes]:
    """The digests of `packed` (as `KnownChecker.packed` gives them) as a set."""
    return frozenset(packed[i : i + SIZE] for i in range(0, len(packed), SIZE))


class KnownChecker:
    """A `Checker` that hands `inner` only the signatures whose digest is not in `known`;
    with `learn`, it collects the digest of every signature that verifies (the next load's
    `known`: a one-off verify has no next load, and the digests were a quarter of the CPU
    of its checks outside the crypto)."""

    def __init__(self, inner: Checker, known: Collection[bytes] = frozenset(), learn: bool = True) -> None:
        self.inner, self.known, self.learn = inner, known, learn
        self.learned: list[bytes] = []
        self.skipped = 0  # signatures whose crypto was skipped
        self.checked = 0  # signatures handed to `inner`

    def __call__(self, dnskeys: Sequence[bytes], jobs: Sequence[Job]) -> Callable[[], list[int]]:
        known = self.known
        hits = [-1] * len(jobs)
        found: list[bytes | None] = [None] * len(jobs)
        rest: list[Job] = []
        where: list[int] = []
        for n, job in enumerate(jobs):
            _alg, candidates, signature, data = job
            if known:
                for i in candidates:
                    d = digest(dnskeys[i], signature, data)
                    if d in known:
                        hits[n], found[n] = i, d
                        break
            if hits[n] < 0:
                rest.append(job)
                where.append(n)
        self.skipped += len(jobs) - len(rest)
        self.checked += len(rest)
        pending = self.inner(dnskeys, rest) if rest else None

        def results() -> list[int]:
            if pending is not None:
                for n, hit in zip(where, pending(), strict=True):
                    hits[n] = hit
            if not self.learn:
                return hits
            learned = self.learned
            for n, hit in enumerate(hits):
                if hit >= 0:
                    d = found[n]
                    learned.append(d if d is not None else digest(dnskeys[hit], jobs[n][2], jobs[n][3]))
            return hits

        return results

    @property
    def packed(self) -> bytes:
        return b"".join(self.learned)
