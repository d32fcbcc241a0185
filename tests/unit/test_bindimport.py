"""Reading BIND's key `.state` files (services/bindimport): what their DS state means for
the parent step a rollover waits on."""

from __future__ import annotations

import pytest

from sigchain.core.dnssec.timefmt import parse_timestamp14
from sigchain.core.rollover.policy import builtin
from sigchain.services.bindimport import _key, parse_state
from tests.zonetools import BIND_CSK_STATE

NOW = parse_timestamp14("20260301000000")
STATE = BIND_CSK_STATE.replace(
    "DNSKEYState", "Active: 20260101000000\nPublishCDS: 20260110000000\nDNSKEYState").replace(
    "DSState: hidden", "DSState: {ds}\nDSChange: 20260110000000")


@pytest.mark.parametrize(("ds", "extra", "published", "withdrawn"), [
    # BIND asked for the DS (CDS out) but has not seen it at the parent: not published yet
    ("rumoured", "", None, None),
    ("rumoured", "DSPublish: 20260112000000", "20260112000000", None),
    ("omnipresent", "", "set", None),
    # on its way out, gone from the parent only once BIND saw it gone
    ("unretentive", "", "set", None),
    ("unretentive", "DSRemoved: 20260115000000", "set", "20260115000000"),
])
def test_a_ds_is_seen_at_the_parent_only_when_bind_saw_it(ds: str, extra: str, published: str | None,
                                                          withdrawn: str | None) -> None:
    """RFC 7583 §3.3: the parent's DS is counted from when the parent publishes it; BIND
    records that as DSPublish (its keymgr waits for it before the DS is omnipresent)."""
    text = STATE.format(ds=ds) + extra
    key = _key(parse_state(text, "K.state"), 1, builtin("default"), NOW)
    if published == "set":
        assert key.ds_published is not None
    else:
        assert key.ds_published == (parse_timestamp14(published) if published else None)
    assert key.ds_withdrawn == (parse_timestamp14(withdrawn) if withdrawn else None)
    assert key.cds_published == parse_timestamp14("20260110000000")
