"""Master-file text as lines: streamed from disk (never read whole), each line bounded in
length, and quoted briefly in error messages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TextIO

import dns.exception

from sigchain.errors import InputError

MAX_LINE = 1 << 20  # characters in one line or record: four times any record's text form
MAX_RDATA = 65535  # bytes of one record's data (RFC 1035 §3.2.1: RDLENGTH is 16 bits)


def excerpt(text: str, limit: int = 60) -> str:
    """A short quote of a bad line or token for an error message (blanks collapsed)."""
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= limit else flat[: limit - 3] + "...")


def detail(exc: object, limit: int = 200) -> str:
    """What a parser's exception says, cut short (it may quote a huge token)."""
    text = str(exc)
    if text == dns.exception.SyntaxError.__doc__ or not text:
        text = "malformed record"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_rdata_size(wire: bytes) -> None:
    """ValueError for record data longer than a record can carry."""
    if len(wire) > MAX_RDATA:
        raise ValueError(f"record data is {len(wire)} bytes; a record holds at most {MAX_RDATA}")


def open_text(path: str, what: str = "zone file") -> TextIO:
    """The file opened for reading as UTF-8 text, lines ending at '\\n' only (as
    `str.split('\\n')`); a missing or unreadable file is an InputError naming it."""
    try:
        return open(path, encoding="utf-8", newline="\n")
    except FileNotFoundError:
        raise InputError("no such file", file=path) from None
    except IsADirectoryError:
        raise InputError(f"not a {what} but a directory", file=path) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", file=path) from None


def unquoted(line: str) -> Iterator[tuple[int, str]]:
    """(index, character) for each character outside double quotes (escapes honoured)."""
    quoted = escaped = False
    for i, ch in enumerate(line):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif not quoted:
            yield i, ch


def _comment_at(line: str) -> int:
    """Where a comment starts in `line` (outside quotes), or -1."""
    return next((i for i, ch in unquoted(line) if ch == ";"), -1)


# A non-ASCII character, with the backslash escaping it if any (after escaped backslashes)
_NON_ASCII = re.compile(r"(?<!\\)((?:\\\\)*)\\?([^\x00-\x7f])")


def bytes_escaped(line: str) -> str:
    """`line` with each non-ASCII character (escaped or not) as \\DDD escapes of its UTF-8
    bytes. A master file's names are bytes (RFC 1035 §5.1): dnspython reads a non-ASCII name
    as IDNA and turns it into Punycode (bücher → xn--bcher-kva), a different name; BIND
    keeps the bytes (b\\195\\188cher), and so do we. Text in TXT and the like gets the same
    bytes either way."""
    if line.isascii():
        return line
    if line[:8].upper() == "$INCLUDE":  # its file name is a path, not DNS text: kept as it is
        rest = line[8:].lstrip()
        if rest.startswith('"'):  # a quoted path (it may hold blanks)
            end = rest.find('"', 1)
            path_end = len(rest) if end < 0 else end + 1
        else:
            path_end = len(rest.split(None, 1)[0]) if rest.strip() else 0
        cut = len(line) - len(rest) + path_end
        return line[:cut] + bytes_escaped(line[cut:])
    return _NON_ASCII.sub(lambda m: m.group(1) + "".join(f"\\{b:03d}" for b in m.group(2).encode()), line)


def physical_lines(f: TextIO, path: str, what: str = "zone file") -> Iterator[str]:
    """The file's lines without their '\\n', read as a stream, non-ASCII characters as escaped
    bytes (`bytes_escaped`). A line longer than MAX_LINE is an error, unless the excess is a
    comment: that is skipped without being held."""
    lineno = 0
    try:
        while True:
            line = f.readline(MAX_LINE)
            if not line:
                return
            lineno += 1
            if line[-1] == "\n":
                yield bytes_escaped(line[:-1])
                continue
            if len(line) < MAX_LINE:  # the last line, without a newline
                yield bytes_escaped(line)
                return
            cut = _comment_at(line)
            if cut < 0:
                raise InputError(f"line longer than {MAX_LINE} characters", file=path, line=lineno)
            head, tail = line[:cut], line
            while tail and tail[-1] != "\n":  # drain the comment, a chunk at a time
                tail = f.readline(MAX_LINE)
            yield bytes_escaped(head)
    except UnicodeDecodeError as exc:
        raise InputError(f"not a text {what} ({exc.reason})", file=path) from None


class LineStream:
    """`physical_lines` as the file dnspython's tokenizer reads (a character at a time), so
    its reader gets the same bounded lines, with over-long comments already dropped."""

    def __init__(self, lines: Iterator[str]) -> None:
        self.lines = lines
        self.buf = ""
        self.pos = 0

    def close(self) -> None:
        close = getattr(self.lines, "close", None)  # a generator: closes the file it reads
        if close is not None:
            close()

    def read(self, n: int = 1) -> str:
        if self.pos >= len(self.buf):
            line = next(self.lines, None)
            if line is None:
                return ""
            self.buf, self.pos = line + "\n", 0
        out = self.buf[self.pos : self.pos + n]
        self.pos += len(out)
        return out


def line_at(path: str, lineno: int) -> str:
    """Line `lineno` of a file (for quoting it in an error), streamed; '' if unreadable."""
    try:
        with open_text(path) as f:
            for n, line in enumerate(physical_lines(f, path), 1):
                if n == lineno:
                    return line
    except InputError:
        pass
    return ""
