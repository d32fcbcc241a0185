"""The parent check's judgement (pure): which keys' DS every parent server shows, and the
observations it feeds the key state — first-seen kept, reset by a later disagreement."""

from __future__ import annotations

import dns.name
from cryptography.hazmat.primitives.asymmetric import ec

from sigchain.core.dnssec import ds as ds_mod
from sigchain.core.parent.agreement import (
    ServerDs,
    ZoneKey,
    disagreements,
    judge,
    observations,
)
from sigchain.core.rollover.planner import Observation

ZONE = dns.name.from_text("example.test.")


def _key(key_id: str, **kw: int | None) -> ZoneKey:
    import dns.dnssec

    pub = ec.generate_private_key(ec.SECP256R1()).public_key()
    dnskey = dns.dnssec.make_dnskey(pub, 13, flags=257)
    return ZoneKey(key_id, dns.dnssec.key_id(dnskey), dnskey, **kw)  # type: ignore[arg-type]


def _server(name: str, *keys: ZoneKey) -> ServerDs:
    return ServerDs(name, tuple(ds_mod.make_ds(ZONE, k.dnskey, 2) for k in keys))


def test_every_server_with_the_ds_is_recorded_once_with_its_first_seen_time() -> None:
    k = _key("k1")
    a = judge(ZONE, [_server("s1", k), _server("s2", k)], [k])
    assert a.agree and a.keys[0].state == "published" and disagreements(a) == []
    first = observations(a, [], 100)
    assert first.record == (Observation("k1", "ds-published", 100),) and first.forget == ()
    again = observations(a, first.record, 200)  # still seen: the first-seen time stays
    assert again.record == () and again.forget == ()


def test_a_stale_server_holds_the_key_and_resets_an_unused_first_seen_time() -> None:
    old, new = _key("old", ds_published=50), _key("new")
    a = judge(ZONE, [_server("s1", old, new), _server("s2", old)], [old, new])
    assert not a.agree
    assert [r.state for r in a.keys] == ["published", "disagree"]
    assert disagreements(a) == [f"zone {ZONE}: parent servers disagree on the DS of key "
                                f"{new.tag}: at s1; not at s2"]
    seen = [Observation("new", "ds-published", 90)]
    changes = observations(a, seen, 100)
    assert changes.record == () and changes.forget == (("new", "ds-published"),)


def test_a_failed_server_means_unknown_never_every() -> None:
    k = _key("k1")
    a = judge(ZONE, [_server("s1", k), ServerDs("s2", None, "timed out")], [k])
    assert a.keys[0].state == "unknown" and not a.agree
    assert observations(a, [], 100).record == ()
    assert "unknown at s2" in disagreements(a)[0]


def test_withdrawn_is_recorded_only_for_a_key_whose_cds_is_withdrawn() -> None:
    going = _key("going", ds_published=10, cds_withdrawn=20)
    never = _key("never")
    a = judge(ZONE, [_server("s1"), _server("s2")], [going, never])
    assert [r.state for r in a.keys] == ["withdrawn", "withdrawn"]
    assert observations(a, [], 100).record == (Observation("going", "ds-withdrawn", 100),)


def test_withdrawn_is_recorded_for_a_ds_asked_for_and_never_seen() -> None:
    """A key whose CDS was published (the parent may have taken its DS unseen) and is now
    withdrawn: no DS at every server is the observation going insecure and algorithm rolls
    wait for (before, nothing was recorded and they waited for ever)."""
    asked = _key("asked", cds_published=5, cds_withdrawn=20)
    a = judge(ZONE, [_server("s1"), _server("s2")], [asked])
    assert observations(a, [], 100).record == (Observation("asked", "ds-withdrawn", 100),)
