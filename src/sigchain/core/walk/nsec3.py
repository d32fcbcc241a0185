"""Collect a zone's NSEC3 chain from the records that come back for made-up names, choosing
each name so its hash falls where the chain is still unknown, until the chain is closed; then
recover names offline by hashing wordlist candidates under the zone (pure: the random source
is a parameter)."""

from __future__ import annotations

import bisect
import random
from collections.abc import Iterable
from dataclasses import dataclass, field

import dns.message
import dns.name
from dns.rdatatype import RdataType

from sigchain.core.walk.nsec import bitmap_types
from sigchain.core.zone.nsec3hash import nsec3_digest, nsec3_digest_wire
from sigchain.core.zone.records import b32hex, b32hex_decode

LABEL_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"


@dataclass(frozen=True)
class Params:
    algorithm: int
    iterations: int
    salt: bytes


@dataclass
class Nsec3Chain:
    """The NSEC3 records seen so far: hash → (next hash, types)."""

    apex: dns.name.Name
    params: Params | None = None
    records: dict[bytes, tuple[bytes, list[str]]] = field(default_factory=dict)
    problem: str = ""

    def add_reply(self, reply: dns.message.Message) -> int:
        """Take the NSEC3 records of the zone from a reply; how many were new."""
        new = 0
        for rrset in (*reply.answer, *reply.authority):
            if rrset.rdtype != RdataType.NSEC3 or rrset.name.parent() != self.apex:
                continue
            rd = rrset[0]
            params = Params(rd.algorithm, rd.iterations, rd.salt)  # type: ignore[attr-defined]
            if self.params is None:
                self.params = params
            elif params != self.params:
                self.problem = "NSEC3 records with different parameters"
                continue
            try:
                owner = b32hex_decode(rrset.name.labels[0])
            except ValueError:
                continue
            if owner not in self.records:
                new += 1
            types = bitmap_types(rd)
            self.records[owner] = (rd.next, types)  # type: ignore[attr-defined]
        return new

    def unknown(self) -> list[tuple[bytes, bytes]]:
        """The stretches of the hash ring not yet covered: [from, to) where `from` is a next
        hash that is no known owner and `to` the first known owner after it (wrapping)."""
        owners = sorted(self.records)
        gaps = []
        for nxt, _ in self.records.values():
            if nxt in self.records:
                continue
            i = bisect.bisect_right(owners, nxt)
            gaps.append((nxt, owners[i % len(owners)]))
        return gaps

    @property
    def closed(self) -> bool:
        return bool(self.records) and not self.unknown()

    def hash(self, name: dns.name.Name) -> bytes:
        assert self.params is not None
        return nsec3_digest(name, self.params.salt, self.params.iterations)

    def pick(self, rng: random.Random, tries: int = 200_000) -> dns.name.Name | None:
        """A made-up name right under the apex whose hash falls in an unknown stretch (so its
        denial brings a record not seen yet); None if `tries` names all missed."""
        gaps = self.unknown()
        for _ in range(tries):
            label = "".join(rng.choice(LABEL_CHARS) for _ in range(12))
            name = dns.name.Name((label.encode(), *self.apex.labels))
            h = self.hash(name)
            if any(_inside(h, a, b) for a, b in gaps):
                return name
        return None

    def owner_name(self, h: bytes) -> str:
        return f"{b32hex(h)}.{self.apex}"


def _inside(h: bytes, start: bytes, end: bytes) -> bool:
    """h in [start, end) on the ring of hashes."""
    if start < end:
        return start <= h < end
    return h >= start or h < end


def read_words(lines: Iterable[str]) -> list[dns.name.Name]:
    """Wordlist lines as relative names (a line may hold several labels, `a.b`); blank lines
    and `#` comments skipped, duplicates dropped. Bad lines are skipped."""
    words: dict[dns.name.Name, None] = {}
    for line in lines:
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            words[dns.name.from_text(text.rstrip("."), origin=None)] = None
        except (dns.name.EmptyLabel, dns.name.LabelTooLong, dns.name.NameTooLong,
                dns.name.BadEscape):
            continue
    return list(words)


def recover(chain: Nsec3Chain, words: Iterable[dns.name.Name],
            max_hashes: int = 50_000_000) -> dict[bytes, dns.name.Name]:
    """Hash → name for every hash of the chain a candidate matches. Candidates are each word
    under the apex, then under every name recovered (names found are empty non-terminals
    too, so `a.b.c` comes from `c`, then `b.c`), and `*` for wildcards. Hashes are taken
    over wire bytes put together directly (the hot loop of an audit with a big wordlist)."""
    assert chain.params is not None
    salt, iterations = chain.params.salt, chain.params.iterations
    star = dns.name.from_text("*", origin=None)
    prefixes = [(w, _wire(w)) for w in dict.fromkeys([*words, star])]
    found: dict[bytes, dns.name.Name] = {}
    apex_hash = chain.hash(chain.apex)
    if apex_hash in chain.records:
        found[apex_hash] = chain.apex
    parents = [chain.apex]
    hashed = 0
    records = chain.records
    while parents and hashed < max_hashes:
        parent = parents.pop()
        tail = parent.canonicalize().to_wire()
        assert tail is not None
        for word, prefix in prefixes:
            if len(prefix) + len(tail) > 255:
                continue
            hashed += 1
            h = nsec3_digest_wire(prefix + tail, salt, iterations)
            if h in records and h not in found:
                name = word.concatenate(parent)
                found[h] = name
                parents.append(name)
    return found


def _wire(relative: dns.name.Name) -> bytes:
    """A relative name's labels in canonical (lower-case) wire form, without the root."""
    return b"".join(bytes([len(label)]) + label.lower() for label in relative.labels)
