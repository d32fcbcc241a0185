"""A big master file cut at record boundaries so that processes can read its parts at once
(`plan` the cuts, `read_part` one part). Anything a part cannot read exactly as the whole
file would be read gives None, and the caller reads the file whole instead."""

from __future__ import annotations

import io
import mmap
from typing import NamedTuple

import dns.exception
import dns.name

from sigchain.edge.fastparse import NeedsFullReader, _Origin, _State
from sigchain.edge.signedparse import Part, parse_part
from sigchain.edge.zonetext import physical_lines
from sigchain.errors import InputError

SEARCH = 1 << 20  # bytes looked through after a cut's target for a record boundary
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


class _NeedsEarlier(Exception):
    """The part needs state from before it (the last TTL given, with no $TTL)."""


class _PartState(_State):
    """`_State` for a part: refuses to guess the last TTL of an earlier part."""

    __slots__ = ()

    def ttl_for(self, ttl: int | None, rdtype: int, wire: bytes) -> int:
        if ttl is None and self.default_ttl is None and self.last_ttl is None:
            raise _NeedsEarlier
        return super().ttl_for(ttl, rdtype, wire)


def _boundary(mm: mmap.mmap, target: int) -> int | None:
    """The start of the first line after `target` that names an owner different from the
    owner named before it (so no owner's records are cut in two), or None."""
    limit = min(len(mm), target + SEARCH)
    prev: bytes | None = None
    pos = mm.find(b"\n", target, limit)
    while 0 <= pos < limit - 1:
        start = pos + 1
        if mm[start] in _OWNER_START:
            tok = mm[start : start + 300].split(None, 1)[0]
            if prev is not None and tok != prev:
                return start
            prev = tok
        pos = mm.find(b"\n", start, limit)
    return None


def _directives(mm: mmap.mmap) -> list[tuple[int, str]] | None:
    """(offset, line) of each directive line; None when one needs the full reader."""
    out = []
    pos = 0 if mm[:1] == b"$" else mm.find(b"\n$")
    while pos >= 0:
        start = pos if pos == 0 and mm[:1] == b"$" else pos + 1
        end = mm.find(b"\n", start)
        line = mm[start : end if end >= 0 else len(mm)].decode("utf-8", "replace")
        if line.split()[0].upper() in ("$INCLUDE", "$GENERATE"):
            return None
        out.append((start, line))
        pos = mm.find(b"\n$", start)
    return out


def plan(path: str, zone_origin: dns.name.Name, parts: int) -> list[Cut] | None:
    """Cut the file into `parts` parts at record boundaries; None when it cannot be cut."""
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            directives = _directives(mm)
            if directives is None:
                return None
            starts = [0]
            for i in range(1, parts):
                b = _boundary(mm, len(mm) * i // parts)
                if b is None or b <= starts[-1]:
                    return None
                starts.append(b)
            cuts: list[Cut] = []
            state = _State(_Origin(zone_origin))  # the directives before each part's start
            line, prev, d = 1, 0, 0
            for start, end in zip(starts, [*starts[1:], len(mm)], strict=True):
                line += mm[prev:start].count(b"\n")
                while d < len(directives) and directives[d][0] < start:
                    state.directive(directives[d][1])
                    d += 1
                cuts.append(Cut(start, end, line, state.origin.text, state.default_ttl))
                prev = start
    except (OSError, ValueError, dns.exception.DNSException, NeedsFullReader):
        return None  # the whole-file reader says what is wrong
    return cuts


def read_part(path: str, zone_origin: str, cut: Cut, refuse_cname_clash: bool) -> Part | None:
    """Read one part (in a worker process); None when it must be read with the whole file
    (any error: the whole-file reader reports it with the right line)."""
    try:
        with open(path, "rb") as f:
            f.seek(cut.start)
            text = f.read(cut.end - cut.start).decode("utf-8")
        state = _PartState(_Origin(dns.name.from_text(cut.origin)))
        state.default_ttl = cut.ttl
        lines = physical_lines(io.StringIO(text, newline="\n"), path)
        return parse_part(lines, path, dns.name.from_text(zone_origin), refuse_cname_clash,
                          state, cut.first)
    except (OSError, UnicodeDecodeError, InputError, NeedsFullReader, _NeedsEarlier,
            dns.exception.DNSException):
        return None
