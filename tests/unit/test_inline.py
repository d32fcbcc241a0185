"""Inline signing (services.inline) on a fake clock: the config's inline keys and their
errors, the first signing, restarts (same keys, serial never back), edits re-signed
incrementally, signature refresh in bounded batches, key events."""

from __future__ import annotations

from pathlib import Path

import dns.name
import dns.rcode
import dns.update
import pytest
from dns.rdatatype import RdataType

from sigchain.clock import FakeClock
from sigchain.core.rollover.policy import builtin
from sigchain.core.serve.fromwire import served_form
from sigchain.core.serve.index import ZoneIndex
from sigchain.core.serve.transfer import diff
from sigchain.core.sign.rrsigs import expiration_of
from sigchain.core.update.changes import ChangeSet
from sigchain.core.update.process import UpdatePolicy, process
from sigchain.core.verify.verifier import verify_records
from sigchain.core.zone.records import key_of
from sigchain.core.zone.wire import WireRRset
from sigchain.errors import InputError
from sigchain.findings import Severity
from sigchain.services.inline import InlineZone
from sigchain.services.serveconfig import parse_config

ORIGIN = dns.name.from_text("example.test.")
START = 1_800_000_000
DAY = 86400
UNSIGNED = """$ORIGIN example.test.
$TTL 300
@ IN SOA ns1 hostmaster 7 3600 600 86400 300
@ IN NS ns1
ns1 IN A 192.0.2.1
""" + "".join(f"h{i} IN A 192.0.2.{i % 250}\n" for i in range(300))


def verify(iz: InlineZone, at: int) -> None:
    """The signed zone verifies at `at`, and the index served is made of exactly its RRsets
    (the index's form is kept up to date change by change)."""
    assert iz.zone is not None
    whole = ZoneIndex.from_served(ORIGIN, served_form(iz.zone.rrsets()))
    assert diff(whole, iz.index()).empty and whole.serial == iz.index().serial
    wire = [WireRRset(r.key, r.owner, r.rdtype, r.ttl, r.wires) for r in iz.zone.rrsets()]
    errors = [f.message for f in verify_records(wire, ORIGIN, at, ignore_ksk=True).findings
              if f.severity is Severity.ERROR]
    assert not errors, errors[:5]


def make(tmp_path: Path, clock: FakeClock, policy: str = "ksk-zsk") -> InlineZone:
    unsigned = tmp_path / "example.test.zone"
    if not unsigned.exists():
        unsigned.write_text(UNSIGNED)
    iz = InlineZone(ORIGIN, str(unsigned), str(tmp_path / "keys"), builtin(policy), clock)
    iz.start(clock.now())
    return iz


# ---- config ----------------------------------------------------------------------------------


def _config(tmp_path: Path, body: str) -> str:
    return f'[zones."example.test."]\n{body}\n'


@pytest.mark.parametrize(("body", "line", "needle"), [
    ('unsigned = "z"\nkeys = "k"', 2, "unsigned needs policy"),
    ('file = "z.signed"\nunsigned = "z"\nkeys = "k"\npolicy = "default"', 2,
     "file (a zone signed elsewhere) cannot be given"),
    ('unsigned = "z"\npolicy = "default"', 1, "keys must be given"),
    ('unsigned = "z"\nkeys = "k"\npolicy = "no-such-policy"', None, "nor a built-in policy"),
])
def test_bad_inline_settings_name_the_file_and_line(tmp_path: Path, body: str, line: int | None,
                                                    needle: str) -> None:
    path = str(tmp_path / "serve.toml")
    with pytest.raises(InputError) as err:
        parse_config(_config(tmp_path, body), path)
    assert needle in err.value.message
    if line is not None:
        assert err.value.line == line and err.value.file == path


def test_inline_settings_resolve_paths_from_the_config_directory(tmp_path: Path) -> None:
    (tmp_path / "fast.toml").write_text('signatures-validity = "40s"\n'
                                        'signatures-refresh = "20s"\n'
                                        'signatures-jitter = "10s"\n')
    cfg = parse_config(_config(tmp_path, 'unsigned = "z.zone"\nkeys = "k"\npolicy = "fast.toml"'),
                       str(tmp_path / "serve.toml"))
    z = cfg.zones[0]
    assert z.inline and z.path == str(tmp_path / "z.zone") and z.keys == str(tmp_path / "k")
    assert z.policy is not None and z.policy.signatures_validity == 40


