"""What the validator remembers across questions — NSEC3 hashes (by value) — answers only for
those very inputs."""

from __future__ import annotations

import dns.name
import pytest

from sigchain.core.zone import nsec3hash
from sigchain.core.zone.sharedname import shared

N = dns.name.from_text


def test_kept_digest_is_the_hash_of_that_name_salt_and_iterations() -> None:
    nsec3hash._DIGESTS.clear()
    names = ["a.example.", "A.Example.", "*.example.", "example.", "."]
    for salt, iterations in [(b"", 0), (b"\xab\xcd", 0), (b"", 3), (b"\xab\xcd", 3)] * 2:
        for text in names:
            name = N(text)
            want = nsec3hash.nsec3_digest(name, salt, iterations)
            assert nsec3hash.kept_digest(name, salt, iterations) == want
            assert nsec3hash.kept_digest(shared(name.labels), salt, iterations) == want
    assert nsec3hash.kept_digest(N("a.example."), b"", 0) != nsec3hash.kept_digest(N("a.example."), b"", 1)
    with pytest.raises(dns.name.NeedAbsoluteNameOrOrigin):
        nsec3hash.kept_digest(dns.name.Name((b"a",)), b"", 0)
