"""A big master file cut at record boundaries so that processes can read its parts at once
(`plan` the cuts, `read_part` one part). Anything a part cannot read exactly as the whole
file would be read gives None, and the caller reads the file whole instead."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import BinaryIO, NamedTuple, Protocol

import dns.exception
import dns.name

from sigchain.edge.fastparse import NeedsFullReader, _Origin, _State
from sigchain.edge.signedparse import Part, parse_part
from sigchain.edge.zonetext import MAX_LINE, bytes_escaped
from sigchain.errors import InputError

SEARCH = 1 << 20  # bytes looked through after a cut's target for a record boundary
CHUNK = 1 << 20  # bytes read at a time when the file is scanned
# The characters an owner name can start with; lines starting otherwise (blank, comment,
# directive, parenthesis) do not begin a record that names its owner.
_OWNER_START = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789*_@\\-.")


class Cut(NamedTuple):
    """One part of a file: bytes [start, end), its first line's number, and the $ORIGIN and
    $TTL in force where it starts."""

    start: int
    end: int
    first: int
    origin: str
    ttl: int | None


class Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...


class _NeedsEarlier(Exception):
    """The part needs state from before it (the last TTL given, with no $TTL)."""


class _PartState(_State):
    """`_State` for a part: refuses to guess the last TTL of an earlier part."""

    __slots__ = ()

    def ttl_for(self, ttl: int | None, rdtype: int, wire: bytes) -> int:
        if ttl is None and self.default_ttl is None and self.last_ttl is None:
            raise _NeedsEarlier
        return super().ttl_for(ttl, rdtype, wire)


def _boundary(f: BinaryIO, target: int) -> int | None:
    """The start of the first line after `target` that names an owner different from the
    owner named before it (so no owner's records are cut in two), or None."""
    f.seek(target)
    buf = f.read(SEARCH)
    prev: bytes | None = None
    pos = buf.find(b"\n")
    while 0 <= pos < len(buf) - 1:
        start = pos + 1
        if buf[start] in _OWNER_START:
            tok = buf[start : start + 300].split(None, 1)[0]
            if prev is not None and tok != prev:
                return target + start
            prev = tok
        pos = buf.find(b"\n", start)
    return None


def _scan(f: BinaryIO, starts: list[int]) -> tuple[list[int], list[int]]:
    """One pass over the file, a chunk at a time: the line number at each of `starts`, and
    the offsets of the directive lines ($...)."""
    f.seek(0)
    lines, directives = [], []
    count, offset, last = 1, 0, b"\n"
    todo = list(starts)
    while chunk := f.read(CHUNK):
        while todo and todo[0] < offset + len(chunk):
            lines.append(count + chunk.count(b"\n", 0, todo.pop(0) - offset))
        data = last + chunk
        i = data.find(b"\n$")
        while i >= 0:
            directives.append(offset + i)  # data[0] is the chunk's previous byte
            i = data.find(b"\n$", i + 1)
        count += chunk.count(b"\n")
        offset += len(chunk)
        last = chunk[-1:]
    lines += [count] * len(todo)
    return lines, directives


def _directive(f: BinaryIO, at: int) -> str:
    f.seek(at)
    return bytes_escaped(f.readline(1 << 16).decode("utf-8").rstrip("\n"))


def plan(path: str, zone_origin: dns.name.Name, parts: int) -> list[Cut] | None:
    """Cut the file into `parts` parts at record boundaries; None when it cannot be cut.
    Streamed: the file is never held whole."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            starts = [0]
            for i in range(1, parts):
                b = _boundary(f, size * i // parts)
                if b is None or b <= starts[-1]:
                    return None
                starts.append(b)
            lines, at = _scan(f, starts)
            texts = [(a, _directive(f, a)) for a in at]
            if any(t.split()[0].upper() in ("$INCLUDE", "$GENERATE") for _, t in texts if t.split()):
                return None
            cuts: list[Cut] = []
            state = _State(_Origin(zone_origin))  # the directives before each part's start
            d = 0
            for start, end, line in zip(starts, [*starts[1:], size], lines, strict=True):
                while d < len(texts) and texts[d][0] < start:
                    state.directive(texts[d][1])
                    d += 1
                cuts.append(Cut(start, end, line, state.origin.text, state.default_ttl))
    except (OSError, ValueError, IndexError, dns.exception.DNSException, NeedsFullReader):
        return None  # the whole-file reader says what is wrong
    return cuts


def _part_lines(f: BinaryIO, end: int, hasher: Hasher | None = None) -> Iterator[str]:
    """The lines of a part without their newline, streamed (and their bytes fed to `hasher`);
    over-long lines or bad UTF-8 raise (the whole-file reader then says what is wrong)."""
    pos = f.tell()
    while pos < end:
        raw = f.readline(MAX_LINE + 1)
        if not raw:
            return
        pos += len(raw)
        if hasher is not None:
            hasher.update(raw)
        if raw[-1:] == b"\n":
            yield bytes_escaped(raw[:-1].decode("utf-8"))
        elif len(raw) > MAX_LINE:
            raise _NeedsEarlier  # (a long comment the whole-file reader skips, or an error)
        else:
            yield bytes_escaped(raw.decode("utf-8"))


def read_part(path: str, zone_origin: str, cut: Cut, refuse_cname_clash: bool,
              hasher: Hasher | None = None) -> Part | None:
    """Read one part (in a worker process); None when it must be read with the whole file
    (any error: the whole-file reader reports it with the right line). The bytes read go to
    `hasher` (a part read twice can be told to be the same both times)."""
    try:
        state = _PartState(_Origin(dns.name.from_text(cut.origin)))
        state.default_ttl = cut.ttl
        with open(path, "rb") as f:
            f.seek(cut.start)
            return parse_part(_part_lines(f, cut.end, hasher), path, dns.name.from_text(zone_origin),
                              refuse_cname_clash, state, cut.first)
    except (OSError, UnicodeDecodeError, InputError, NeedsFullReader, _NeedsEarlier,
            dns.exception.DNSException):
        return None
