"""The chain-of-trust picture (pure): valid SVG, one box per zone, the failing link in red."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from sigchain.core.diagnose.svg import RED, ZoneBox, render

NS = "{http://www.w3.org/2000/svg}"


def texts(svg: str) -> list[tuple[str, str, str]]:
    root = ET.fromstring(svg.split("\n", 1)[1])
    return [(t.text or "", t.get("fill") or "", t.get("class") or "") for t in root.iter(NS + "text")]


def test_one_box_per_zone_and_the_failing_link_in_red() -> None:
    boxes = [
        ZoneBox(".", "secure", ["trust anchor 24077/13"], ["DNSKEY 24077/13 KSK"],
                ["24077 signs DNSKEY ."]),
        ZoneBox("test.", "secure", ["DS 13952/13/2"], ["DNSKEY 13952/13 KSK"]),
        ZoneBox("dnssec-failed.test.", "bogus", ["DS 14027/13/2"],
                ["DNSKEY 65256/13 KSK", "DNSKEY 51118/13 ZSK"], [],
                ["DS_NO_MATCHING_DNSKEY: no usable DNSKEY of dnssec-failed.test. matches the DS "
                 "(DS 14027/13/2) <&>"]),
    ]
    svg = render(boxes, "www.dnssec-failed.test. A", ";; resolution failed: bogus")
    root = ET.fromstring(svg.split("\n", 1)[1])
    assert len([g for g in root.iter(NS + "g") if g.get("class") == "zone"]) == 3
    found = texts(svg)
    failing = [t for t, fill, cls in found if cls == "failing"]
    assert failing and "DS_NO_MATCHING_DNSKEY" in failing[0] and failing[0].endswith("<&>")
    assert all(fill == RED for _, fill, cls in found if cls in ("failing", "link-failing"))
    assert [t for t, _, cls in found if cls == "link-failing"] == ["DS → DNSKEY: BROKEN"]
    verdict = [(t, fill) for t, fill, cls in found if cls == "verdict"]
    assert verdict == [(";; resolution failed: bogus", RED)]
    last_box_bottom = max(float(r.get("y", 0)) + float(r.get("height", 0))
                          for r in root.iter(NS + "rect"))
    verdict_y = next(float(t.get("y", 0)) for t in root.iter(NS + "text") if t.get("class") == "verdict")
    assert verdict_y > last_box_bottom  # at the bottom
    longest = max(len(t) for t, _, _ in found)
    assert float(root.get("width", 0)) >= longest * 7  # wide enough for its longest line


def test_a_failed_trace_still_draws_its_verdict() -> None:
    svg = render([], "x. A", ";; resolution failed: no server answered")
    root = ET.fromstring(svg.split("\n", 1)[1])
    assert float(root.get("height", 0)) > max(float(t.get("y", 0)) for t in root.iter(NS + "text"))
    assert any(cls == "verdict" for _, _, cls in texts(svg))
