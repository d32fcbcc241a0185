"""TOML text whose errors name the file and line: the document with its syntax errors placed,
and the line of a setting by its table and key (tomllib gives lines for syntax errors only).
Pure: text in; the server config and the key policy both read through it."""

from __future__ import annotations

import re
import tomllib
from typing import Any

from sigchain.errors import InputError


class Where:
    """Finds the line of a setting in the TOML text, for messages (best effort: tomllib gives
    lines for syntax errors only)."""

    def __init__(self, text: str):
        self.lines = text.splitlines()

    def _header(self, pattern: str, nth: int = 0) -> int | None:
        rx = re.compile(pattern)
        seen = 0
        for n, line in enumerate(self.lines):
            if rx.match(line.strip()):
                if seen == nth:
                    return n
                seen += 1
        return None

    def find(self, table: str | None, key: str | None, nth: int = 0) -> int | None:
        """Line (1-based) of `key` inside `[table]` (a regex for the header), or of the header."""
        start = 0
        if table is not None:
            h = self._header(table, nth)
            if h is None:
                return None
            start = h + 1
            if key is None:
                return h + 1
        for n in range(start, len(self.lines)):
            s = self.lines[n].strip()
            if s.startswith("[") and (table is not None or n > start):
                break
            if key is not None and re.match(rf"""["']?{re.escape(key)}["']?\s*=""", s):
                return n + 1
        return None


def loads(text: str, path: str) -> dict[str, Any]:
    """The TOML document; its syntax errors as InputError with the line."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = re.search(r"\s*\(at line (\d+), column (\d+)\)$", msg)
        if m:
            raise InputError(f"bad TOML: {msg[:m.start()]} (column {m.group(2)})", file=path,
                             line=int(m.group(1))) from None
        if msg.endswith("(at end of document)"):
            raise InputError(f"bad TOML: {msg[:-len('(at end of document)')].strip()} at the end "
                             "of the file", file=path,
                             line=max(1, len(text.splitlines()))) from None
        raise InputError(f"bad TOML: {msg}", file=path) from None
