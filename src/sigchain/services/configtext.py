"""Reading the server's TOML config so that errors name the file and line: the reader's checks
(tables, lists, unknown settings) and numeric options; lines and syntax errors come from
`sigchain.tomltext`."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.name
import dns.tsig

from sigchain.errors import InputError
from sigchain.tomltext import Where


def read_config_text(path: str) -> str:
    """A config file's text; InputError (exit 2) naming the file when it cannot be read."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise InputError("no such config file", file=path) from None
    except OSError as exc:
        raise InputError(f"cannot read the config file: {exc.strerror}", file=path) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text ({exc.reason})", file=path) from None


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

    def numbers(self, data: Mapping[str, Any], name: str, options: Iterable[Option]) -> dict[str, Any]:
        """The settings of table [name] that are given, by their fields (the rest keep their
        defaults); a wrong or unknown one is an error naming its line."""
        if name not in data:
            return {}
        header = rf"\[\s*{re.escape(name)}\s*\]"
        table = self.table(data[name], f"[{name}]", self.where.find(header, None))
        options = list(options)
        self.unknown(table, [o.name for o in options], f"[{name}]", header)
        out: dict[str, Any] = {}
        for option in options:
            if option.name in table:
                value = option.read(table[option.name])
                if value is None:
                    raise self.fail(option.error(name), self.where.find(header, option.name))
                out[option.field] = value
        return out

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

    def error(self, table: str = "options") -> str:
        must = self.must or f"an integer in {self.low}..{self.high}"
        return f"{table}.{self.name} must be {must}"


def key_ref(r: Reader, text: str, what: str, line: int | None,
            keys: Mapping[dns.name.Name, dns.tsig.Key]) -> dns.name.Name:
    """The name of a TSIG key the config defines, named by `text` (else file:line: problem)."""
    try:
        name = dns.name.from_text(text)
    except dns.exception.DNSException as exc:
        raise r.fail(f"{what}: bad key name: {exc}", line) from None
    if name not in keys:
        raise r.fail(f"{what}: no TSIG key {text!r} is defined", line)
    return name
