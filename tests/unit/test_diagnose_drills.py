"""The drill catalogue and its record (pure)."""

from __future__ import annotations

import pytest

from sigchain.core.diagnose.classify import Cause
from sigchain.core.diagnose.drills import DRILLS, Active, drill, drill_zone
from sigchain.errors import InputError


def test_every_drill_names_a_diagnose_cause() -> None:
    assert {d.cause for d in DRILLS.values()} <= {c.value for c in Cause}


def test_zone_drills_refuse_zones_they_cannot_break_and_default_to_example_test() -> None:
    assert drill_zone(drill("broken-ds"), None).name.to_text() == "example.test."
    for zone in ("insecure.test", ".", "dnssec-failed.test", "not-in-the-lab.test"):
        with pytest.raises(InputError):
            drill_zone(drill("expired-rrsig"), zone)
    with pytest.raises(InputError, match="one of broken-ds"):
        drill("nope")


def test_the_record_round_trips_and_a_bad_one_is_input_error() -> None:
    a = Active("expired-rrsig", "nsec.test.", 1_800_000_000, ("/l/zones/nsec.test.signed",),
               {"/l/zones/nsec.test.signed": "/l/drills/backup/nsec.test.signed"},
               ("serve-127.53.0.4",), "SOA 13 2 300 20270103142825 20261205074421 30810 nsec.test. AAAA")
    assert Active.from_json(a.to_json(), "active.json") == a
    with pytest.raises(InputError, match="active.json"):
        Active.from_json({"name": "x"}, "active.json")