def test_a_policy_whose_refresh_cannot_work_is_refused(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text('signatures-validity = "1d"\nsignatures-refresh = "2d"\n'
                                       'signatures-jitter = "1h"\n')
    with pytest.raises(InputError) as err:
        parse_config(_config(tmp_path, 'unsigned = "z"\nkeys = "k"\npolicy = "bad.toml"'),
                     str(tmp_path / "serve.toml"))
    assert "signatures-refresh" in err.value.message and err.value.line == 4


# ---- the zone ----------------------------------------------------------------------------------


def test_first_start_makes_keys_signs_and_a_restart_keeps_keys_and_raises_the_serial(
        tmp_path: Path) -> None:
    clock = FakeClock(START)
    iz = make(tmp_path, clock)
    verify(iz, START)
    keys = sorted(p.name for p in (tmp_path / "keys").glob("K*.key"))
    assert len(keys) == 2  # ksk-zsk: a KSK and a ZSK
    first = iz.zone.serial if iz.zone else 0
    assert first >= 7
    clock.advance(60)
    again = make(tmp_path, clock)
    assert again.zone is not None and again.zone.serial > first
    assert sorted(p.name for p in (tmp_path / "keys").glob("K*.key")) == keys
    assert (tmp_path / "example.test.zone").read_text() == UNSIGNED
    verify(again, clock.now())


def test_edit_of_the_unsigned_file_is_applied_incrementally(tmp_path: Path) -> None:
    clock = FakeClock(START)
    iz = make(tmp_path, clock)
    old = iz.index()
    (tmp_path / "example.test.zone").write_text(UNSIGNED + "new IN A 192.0.2.200\n")
    clock.advance(10)
    change = iz.reload(clock.now())
    assert change.new_serial == change.old_serial + 1
    added = {(r.owner, r.rdtype) for r in change.added}
    assert ("new.example.test.", RdataType.A) in added
    # The change, its NSEC3 neighbour and the SOA: a few RRsets, not the zone.
    assert len(change.added) < 12, added
    assert iz.index() is not old and iz.index().serial == change.new_serial
    verify(iz, clock.now())
    unchanged = iz.reload(clock.now())
    assert unchanged.empty


def test_signature_refresh_replaces_a_bounded_share_per_tick_and_keeps_the_zone_valid(
        tmp_path: Path) -> None:
    """Default policy (validity 14 d, refresh 5 d, jitter 12 h): nothing is due before
    9 d - 12 h; then each tick re-signs the RRsets due within the next hour, a small share
    of the zone, until every signature of the first signing is replaced; the zone verifies
    at every step and after the first signatures would have expired."""
    clock = FakeClock(START)
    iz = make(tmp_path, clock, "default")
    assert iz.zone is not None
    total = len(list(iz.zone.expirations()))
    assert iz.refresh_at is not None and iz.refresh_at >= START + 9 * DAY - 12 * 3600 - 3600
    shares = []
    while clock.now() < START + 15 * DAY:  # past every first signature's expiration
        clock.set(max(clock.now() + 60, iz.refresh_at or 0))
        change = iz.refresh_due(clock.now())
        shares.append(sum(1 for r in change.added if r.rdtype == RdataType.RRSIG))
        verify(iz, clock.now())
    assert max(shares) <= total // 8, shares  # an hour of a 12 h jitter window, about 1/12
    assert sum(shares) >= total, shares  # yet every signature was replaced once
    assert min(expiration_of(r) for r in iz.zone.rrsets() if r.rdtype == RdataType.RRSIG) \
        > clock.now() + 5 * DAY - 3600  # nothing left within signatures-refresh (an hour's slack)


def test_key_event_publishes_the_successor_zsk_before_the_old_one_retires(
        tmp_path: Path) -> None:
    """ksk-zsk: the ZSK's lifetime (90 d) ends; at the key engine's wake-ups the successor is
    created and its DNSKEY published (pre-publish roll) while the zone stays valid."""
    clock = FakeClock(START)
    iz = make(tmp_path, clock)
    assert iz.zone is not None
    dnskeys = len(iz.zone.rrset(iz.okey, RdataType.DNSKEY).wires)  # type: ignore[union-attr]
    steps = 0
    while clock.now() < START + 90 * DAY and steps < 200:
        wake = iz.key_at if iz.key_at is not None else clock.now() + DAY
        clock.set(min(max(wake, clock.now() + 1), clock.now() + 5 * DAY))
        iz.key_event(clock.now())
        while iz.refresh_at is not None and iz.refresh_at <= clock.now():
            iz.refresh_due(clock.now())
        verify(iz, clock.now())
        steps += 1
    assert len(iz.zone.rrset(iz.okey, RdataType.DNSKEY).wires) > dnskeys  # type: ignore[union-attr]
    assert len(list((tmp_path / "keys").glob("K*.key"))) == 3


def test_a_bad_unsigned_file_changes_nothing_and_signer_records_are_refused(
        tmp_path: Path) -> None:
    clock = FakeClock(START)
    iz = make(tmp_path, clock)
    served = iz.index()
    (tmp_path / "example.test.zone").write_text(UNSIGNED + "broken IN A not-an-address\n")
    with pytest.raises(InputError):
        iz.reload(clock.now())
    assert iz.index() is served
    assert iz.zone is not None
    dnskey = iz.zone.rrset(iz.okey, RdataType.DNSKEY)
    assert dnskey is not None
    with pytest.raises(InputError, match="made by the signer"):
        iz.apply_changes(ChangeSet(removed=(dnskey,)), clock.now())
    assert iz.index() is served


def test_a_ttl_above_max_zone_ttl_is_refused_at_start_reload_and_update(tmp_path: Path) -> None:
    """As BIND's dnssec-policy: the rolls wait max-zone-ttl (ksk-zsk: 1 day) for old
    signatures to leave caches, so a longer TTL is refused, in the file or in an update."""
    clock = FakeClock(START)
    (tmp_path / "example.test.zone").write_text(UNSIGNED + "long 172800 IN A 192.0.2.9\n")
    with pytest.raises(InputError, match="TTL 172800 of long.example.test. A exceeds"):
        make(tmp_path, clock)
    assert not list(tmp_path.glob("keys/K*"))
    (tmp_path / "example.test.zone").write_text(UNSIGNED)
    iz = make(tmp_path, clock)
    served = iz.index()
    (tmp_path / "example.test.zone").write_text(UNSIGNED + "long 172800 IN A 192.0.2.9\n")
    with pytest.raises(InputError, match="max-zone-ttl 86400"):
        iz.reload(clock.now())
    assert iz.index() is served
    msg = dns.update.UpdateMessage(ORIGIN)
    msg.add(dns.name.from_text("long", ORIGIN), 86401, "A", "192.0.2.9")
    result = process(msg, iz.zone_data(), ORIGIN, True, UpdatePolicy(max_ttl=86400))
    assert result.rcode == dns.rcode.REFUSED and "max-zone-ttl 86400" in result.reason
    msg = dns.update.UpdateMessage(ORIGIN)
    msg.add(dns.name.from_text("long", ORIGIN), 86400, "A", "192.0.2.9")
    assert process(msg, iz.zone_data(), ORIGIN, True, UpdatePolicy(max_ttl=86400)).ok


def test_resign_now_replaces_every_signature_and_status_reports_keys_and_timers(
        tmp_path: Path) -> None:
    clock = FakeClock(START)
    iz = make(tmp_path, clock)
    assert iz.zone is not None
    before = {(r.key, r.wires) for r in iz.zone.rrsets() if r.rdtype == RdataType.RRSIG}
    clock.advance(3600)
    change = iz.resign_now(clock.now())
    after = {(r.key, r.wires) for r in iz.zone.rrsets() if r.rdtype == RdataType.RRSIG}
    assert not before & after and change.new_serial == change.old_serial + 1
    verify(iz, clock.now())
    st = iz.status(clock.now())
    assert st["serial"] == change.new_serial and st["policy"] == "ksk-zsk"
    keys = st["keys"]
    assert isinstance(keys, list) and sorted(k["role"] for k in keys) == ["ksk", "zsk"]
    assert all(set(k["states"]) == {"dnskey", "krrsig", "zrrsig", "ds"} for k in keys), keys
    assert st["next_refresh"] == iz.refresh_at and st["next_key_event"] == iz.key_at


def test_an_unsigned_file_that_cannot_load_makes_no_keys(tmp_path: Path) -> None:
    (tmp_path / "example.test.zone").write_text(UNSIGNED.replace("@ IN SOA", "; @ IN SOA"))
    with pytest.raises(InputError, match="no SOA"):
        make(tmp_path, FakeClock(START))
    assert not list(tmp_path.glob("keys/K*"))


def _update(iz: InlineZone, now: int, *ops: tuple[str, str, str]) -> None:
    """A dynamic update (RFC 2136, through core.update) of ('add'|'delete', name, address)."""
    msg = dns.update.UpdateMessage(ORIGIN)
    for op, label, addr in ops:
        name = dns.name.from_text(label, ORIGIN)
        if op == "add":
            msg.add(name, 300, "A", addr)
        else:
            msg.delete(name, "A")
    result = process(msg, iz.zone_data(), ORIGIN, True)
    assert result.ok
    iz.apply_changes(result.changes, now)


def _a(iz: InlineZone, name: str) -> tuple[str, ...] | None:
    assert iz.zone is not None
    r = iz.zone.rrset(key_of(dns.name.from_text(name, ORIGIN)), RdataType.A)
    return None if r is None else r.texts


def test_dynamic_updates_outlive_reloads_and_restarts_until_the_file_changes_their_rrset(
        tmp_path: Path) -> None:
    """As BIND keeps an inline zone's updates in its journal: an edit of other names in the
    unsigned file, or a restart, keeps every update; the file changing the same RRset wins."""
    clock = FakeClock(START)
    iz = make(tmp_path, clock)
    _update(iz, clock.now(), ("add", "dyn", "192.0.2.77"), ("delete", "h1", ""),
            ("add", "h2", "192.0.2.99"))
    (tmp_path / "example.test.zone").write_text(UNSIGNED + "filed IN A 192.0.2.201\n")
    clock.advance(10)
    iz.reload(clock.now())
    assert _a(iz, "dyn") == ("192.0.2.77",) and _a(iz, "h1") is None
    assert _a(iz, "h2") == ("192.0.2.2", "192.0.2.99") and _a(iz, "filed") == ("192.0.2.201",)
    verify(iz, clock.now())
    serial = iz.index().serial

    clock.advance(10)
    again = make(tmp_path, clock)  # a restart: the updates come back from the state
    assert _a(again, "dyn") == ("192.0.2.77",) and _a(again, "h1") is None
    assert _a(again, "h2") == ("192.0.2.2", "192.0.2.99")
    assert again.index().serial > serial
    verify(again, clock.now())

    # the operator now edits h2 in the file (and leaves the rest): the file's h2 counts
    (tmp_path / "example.test.zone").write_text(
        UNSIGNED.replace("h2 IN A 192.0.2.2\n", "h2 IN A 192.0.2.222\n")
        + "filed IN A 192.0.2.201\n")
    clock.advance(10)
    again.reload(clock.now())
    assert _a(again, "h2") == ("192.0.2.222",) and _a(again, "dyn") == ("192.0.2.77",)
    clock.advance(10)
    third = make(tmp_path, clock)
    assert _a(third, "h2") == ("192.0.2.222",) and _a(third, "h1") is None
    assert set(third.dynamic) == {(key_of(dns.name.from_text("dyn", ORIGIN)), RdataType.A),
                                  (key_of(dns.name.from_text("h1", ORIGIN)), RdataType.A)}


def test_a_change_whose_record_fails_is_taken_back_whole(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """RFC 2136 §3.7: an update is applied whole or not at all. When the state cannot be
    written (a full disk, a locked database), the client is told it failed, so the zone
    must not keep it: not in the signed zone, its unsigned data, its updates kept, nor the
    index served — and the next change applies to the zone as recorded."""
    from sigchain.errors import OperationalError
    from sigchain.services import inlinestate

    clock = FakeClock(START)
    iz = make(tmp_path, clock)
    index, serial = iz.index(), iz.index().serial
    written = inlinestate.record

    def full_disk(*args: object, **kwargs: object) -> None:
        raise OperationalError("cannot write the inline state: database or disk is full")

    monkeypatch.setattr(inlinestate, "record", full_disk)
    clock.advance(10)
    with pytest.raises(OperationalError):
        _update(iz, clock.now(), ("add", "dyn", "192.0.2.77"), ("delete", "h1", ""))
    with pytest.raises(OperationalError):
        iz.resign_now(clock.now())
    assert _a(iz, "dyn") is None and _a(iz, "h1") == ("192.0.2.1",)
    assert iz.zone_data().rrset(key_of(dns.name.from_text("dyn", ORIGIN)), RdataType.A) is None
    assert not iz.dynamic and iz.index() is index and iz.zone is not None
    assert iz.zone.serial == serial
    verify(iz, clock.now())
    # but what the timers do is served all the same: fresh signatures and the key state's
    # DNSKEYs matter more than the record (a failed refresh would let signatures expire)
    when = iz.refresh_at
    assert when is not None and when > clock.now()
    refreshed = iz.refresh_due(when)
    assert not refreshed.empty and iz.index().serial == refreshed.new_serial == iz.zone.serial
    verify(iz, when)  # served: the index is the refreshed zone
    serial = iz.zone.serial

    monkeypatch.setattr(inlinestate, "record", written)
    clock.advance(10)
    _update(iz, clock.now(), ("add", "dyn", "192.0.2.78"))
    assert _a(iz, "dyn") == ("192.0.2.78",) and _a(iz, "h1") == ("192.0.2.1",)
    assert iz.index().serial == serial + 1
    verify(iz, when)
    clock.advance(10)
    again = make(tmp_path, clock)  # the state knows the update that was kept, only it
    assert _a(again, "dyn") == ("192.0.2.78",) and _a(again, "h1") == ("192.0.2.1",)

    # a reload in which the file takes dyn back fails the same way: the update stays kept
    (tmp_path / "example.test.zone").write_text(UNSIGNED + "dyn IN A 192.0.2.201\n")
    monkeypatch.setattr(inlinestate, "record", full_disk)
    clock.advance(10)
    with pytest.raises(OperationalError):
        again.reload(clock.now())
    assert _a(again, "dyn") == ("192.0.2.78",) and len(again.dynamic) == 1
    monkeypatch.setattr(inlinestate, "record", written)
    again.reload(clock.now())
    assert _a(again, "dyn") == ("192.0.2.201",) and not again.dynamic


def test_a_failing_key_engine_never_holds_up_the_signature_refresh(tmp_path: Path) -> None:
    """The key engine refuses a key directory others may write (a chmod, a restore with the
    wrong umask): it is retried every minute, and meanwhile the timers still refresh the
    signatures — a zone served for 15 days more never carries an expired one."""
    import os

    from sigchain.services.inlineserve import RETRY_SECONDS, InlineServing

    clock = FakeClock(START)
    iz = make(tmp_path, clock, "default")
    os.chmod(tmp_path / "keys", 0o775)
    now = START + 3600
    iz.key_at = now  # a SIGHUP's policy re-read, or the plan's next wake
    while now < START + 15 * DAY:
        if iz.wake_at is not None and iz.wake_at <= now:
            InlineServing._inline_tick(iz, now)  # raises nothing: the key failure is logged
            assert iz.key_at is not None and iz.key_at > now  # retried, not every tick
        now += 600
    assert iz.key_at is not None and iz.key_at <= now + RETRY_SECONDS
    verify(iz, now)  # no signature expired


def test_a_key_event_whose_record_fails_is_served_as_the_key_state_says(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The key engine has recorded its step (here: ask for the DS, a CDS published) when the
    zone's own state write fails: the zone still follows the key state, served, or the
    engine's later steps would be timed from records the zone never published."""
    from sigchain.errors import OperationalError
    from sigchain.services import inlinestate

    clock = FakeClock(START)
    iz = make(tmp_path, clock)
    assert iz.zone is not None and iz.zone.rrset(key_of(ORIGIN), RdataType.CDS) is None

    def full_disk(*args: object, **kwargs: object) -> None:
        raise OperationalError("cannot write the inline state: database or disk is full")

    monkeypatch.setattr(inlinestate, "record", full_disk)
    for _ in range(20):  # key events until the one that asks for the DS
        when = iz.key_at
        assert when is not None
        iz.key_event(when)
        if iz.zone.rrset(key_of(ORIGIN), RdataType.CDS) is not None:
            break
    assert iz.zone.rrset(key_of(ORIGIN), RdataType.CDS) is not None
    verify(iz, when)  # and the index served is that zone
