"""Time and duration syntax used on the command line and in BIND key files (pure; `now` given)."""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime

from sigchain.errors import InputError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_PART = r"\d+[smhdwy]"
_DUR = re.compile(rf"^(?:\d+|(?:{_PART})+)$", re.IGNORECASE)
_REL = re.compile(rf"^now(?:([+-])(\d+|(?:{_PART})+))?$", re.IGNORECASE)


def _seconds(text: str) -> int:
    """A bare number of seconds, or unit-tagged parts added up (`1d12h`, as dns.ttl)."""
    if text.isdigit():
        return int(text)
    return sum(int(n) * _UNITS[u.lower()] for n, u in re.findall(r"(\d+)([smhdwy])", text, re.I))


def parse_duration(text: str) -> int:
    """`14d`, `3600`, `2w`, `90m`, `1d12h` → seconds."""
    t = text.strip()
    if not _DUR.match(t):
        raise InputError(f"bad duration {text!r}: use seconds, or numbers with units s, m, h, "
                         "d, w, y (e.g. 1d12h)")
    return _seconds(t)


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
        delta = _seconds(m.group(2))
        return now + delta if m.group(1) == "+" else now - delta
    if re.fullmatch(r"\d{14}", t):
        return parse_timestamp14(t)
    if re.fullmatch(r"\d{1,10}", t):
        return int(t)
    raise InputError(f"bad time {text!r}: use YYYYMMDDHHMMSS, epoch seconds or now±DURATION "
                     "(e.g. now+1d12h)")


def format_timestamp14(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y%m%d%H%M%S")


def format_utc(ts: int) -> str:
    """How every message shows a time: `2026-12-05 17:00:00 UTC`."""
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def format_ctime(ts: int) -> str:
    """As BIND prints times in key-file comments: `Sun Nov 29 02:36:06 2026`."""
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%a %b %d %H:%M:%S %Y")
