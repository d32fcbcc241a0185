"""Policy durations (pure): seconds, unit-tagged parts (`90d`, `1d12h`) as BIND's TTL syntax,
or ISO 8601 (`P90D`, `PT1H`, `P1Y2M`) as BIND's `dnssec-policy` accepts them."""

from __future__ import annotations

import re

from sigchain.core.dnssec import timefmt
from sigchain.errors import InputError

# BIND's isc_duration: a year is 365 days and a month 30 days (lib/isccfg/duration.c).
_ISO = re.compile(
    r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$",
    re.IGNORECASE,
)
_ISO_UNITS = (31536000, 2592000, 604800, 86400, 3600, 60, 1)


def parse(value: object) -> int:
    """A duration in seconds from a TOML value: an integer, `90d`/`1d12h`, or ISO 8601."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InputError(f"expected a duration such as \"90d\" or \"P90D\", not {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise InputError(f"negative duration {value}")
        return value
    text = value.strip()
    if text[:1] in ("P", "p"):
        match = _ISO.match(text)
        if not match or text.upper() in ("P", "PT") or text.upper().endswith("T"):
            raise InputError(f"bad ISO 8601 duration {value!r} (e.g. P90D, PT1H, P1Y)")
        return sum(int(n) * unit for n, unit in zip(match.groups(), _ISO_UNITS, strict=True)
                   if n is not None)
    return timefmt.parse_duration(text)


def render(seconds: int) -> str:
    """Seconds as compact units (`10d1h5m`), the form `parse` reads back."""
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
