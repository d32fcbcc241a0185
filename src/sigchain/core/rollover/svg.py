"""The rollover timeline as an SVG picture (pure: text out): one row per key and record
(DNSKEY, KRRSIG, ZRRSIG, DS), coloured by state over time, with a dated axis and a legend."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from xml.sax.saxutils import escape

from sigchain.core.rollover.policy import KeyPolicy
from sigchain.core.rollover.states import Key, State, next_change, states

COLOURS = {  # colour-blind safe (Okabe-Ito), hidden left pale
    State.HIDDEN: "#eeeeee",
    State.RUMOURED: "#e69f00",
    State.OMNIPRESENT: "#009e73",
    State.UNRETENTIVE: "#56b4e9",
}
RECORDS = ("dnskey", "krrsig", "zrrsig", "ds")
NAMES = {"dnskey": "DNSKEY", "krrsig": "KRRSIG", "zrrsig": "ZRRSIG", "ds": "DS"}
LEFT, RIGHT, WIDTH = 190, 20, 1200  # label column, right margin, picture width (px)
ROW, GAP, TOP = 14, 10, 70  # row height, gap between keys, plot top (px)


def _records(key: Key) -> list[str]:
    """The records a key of its role has: a ZSK signs no DNSKEY RRset, a KSK no zone data."""
    return [r for r in RECORDS if (r != "krrsig" or key.signs_dnskey)
            and (r != "zrrsig" or key.signs_zone) and (r != "ds" or key.signs_dnskey)]


def segments(key: Key, p: KeyPolicy, record: str, start: int,
             end: int) -> Iterator[tuple[int, int, State]]:
    """(from, to, state) for one record of `key` over [start, end), adjacent equal states
    merged."""
    t = start
    while t < end:
        state = getattr(states(key, p, t), record)
        nxt = t
        while nxt < end and getattr(states(key, p, nxt), record) == state:
            following = next_change(key, p, nxt)
            nxt = end if following is None else min(following, end)
        yield t, nxt, state
        t = nxt


def _date(t: int) -> str:
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%d")


def _ticks(start: int, end: int) -> list[int]:
    """First days of months between start and end: every month up to a year, every quarter
    up to five years, else every year."""
    span_months = (end - start) / (30.4 * 86400)
    step = 1 if span_months <= 13 else 3 if span_months <= 61 else 12
    d = datetime.fromtimestamp(start, tz=UTC)
    year, month = d.year, d.month
    out = []
    while True:
        month += 1
        if month > 12:
            year, month = year + 1, 1
        t = int(datetime(year, month, 1, tzinfo=UTC).timestamp())
        if t >= end:
            return out
        if (month - 1) % step == 0:
            out.append(t)


def _text(x: float, y: float, s: str, extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}"{extra}>{escape(s)}</text>'


def _legend() -> list[str]:
    out, x = ['<g class="legend">'], LEFT
    for state, colour in COLOURS.items():
        out.append(f'<rect x="{x}" y="30" width="12" height="12" fill="{colour}" '
                   f'stroke="#999999"/>')
        out.append(_text(x + 16, 40, state.value))
        x += 110
    out.append("</g>")
    return out


def _key_group(key: Key, p: KeyPolicy, start: int, end: int, y: int,
               xof: float) -> tuple[list[str], int]:
    scale = (WIDTH - LEFT - RIGHT) / (end - start)
    label = f"{key.id} ({key.role.upper()}, algorithm {key.algorithm})"
    out = [f'<g class="key" data-key="{escape(key.id)}" data-role="{key.role}">',
           _text(8, y + 11, label, ' font-weight="bold"')]
    y += ROW
    for record in _records(key):
        out.append(f'<g class="row" data-record="{record}">')
        out.append(_text(24, y + 11, NAMES[record]))
        for a, b, state in segments(key, p, record, start, end):
            x0, x1 = xof + (a - start) * scale, xof + (b - start) * scale
            out.append(f'<rect x="{x0:.2f}" y="{y + 1}" width="{max(x1 - x0, 0.5):.2f}" '
                       f'height="{ROW - 2}" fill="{COLOURS[state]}"><title>'
                       f'{escape(f"{key.id} {NAMES[record]} {state.value} {_date(a)} to {_date(b)}")}'
                       f"</title></rect>")
        out.append("</g>")
        y += ROW
    out.append("</g>")
    return out, y + GAP


def timeline(keys: Iterable[Key], p: KeyPolicy, start: int, end: int,
             failure_at: int | None = None, title: str = "") -> str:
    """The SVG document: each key's record states from `start` to `end` (epoch seconds) under
    the TTLs of `p`, a dated axis, a legend, and a red line at `failure_at` when some cache
    state failed then."""
    keys = sorted(keys, key=lambda k: (k.created, k.id))
    body: list[str] = []
    y = TOP
    for key in keys:
        group, y = _key_group(key, p, start, end, y, LEFT)
        body += group
    scale = (WIDTH - LEFT - RIGHT) / (end - start)
    axis = [f'<line x1="{LEFT}" y1="{y}" x2="{WIDTH - RIGHT}" y2="{y}" stroke="#333333"/>']
    for t in [start, *_ticks(start, end)]:
        x = LEFT + (t - start) * scale
        axis.append(f'<line x1="{x:.1f}" y1="{TOP - 6}" x2="{x:.1f}" y2="{y + 4}" '
                    f'stroke="#bbbbbb" stroke-width="0.5"/>')
        axis.append(_text(x, y + 18, _date(t)[:7], ' text-anchor="middle"'))
    if failure_at is not None and start <= failure_at <= end:  # drawn over the rows
        x = LEFT + (failure_at - start) * scale
        body.append(f'<line class="failure" x1="{x:.1f}" y1="{TOP - 6}" x2="{x:.1f}" '
                    f'y2="{y}" stroke="#d00000" stroke-width="2"/>')
        body.append(_text(x + 4, TOP - 8, f"fails {_date(failure_at)}", ' fill="#d00000"'))
    height = y + 30
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
            f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">')
    heading = title or f"policy {p.name}: key record states {_date(start)} to {_date(end)}"
    parts = [head, f"<title>{escape(heading)}</title>",
             f'<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>',
             _text(8, 18, heading, ' font-size="14" font-weight="bold"'),
             *_legend(), *axis, *body, "</svg>"]
    return "\n".join(parts) + "\n"
