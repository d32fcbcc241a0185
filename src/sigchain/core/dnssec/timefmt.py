"""Time and duration syntax used on the command line and in BIND key files (pure; `now` given)."""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime

from sigchain.errors import InputError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_DUR = re.compile(r"^(\d+)([smhdwy]?)$", re.IGNORECASE)
_REL = re.compile(r"^now(?:([+-])(\d+)([smhdwy]?))?$", re.IGNORECASE)


def parse_duration(text: str) -> int:
    """`14d`, `3600`, `2w`, `90m` → seconds."""
    m = _DUR.match(text.strip())
    if not m:
        raise InputError(f"bad duration {text!r}: use N with an optional unit s, m, h, d, w or y")
    return int(m.group(1)) * _UNITS[(m.group(2) or "s").lower()]


def parse_timestamp14(text: str) -> int:
    """`YYYYMMDDHHMMSS` (UTC) → seconds since the epoch."""
    try:
        dt = datetime.strptime(text, "%Y%m%d%H%M%S")
    except ValueError:
        raise InputError(f"bad time {text!r}: expected YYYYMMDDHHMMSS") from None
    return calendar.timegm(dt.timetuple())


def parse_time(text: str, now: int) -> int:
    """TIME as `YYYYMMDDHHMMSS`, seconds since the epoch, or `now±N[smhdw]`."""
    t = text.strip()
    m = _REL.match(t)
    if m:
        if not m.group(1):
            return now
        delta = int(m.group(2)) * _UNITS[(m.group(3) or "s").lower()]
        return now + delta if m.group(1) == "+" else now - delta
    if re.fullmatch(r"\d{14}", t):
        return parse_timestamp14(t)
    if re.fullmatch(r"\d{1,10}", t):
        return int(t)
    raise InputError(f"bad time {text!r}: use YYYYMMDDHHMMSS, epoch seconds or now±N[smhdw]")


def format_timestamp14(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y%m%d%H%M%S")


def format_ctime(ts: int) -> str:
    """As BIND prints times in key-file comments: `Sun Nov 29 02:36:06 2026`."""
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%a %b %d %H:%M:%S %Y")
