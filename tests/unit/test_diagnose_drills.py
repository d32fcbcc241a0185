"""The drill catalogue and its record (pure)."""

from __future__ import annotations

import pytest

from sigchain.core.diagnose.classify import Cause
from sigchain.core.diagnose.drills import (
    DRILLS,
    Active,
    drill,
    drill_zone,
    sigchain_anchor,
    sigchain_forward,
)
from sigchain.core.lab import hierarchy
from sigchain.errors import InputError
from sigchain.services.resolverconfig import parse_config


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


def test_sigchain_resolver_config_forwards_and_stales_as_unbound_does() -> None:
    """The lab's sigchain-resolver.toml, parsed by the resolver's own config reader: the drill
    forward goes among the top-level keys (not into [cache]), replaces an earlier one, and
    goes away; the anchor is swapped only where the config names the lab's."""
    paths = hierarchy.LabPaths("/l")
    text = hierarchy.sigchain_resolver_conf(paths)
    forwarded = sigchain_forward(sigchain_forward(text, "127.53.9.1"), "127.53.9.10")
    config = parse_config(forwarded, "/l/sigchain-resolver.toml")
    assert [(z.to_text(), [str(s) for s in ss]) for z, ss in config.forward] == [
        (".", ["127.53.9.10"])]
    assert config.cache == parse_config(text, "x").cache
    assert sigchain_forward(forwarded, None) == text
    stale = sigchain_anchor(text, "/l/anchor.ds", "/l/drills/stale-anchor.ds")
    assert stale is not None
    assert parse_config(stale, "x").anchor == "/l/drills/stale-anchor.ds"
    assert sigchain_anchor(text, "/elsewhere/anchor.ds", "/l/drills/stale-anchor.ds") is None
