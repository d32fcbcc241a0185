"""Reading a TOML config file so that errors name the file and line: where a setting is,
the reader's checks (tables, lists, unknown settings), numeric options, syntax errors."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
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


class Reader:
    def __init__(self, path: str, text: str):
        self.path = path
        self.base = os.path.dirname(os.path.abspath(path))
        self.where = Where(text)

    def fail(self, message: str, line: int | None = None) -> InputError:
        return InputError(message, file=self.path, line=line)

    def file_path(self, value: str) -> str:
        return value if os.path.isabs(value) else os.path.join(self.base, value)

    def table(self, value: Any, where: str, line: int | None) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(f"{where} must be a table", line)
        return value

    def unknown(self, table: Mapping[str, Any], allowed: Iterable[str], where: str,
                header: str | None) -> None:
        extra = sorted(set(table) - set(allowed))
        if extra:
            line = self.where.find(header, extra[0])
            raise self.fail(f"unknown setting {extra[0]!r} in {where} "
                            f"(expected: {', '.join(sorted(allowed))})", line)

    def string_list(self, value: Any, where: str, line: int | None) -> list[Any]:
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list):
            raise self.fail(f"{where} must be a list", line)
        return value


@dataclass(frozen=True)
class Option:
    """A setting of [options]: its name there, the `ServeConfig` field it sets, and the
    numbers it accepts — integers in `low..high`, or (`kind` float) any number above `low`."""

    name: str
    field: str
    kind: type
    low: int
    high: int | None = None
    must: str = ""  # what the error says it must be, when not "an integer in low..high"

    def read(self, value: Any) -> int | float | None:
        """`value` as this option's type, or None when it is not accepted."""
        number = (int, float) if self.kind is float else int
        if isinstance(value, bool) or not isinstance(value, number):
            return None
        if self.kind is float:
            return None if value <= self.low else float(value)
        assert self.high is not None
        return value if self.low <= value <= self.high else None

    def error(self) -> str:
        must = self.must or f"an integer in {self.low}..{self.high}"
        return f"options.{self.name} must be {must}"


def parse_toml(text: str, path: str) -> dict[str, Any]:
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
