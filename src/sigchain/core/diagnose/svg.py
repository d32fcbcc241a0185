"""The chain of trust as a picture (pure), as DNSViz draws it: one box per zone with its
DNSKEYs, the DS at the parent and which key signs what; the failing link in red with its
finding; the verdict at the bottom. Plain SVG text, no graphviz needed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

WIDTH = 760  # at least; wider when a line needs it
CHAR = 7.3  # px per character of 12-13 px monospace
LINE = 16
PAD = 10
GAP = 46
RED, GREEN, GREY, BLACK = "#c0392b", "#1e8449", "#7f8c8d", "#222222"
STATUS_COLOUR = {"secure": GREEN, "insecure": GREY, "bogus": RED}


@dataclass(frozen=True)
class ZoneBox:
    zone: str
    status: str
    ds: Sequence[str] = ()  # "DS 58908/13/2 (at the parent)"
    dnskeys: Sequence[str] = ()  # "DNSKEY 58908/13 KSK"
    signs: Sequence[str] = ()  # "58908 signs DNSKEY example.test."
    failing: Sequence[str] = field(default=())  # "DS_NO_MATCHING_DNSKEY: no usable DNSKEY …"

    @property
    def lines(self) -> list[tuple[str, str]]:
        out = [(d if d.startswith("trust anchor") else f"DS at parent: {d}", BLACK)
               for d in self.ds]
        out += [(k, BLACK) for k in self.dnskeys]
        out += [(s, GREY) for s in self.signs]
        out += [(f"FAILING LINK {f}", RED) for f in self.failing]
        return out or [("(no DNSSEC records)", GREY)]


def _text(x: int, y: int, text: str, colour: str, *, bold: bool = False, size: int = 12,
          cls: str = "") -> str:
    weight = ' font-weight="bold"' if bold else ""
    klass = f' class="{cls}"' if cls else ""
    return (f'<text x="{x}" y="{y}" fill="{colour}" font-size="{size}"{weight}{klass}>'
            f"{escape(text)}</text>")


def render(boxes: Sequence[ZoneBox], question: str, verdict: str) -> str:
    """The SVG document: boxes from the anchor down, joined by DS arrows (red into a zone
    whose link fails), the question on top and the verdict at the bottom."""
    longest = max([len(verdict), len(question) + 20]
                  + [len(t) + 4 for b in boxes for t, _ in b.lines])
    width = max(WIDTH, int(longest * CHAR) + 4 * PAD)
    parts: list[str] = []
    y = 30
    parts.append(_text(PAD, y - 8, f"chain of trust for {question}", BLACK, bold=True, size=14))
    for i, box in enumerate(boxes):
        lines = box.lines
        height = PAD * 2 + LINE * (len(lines) + 1)
        bad = bool(box.failing) or box.status == "bogus"
        colour = RED if bad else STATUS_COLOUR.get(box.status, GREY)
        if i:
            top = y - GAP
            parts.append(f'<line x1="{width // 2}" y1="{top}" x2="{width // 2}" y2="{y - 4}" '
                         f'stroke="{RED if bad else BLACK}" stroke-width="{3 if bad else 1.5}" '
                         f'marker-end="url(#arrow)"/>')
            label = "DS → DNSKEY: BROKEN" if bad and box.ds else "delegation (DS → DNSKEY)"
            parts.append(_text(width // 2 + 8, top + GAP // 2 + 4, label,
                               RED if bad else GREY, cls="link-failing" if bad else "link"))
        parts.append(f'<g class="zone" id="zone-{escape(box.zone)}">')
        parts.append(f'<rect x="{PAD}" y="{y}" width="{width - 2 * PAD}" height="{height}" '
                     f'rx="8" fill="#ffffff" stroke="{colour}" stroke-width="{3 if bad else 1.5}"/>')
        parts.append(_text(PAD * 2, y + PAD + LINE - 4, f"{box.zone}  [{box.status}]", colour,
                           bold=True, size=13))
        for n, (text, c) in enumerate(lines, start=2):
            parts.append(_text(PAD * 3, y + PAD + LINE * n - 4, text, c,
                               cls="failing" if c == RED else ""))
        parts.append("</g>")
        y += height + GAP
    y += (24 - GAP) if boxes else 10
    ok = verdict.startswith("; fully") or verdict.startswith("; negative response, fully")
    parts.append(_text(PAD, y, verdict, GREEN if ok else RED, bold=True, size=13, cls="verdict"))
    height = y + 20
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="monospace">\n'
            f'<defs><marker id="arrow" markerWidth="10" markerHeight="8" refX="9" refY="4" '
            f'orient="auto"><path d="M0,0 L10,4 L0,8 z" fill="{BLACK}"/></marker></defs>\n'
            + "\n".join(parts) + "\n</svg>\n")
