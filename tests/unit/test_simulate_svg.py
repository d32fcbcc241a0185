"""`policy simulate --svg`: the timeline of each key's record states as an SVG picture."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from sigchain.core.rollover import simulate as sim
from sigchain.core.rollover import svg
from sigchain.core.rollover.policy import builtin
from sigchain.core.rollover.states import State, states
from tests.conftest import sc

NS = {"s": "http://www.w3.org/2000/svg"}
DAY = 86400
ROWS = {"ksk": ["DNSKEY", "KRRSIG", "DS"], "zsk": ["DNSKEY", "ZRRSIG"],
        "csk": ["DNSKEY", "KRRSIG", "ZRRSIG", "DS"]}


def _picture(name: str, days: int, **world: int) -> tuple[sim.Simulation, ET.Element]:
    p = builtin(name)
    w = sim.world_of(p, world.get("parent_ds_ttl"), world.get("max_zone_ttl"))
    result = sim.run(p, days, 2 * DAY, w)
    first = result.failures[0].at if result.failures else None
    return result, ET.fromstring(svg.timeline(result.keys, w, sim.T0, sim.T0 + days * DAY, first))


@pytest.mark.parametrize("name", ["ksk-zsk", "default"])
def test_one_group_per_key_naming_it_and_one_row_per_record(name: str) -> None:
    result, root = _picture(name, 365)
    groups = root.findall(".//s:g[@class='key']", NS)
    assert sorted(g.get("data-key") for g in groups) == sorted(k.id for k in result.keys)
    roles = {k.id: k.role for k in result.keys}
    assert len(set(roles.values())) == (2 if name == "ksk-zsk" else 1)
    for g in groups:
        key_id = g.get("data-key")
        heading = g.find("s:text", NS).text
        assert key_id in heading and roles[key_id].upper() in heading
        rows = [r.find("s:text", NS).text for r in g.findall("s:g[@class='row']", NS)]
        assert rows == ROWS[roles[key_id]]


def test_colours_follow_the_key_states_day_by_day() -> None:
    """Each row's rectangles tile the years, and the colour on every day is the state the
    state model gives for that day."""
    result, root = _picture("ksk-zsk", 2 * 365)
    p = builtin("ksk-zsk")
    by_colour = {c: s for s, c in svg.COLOURS.items()}
    keys = {k.id: k for k in result.keys}
    seen = set()
    for g in root.findall(".//s:g[@class='key']", NS):
        key = keys[g.get("data-key")]
        for row in g.findall("s:g[@class='row']", NS):
            record = row.get("data-record")
            spans = []
            for rect in row.findall("s:rect", NS):
                m = re.fullmatch(r"\S+ \S+ (\w+) (\S+) to (\S+)", rect.find("s:title", NS).text)
                assert m and svg.COLOURS[State(m.group(1))] == rect.get("fill")
                spans.append((float(rect.get("x")), float(rect.get("width")),
                               by_colour[rect.get("fill")]))
            assert abs(spans[0][0] - svg.LEFT) < 0.01
            assert abs(spans[-1][0] + spans[-1][1] - (svg.WIDTH - svg.RIGHT)) < 0.6
            scale = (svg.WIDTH - svg.LEFT - svg.RIGHT) / (2 * 365 * DAY)
            for day in range(0, 2 * 365, 7):
                t = sim.T0 + day * DAY + DAY // 2
                x = svg.LEFT + (t - sim.T0) * scale
                want = getattr(states(key, p, t), record)
                # What shows at x: the last rectangle drawn there (a sliver widened to half
                # a pixel lies under the next one).
                got = [s for x0, w, s in spans if x0 <= x < x0 + w]
                assert got and got[-1] == want, (key.id, record, day)
                seen.add(want)
    assert seen == set(State)  # the run shows every state somewhere


def test_axis_has_dates_and_the_legend_every_state() -> None:
    _, root = _picture("ksk-zsk", 3 * 365)
    texts = [t.text for t in root.iter(f"{{{NS['s']}}}text")]
    dates = [t for t in texts if re.fullmatch(r"\d{4}-\d{2}", t)]
    assert dates[0] == "2027-01" and dates == sorted(dates) and len(dates) >= 12
    assert "2029-07" in dates  # quarterly over three years
    legend = root.find(".//s:g[@class='legend']", NS)
    assert [t.text for t in legend.findall("s:text", NS)] == [s.value for s in State]
    assert root.find(".//s:line[@class='failure']", NS) is None


def test_a_failing_run_marks_the_instant() -> None:
    result, root = _picture("ksk-zsk", 2 * 365, parent_ds_ttl=30 * DAY)
    assert result.failures
    line = root.find(".//s:line[@class='failure']", NS)
    scale = (svg.WIDTH - svg.LEFT - svg.RIGHT) / (2 * 365 * DAY)
    assert abs(float(line.get("x1")) - (svg.LEFT + (result.failures[0].at - sim.T0) * scale)) < 0.1


def test_cli_writes_the_svg_and_refuses_a_missing_folder(tmp_path: Path) -> None:
    out = tmp_path / "roll.svg"
    plain = sc("policy", "simulate", "ksk-zsk", "--years", "1", check=True).stdout
    proc = sc("policy", "simulate", "ksk-zsk", "--years", "1", "--svg", out, check=True)
    assert proc.stdout == plain
    root = ET.parse(out).getroot()
    counts = re.search(r"keys: (.*)$", plain.splitlines()[1]).group(1)  # "ksk 2, zsk 5"
    total = sum(int(part.split()[1]) for part in counts.split(", "))
    assert len(root.findall(".//s:g[@class='key']", NS)) == total > 2
    bad = sc("policy", "simulate", "ksk-zsk", "--svg", tmp_path / "no" / "roll.svg")
    assert bad.returncode == 3 and "no such directory" in bad.stderr
    assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
