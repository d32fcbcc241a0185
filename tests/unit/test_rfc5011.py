"""RFC 5011 trust-anchor maintenance (core/validate/rfc5011.py) over DNSKEY RRsets signed here,
at fake times: hold-downs, Missing, revocation, forged RRsets, the refresh timers."""

from __future__ import annotations

import json
from pathlib import Path

import dns.dnssec
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.DNSKEY
import dns.rrset
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from sigchain.core.dnssec import keyfile
from sigchain.core.validate import rfc5011
from sigchain.core.validate.nta import NegativeAnchors
from sigchain.core.validate.rfc5011 import DAY, KeyState, Timers, TrustPoint, observe, trusted
from sigchain.core.validate.verdict import Status
from sigchain.errors import InputError, OperationalError
from sigchain.model.keys import FLAG_REVOKE
from sigchain.services import anchors5011

ZONE = dns.name.root
T0 = 1_780_000_000
TTL = 172800  # 2 days, as the root's DNSKEY RRset
VALIDITY = 20 * DAY


class Key:
    """An ECDSA P-256 key with its DNSKEY (257 = KSK, 256 = ZSK), revocable. No two keys made
    here share a tag, revoked or not: the states are kept by tag, as a resolver keeps them."""

    drawn: set[int] = set()  # every tag a key made here has, or has once revoked

    def __init__(self, flags: int = 257):
        while True:
            self.private = ec.generate_private_key(ec.SECP256R1())
            self.dnskey: dns.rdtypes.ANY.DNSKEY.DNSKEY = dns.dnssec.make_dnskey(
                self.private.public_key(), dns.dnssec.Algorithm.ECDSAP256SHA256, flags=flags)
            tags = {self.tag, dns.dnssec.key_id(keyfile.with_flags(self.dnskey, flags ^ FLAG_REVOKE))}
            if not tags & Key.drawn:
                Key.drawn |= tags
                return

    def revoked(self) -> Key:
        other = Key.__new__(Key)
        other.private = self.private
        other.dnskey = keyfile.with_flags(self.dnskey, self.dnskey.flags | FLAG_REVOKE)
        return other

    @property
    def tag(self) -> int:
        return dns.dnssec.key_id(self.dnskey)

    def ds(self) -> dns.rrset.RRset:
        return dns.rrset.from_rdata_list(ZONE, TTL, [dns.dnssec.make_ds(ZONE, self.dnskey, "SHA256")])


def rrset(published: list[Key], signers: list[Key], now: int, ttl: int = TTL,
          validity: int = VALIDITY) -> tuple[dns.rrset.RRset, dns.rrset.RRset]:
    """The DNSKEY RRset of `published` keys, signed by `signers` from now-1h for `validity`."""
    keys = dns.rrset.from_rdata_list(ZONE, ttl, [k.dnskey for k in published])
    sigs = dns.rrset.RRset(ZONE, dns.rdataclass.IN, dns.rdatatype.RRSIG)
    for k in signers:
        sigs.add(dns.dnssec.sign(keys, k.private, ZONE, k.dnskey, inception=now - 3600,
                                 expiration=now - 3600 + validity), ttl)
    return keys, sigs


def states(tp: TrustPoint) -> dict[int, KeyState]:
    return {k.tag: k.state for k in tp.keys}


def trusted_tags(tp: TrustPoint) -> set[int]:
    return {dns.dnssec.key_id(rd) for r in trusted(tp) if r.rdtype == dns.rdatatype.DNSKEY for rd in r}


def step(tp: TrustPoint, published: list[Key], signers: list[Key], now: int, **kw: object
         ) -> tuple[TrustPoint, list[str]]:
    keys, sigs = rrset(published, signers, now)
    tp, events = observe(tp, keys, sigs, now, **kw)  # type: ignore[arg-type]
    return tp, [e.code for e in events]


def anchored(k1: Key, zsk: Key, now: int = T0) -> TrustPoint:
    """A trust point started from a DS for k1 (as the built-in root anchors) and primed."""
    tp = rfc5011.from_anchors([k1.ds()], now)[ZONE]
    tp, codes = step(tp, [k1, zsk], [k1], now)
    assert codes == ["KEY_VALID"] and not tp.ds
    return tp


def test_ds_anchor_primes_to_its_key_and_zsks_are_not_tracked() -> None:
    k1, zsk = Key(), Key(256)
    tp = anchored(k1, zsk)
    assert states(tp) == {k1.tag: KeyState.VALID}
    assert trusted_tags(tp) == {k1.tag}


def test_new_key_waits_the_add_holddown_then_becomes_trusted() -> None:
    k1, k2, zsk = Key(), Key(), Key(256)
    tp = anchored(k1, zsk)
    t1 = T0 + DAY
    tp, codes = step(tp, [k1, k2, zsk], [k1], t1)
    assert codes == ["KEY_ADDPEND"] and states(tp)[k2.tag] is KeyState.ADDPEND
    assert trusted_tags(tp) == {k1.tag}
    tp, codes = step(tp, [k1, k2, zsk], [k1], t1 + 29 * DAY)
    assert codes == [] and trusted_tags(tp) == {k1.tag}
    tp, codes = step(tp, [k1, k2, zsk], [k1], t1 + 30 * DAY + 3600)
    assert codes == ["KEY_VALID"] and trusted_tags(tp) == {k1.tag, k2.tag}


def test_key_gone_before_holddown_ends_is_never_trusted() -> None:
    k1, k2, zsk = Key(), Key(), Key(256)
    tp = anchored(k1, zsk)
    tp, _ = step(tp, [k1, k2, zsk], [k1], T0 + DAY)
    tp, codes = step(tp, [k1, zsk], [k1], T0 + 10 * DAY)
    assert codes == ["KEY_FORGOTTEN"] and k2.tag not in states(tp)
    # Back again: the hold-down starts over, so 31 days after the first sighting is not enough.
    tp, codes = step(tp, [k1, k2, zsk], [k1], T0 + 20 * DAY)
    assert codes == ["KEY_ADDPEND"]
    tp, codes = step(tp, [k1, k2, zsk], [k1], T0 + 32 * DAY)
    assert codes == [] and trusted_tags(tp) == {k1.tag}


def test_forged_rrset_changes_no_key() -> None:
    k1, evil, zsk = Key(), Key(), Key(256)
    tp = anchored(k1, zsk)
    before = tp.keys
    # Signed only by a key we do not trust, with k1 left out and a new key offered.
    tp2, codes = step(tp, [evil, zsk], [evil], T0 + DAY)
    assert codes == ["NOT_VALIDATED"] and tp2.keys == before and tp2.failures == 1
    # k1 published but the RRSIG is by the stranger: still nothing learned.
    tp3, codes = step(tp, [k1, evil, zsk], [evil], T0 + DAY)
    assert codes == ["NOT_VALIDATED"] and tp3.keys == before
    # A revoked-looking k1 signed by the stranger is not a revocation either.
    tp4, codes = step(tp, [k1.revoked(), evil], [evil], T0 + DAY)
    assert codes == ["NOT_VALIDATED"] and tp4.keys == before
    assert trusted_tags(tp4) == {k1.tag}


def test_failed_fetch_is_retried_after_the_retry_interval() -> None:
    k1, zsk = Key(), Key(256)
    tp = anchored(k1, zsk)
    tp, events = observe(tp, None, None, T0 + DAY, failure="timed out")
    assert [e.code for e in events] == ["REFRESH_FAILED"] and "timed out" in str(events[0])
    assert tp.next_refresh == T0 + DAY + tp.retry_interval and tp.failures == 1


def test_refresh_and_retry_intervals_follow_rfc5011_2_3() -> None:
    k1, zsk = Key(), Key(256)
    tp = anchored(k1, zsk)
    # TTL 2 days, RRSIGs valid 20 days from an hour ago.
    assert tp.query_interval == DAY  # min(15 d, TTL/2 = 1 d, ~20 d/2)
    assert tp.retry_interval == TTL // 10  # min(1 d, 4.8 h, ~2 d)
    assert rfc5011.next_refresh(tp, T0) == T0 + DAY
    keys, sigs = rrset([k1, zsk], [k1], T0, ttl=600, validity=3 * DAY)
    tp, _ = observe(tp, keys, sigs, T0)
    assert (tp.query_interval, tp.retry_interval) == (3600, 3600)  # never under an hour
    keys, sigs = rrset([k1, zsk], [k1], T0, ttl=100 * DAY, validity=100 * DAY)
    tp, _ = observe(tp, keys, sigs, T0)
    assert (tp.query_interval, tp.retry_interval) == (15 * DAY, DAY)


def test_valid_key_missing_stays_trusted_and_comes_back() -> None:
    k1, k2, zsk = Key(), Key(), Key(256)
    tp = anchored(k1, zsk)
    tp, _ = step(tp, [k1, k2, zsk], [k1], T0 + DAY)
    tp, _ = step(tp, [k1, k2, zsk], [k1], T0 + 32 * DAY)
    tp, codes = step(tp, [k2, zsk], [k2], T0 + 33 * DAY)
    assert codes == ["KEY_MISSING"] and trusted_tags(tp) == {k1.tag, k2.tag}
    tp, codes = step(tp, [k1, k2, zsk], [k2], T0 + 34 * DAY)
    assert codes == ["KEY_PRESENT"] and states(tp)[k1.tag] is KeyState.VALID


def test_self_signed_revocation_ends_trust_and_remove_holddown_removes() -> None:
    k1, k2, zsk = Key(), Key(), Key(256)
    tp = anchored(k1, zsk)
    tp, _ = step(tp, [k1, k2, zsk], [k1], T0 + DAY)
    tp, _ = step(tp, [k1, k2, zsk], [k1], T0 + 32 * DAY)
    r1 = k1.revoked()
    assert r1.tag != k1.tag  # the REVOKE bit changes the tag
    tp, codes = step(tp, [r1, k2, zsk], [r1, k2], T0 + 40 * DAY)
    assert codes == ["KEY_REVOKED"] and trusted_tags(tp) == {k2.tag}
    assert states(tp)[r1.tag] is KeyState.REVOKED
    tp, codes = step(tp, [r1, k2, zsk], [r1, k2], T0 + 60 * DAY)
    assert codes == []
    tp, codes = step(tp, [k2, zsk], [k2], T0 + 71 * DAY)
    assert codes == ["KEY_REMOVED"] and states(tp)[r1.tag] is KeyState.REMOVED
    # A removed key published again without the REVOKE bit is not trusted again.
    tp, codes = step(tp, [k1, k2, zsk], [k2], T0 + 80 * DAY)
    assert codes == [] and trusted_tags(tp) == {k2.tag}


def test_revoke_bit_without_self_signature_is_ignored() -> None:
    k1, k2, zsk = Key(), Key(), Key(256)
    tp = anchored(k1, zsk)
    tp, _ = step(tp, [k1, k2, zsk], [k1], T0 + DAY)
    tp, _ = step(tp, [k1, k2, zsk], [k1], T0 + 32 * DAY)
    tp, codes = step(tp, [k1.revoked(), k2, zsk], [k2], T0 + 40 * DAY)
    assert "KEY_REVOKED" not in codes and k1.tag in trusted_tags(tp)


def test_revoking_the_last_key_fails_closed() -> None:
    """RFC 5011 §2.1: a revoked key is never a trust anchor again, even the last one — an old
    DNSKEY RRset signed by it before the revocation (replayed), or one forged with it (the
    key may have been revoked for being stolen), validates nothing and brings in no new key.
    The trust point stays, its keys given with the REVOKE bit, so that what is under it is
    bogus rather than insecure."""
    from sigchain.core.validate.validator import Evidence, Question, ZoneCut, validate
    from sigchain.core.validate.verdict import Status

    k1, zsk, evil = Key(), Key(256), Key()
    tp = anchored(k1, zsk)
    r1 = k1.revoked()
    tp, codes = step(tp, [r1, zsk], [r1], T0 + DAY)
    assert codes[:2] == ["LAST_KEY_REVOKED", "KEY_REVOKED"] and codes[2:] == ["NOT_VALIDATED"]
    assert states(tp) == {r1.tag: KeyState.REVOKED} and trusted_tags(tp) == {r1.tag}
    replayed, sigs = rrset([k1, zsk, evil], [k1], T0)
    for when in (T0 + 2 * DAY, T0 + 40 * DAY):  # never again, the remove hold-down past too
        tp, events = observe(tp, replayed, sigs, when)
        assert [e.code for e in events] == ["NOT_VALIDATED"], events
        assert evil.tag not in states(tp)
        ev = Evidence(Question(ZONE, dns.rdatatype.DNSKEY), answer=(replayed, sigs),
                      zones=(ZoneCut(ZONE, dnskey=(replayed, sigs)),))
        assert validate(ev, trusted(tp), when).status is Status.BOGUS


def test_a_pending_key_cannot_sign_in_a_new_key() -> None:
    k1, k2, k3, zsk = Key(), Key(), Key(), Key(256)
    tp = anchored(k1, zsk)
    tp, _ = step(tp, [k1, k2, zsk], [k1], T0 + DAY)
    tp2, codes = step(tp, [k2, k3, zsk], [k2], T0 + 2 * DAY)
    assert codes == ["NOT_VALIDATED"] and tp2.keys == tp.keys


def test_holddown_is_at_least_the_dnskey_ttl() -> None:
    k1, k2, zsk = Key(), Key(), Key(256)
    tp = anchored(k1, zsk)
    keys, sigs = rrset([k1, k2, zsk], [k1], T0 + DAY, ttl=3 * DAY)
    tp, _ = observe(tp, keys, sigs, T0 + DAY, Timers(add_holddown=DAY))
    assert {k.tag: k.holddown for k in tp.keys}[k2.tag] == 3 * DAY


def test_expired_signature_teaches_nothing() -> None:
    k1, k2, zsk = Key(), Key(), Key(256)
    tp = anchored(k1, zsk)
    keys, sigs = rrset([k1, k2, zsk], [k1], T0, validity=2 * DAY)
    tp2, events = observe(tp, keys, sigs, T0 + 5 * DAY)
    assert [e.code for e in events] == ["NOT_VALIDATED"] and tp2.keys == tp.keys


# -- ManagedAnchors (services/anchors5011.py): the state file -----------------------------------


def fetcher(published: list[Key], signers: list[Key], at: int) -> anchors5011.Fetch:
    keys, sigs = rrset(published, signers, at)
    return lambda zone: (keys, sigs)


def test_managed_state_survives_a_restart(tmp_path: Path) -> None:
    k1, k2, zsk = Key(), Key(), Key(256)
    path = str(tmp_path / "anchors.state")
    logged: list[str] = []
    managed = anchors5011.ManagedAnchors(path, [k1.ds()], T0, log=logged.append)
    assert [r.rdtype for r in managed.trusted(T0)] == [dns.rdatatype.DS]
    managed.refresh(fetcher([k1, zsk], [k1], T0), T0)
    managed.refresh(fetcher([k1, k2, zsk], [k1], T0 + DAY), T0 + DAY)
    assert any(line.startswith(f"trust anchor .: key {k2.tag}/13 new: add hold-down") for line in logged)
    assert managed.next_refresh_at == T0 + 2 * DAY
    # Not due yet: nothing is asked.
    assert managed.refresh(lambda zone: pytest.fail("asked before due"), T0 + DAY + 60) == []
    again = anchors5011.ManagedAnchors(path, [k1.ds()], T0 + 2 * DAY)
    assert again.points == managed.points
    assert {dns.dnssec.key_id(rd) for r in again.trusted(T0) for rd in r} == {k1.tag}
    events = again.refresh(fetcher([k1, k2, zsk], [k1], T0 + 32 * DAY), T0 + 32 * DAY)
    assert [e.code for e in events] == ["KEY_VALID"]
    third = anchors5011.ManagedAnchors(path, [k1.ds()], T0 + 33 * DAY)
    assert {dns.dnssec.key_id(rd) for r in third.trusted(T0) for rd in r} == {k1.tag, k2.tag}


def test_failed_fetch_is_logged_and_kept(tmp_path: Path) -> None:
    k1 = Key()
    path = str(tmp_path / "anchors.state")
    managed = anchors5011.ManagedAnchors(path, [k1.ds()], T0)

    def down(zone: dns.name.Name) -> tuple[None, None]:
        raise OperationalError("127.0.0.9: timed out")

    events = managed.refresh(down, T0)
    assert [e.code for e in events] == ["REFRESH_FAILED"] and "timed out" in str(events[0])
    assert anchors5011.read_state(path)[0][ZONE].failures == 1


def test_damaged_state_file_names_its_line(tmp_path: Path) -> None:
    k1, zsk = Key(), Key(256)
    path = tmp_path / "anchors.state"
    managed = anchors5011.ManagedAnchors(str(path), [k1.ds()], T0)
    managed.refresh(fetcher([k1, zsk], [k1], T0), T0)
    good = path.read_text().splitlines()
    assert len(good) == 3  # header, trust point, key
    key = f'"dnskey": "{k1.dnskey.to_text()}"'
    cases = {
        "{not json": "not JSON",
        '{"key": ".", "state": "trusted", "since": 1, "holddown": 0, ' + key + "}":
            "unknown key state 'trusted'",
        '{"key": ".", "state": "valid", "since": -5, "holddown": 0, ' + key + "}":
            "'since' must be a non-negative integer",
        '{"key": ".", "state": "valid", "since": 5, "holddown": 0, "dnskey": "257 3 8 !"}':
            "bad DNSKEY",
        '{"key": "example.", "state": "valid", "since": 5, "holddown": 0, ' + key + "}":
            "before its trust_point line",
        '["a list"]': "expected a JSON object",
    }
    for line, message in cases.items():
        path.write_text("\n".join([*good[:2], line]) + "\n")
        with pytest.raises(InputError, match=message) as err:
            anchors5011.ManagedAnchors(str(path), [k1.ds()], T0)
        assert err.value.exit_code == 2 and str(err.value).startswith(f"{path}:3: ")
    path.write_text("")
    with pytest.raises(InputError, match="empty"):
        anchors5011.ManagedAnchors(str(path), [k1.ds()], T0)


def test_unwritable_state_file_is_an_io_failure(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(OperationalError) as err:
        anchors5011.ManagedAnchors(str(tmp_path / "file" / "anchors.state"), [Key().ds()], T0)
    assert err.value.exit_code == 3


def test_negative_anchors_persist_and_recheck(tmp_path: Path) -> None:
    path = str(tmp_path / "anchors.state")
    managed = anchors5011.ManagedAnchors(path, [Key().ds()], T0)
    broken = dns.name.from_text("broken.test.")
    managed.keep_negative(NegativeAnchors().add(broken, T0, lifetime=3600), {})
    again = anchors5011.ManagedAnchors(path, [Key().ds()], T0)
    assert again.negative.next_event() == T0 + 300
    assert again.negative.is_negative(dns.name.from_text("www.broken.test."), T0 + 10)
    ntas, _, dropped = again.negative.recheck(lambda name: Status.BOGUS, T0 + 300)
    assert dropped == ()
    ntas, _, dropped = ntas.recheck(lambda name: Status.SECURE, T0 + 600)
    assert [name for name, _ in dropped] == [broken]
    again.keep_negative(ntas, {})
    assert not anchors5011.ManagedAnchors(path, [Key().ds()], T0).negative.is_negative(broken, T0 + 700)


def test_a_worker_reads_the_state_and_never_rewrites_it(tmp_path: Path) -> None:
    """Only the main process writes the state: a worker's rewrite of what it read (on its
    SIGHUP) could undo what the main process saved meanwhile (a refresh, an NTA ended)."""
    path = tmp_path / "anchors.state"
    k1, k2 = Key(), Key()
    anchors5011.ManagedAnchors(str(path), [k1.ds()], T0)
    before = path.stat()
    worker = anchors5011.ManagedAnchors(str(path), [k1.ds(), k2.ds()], T0 + 10, writer=False)
    after = path.stat()  # a write replaces the file (a new inode), even with the same text
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert len(worker.points) == 1
    anchors5011.ManagedAnchors(str(path), [k1.ds()], T0 + 20)  # as the main process does
    assert path.stat().st_ino != before.st_ino


def test_an_ended_nta_reads_as_a_long_expired_one_to_an_older_reader(tmp_path: Path) -> None:
    """The configured NTAs that ended are kept as `nta` records that expired at 0: the
    release before, which knows no such record, takes them for expired NTAs (and starts)."""
    path = tmp_path / "anchors.state"
    managed = anchors5011.ManagedAnchors(str(path), [Key().ds()], T0)
    broken = dns.name.from_text("broken.test.")
    managed.keep_negative(managed.negative, {broken: 3600})
    (line,) = [json.loads(x) for x in path.read_text().splitlines() if '"nta"' in x]
    assert (line["nta"], line["added"], line["expiry"], line["ended"]) == ("broken.test.", 0, 0, 3600)
    _, ntas, ended = anchors5011.read_state(str(path))
    assert not ntas.entries and ended == {broken: 3600}


def test_configuration_decides_the_zones_and_the_file_their_keys(tmp_path: Path) -> None:
    k1, k2, zsk = Key(), Key(), Key(256)
    path = str(tmp_path / "anchors.state")
    managed = anchors5011.ManagedAnchors(path, [k1.ds()], T0)
    managed.refresh(fetcher([k1, zsk], [k1], T0), T0)
    # Restarted with another initial anchor for the root: the learned keys win (as BIND's
    # managed-keys database does), and a newly configured zone starts from its anchor.
    other = dns.rrset.from_rdata_list("test.", TTL, [k2.dnskey])
    logged: list[str] = []
    again = anchors5011.ManagedAnchors(path, [k2.ds(), other], T0 + 60, log=logged.append)
    assert {dns.dnssec.key_id(rd) for r in again.trusted(T0) for rd in r
            if r.name == ZONE} == {k1.tag}
    assert [r.name for r in again.trusted(T0)] == [ZONE, dns.name.from_text("test.")]
    # Dropped from the configuration: dropped from the file, and said.
    anchors5011.ManagedAnchors(path, [other], T0 + 120, log=logged.append)
    assert logged == [f"trust anchor .: no longer configured; dropped from {path}"]
    assert list(anchors5011.read_state(path)[0]) == [dns.name.from_text("test.")]


def test_a_garbage_rrsig_does_not_stretch_the_holddown_or_the_interval() -> None:
    """The Original TTL comes from the RRSIGs, not from the largest any of them claims: one
    that does not verify, beside one that does, must not put a new key's add hold-down (or the
    next refresh) decades away."""
    k1, k2, zsk = Key(), Key(), Key(256)
    tp = anchored(k1, zsk)
    keys, sigs = rrset([k1, k2, zsk], [k1], T0 + DAY)
    good = next(iter(sigs))
    garbage = good.replace(original_ttl=2**31 - 1, signature=b"\0" * 64)  # type: ignore[attr-defined]
    both = dns.rrset.from_rdata_list(ZONE, TTL, [good, garbage])
    tp, events = observe(tp, keys, both, T0 + DAY)
    assert [e.code for e in events] == ["KEY_ADDPEND"]
    assert {k.tag: k.holddown for k in tp.keys}[k2.tag] == 30 * DAY
    assert tp.query_interval == TTL // 2


def test_a_clock_that_went_back_does_not_put_off_the_next_refresh() -> None:
    """Primed with the clock a year ahead, then corrected: the refresh is due at once, not a
    year later (RFC 5011 §2.3: at least one query per interval)."""
    k1, zsk = Key(), Key(256)
    tp = anchored(k1, zsk, T0 + 365 * DAY)
    assert rfc5011.next_refresh(tp, T0) == T0
    assert rfc5011.next_refresh(tp, T0 + 365 * DAY) == tp.next_refresh  # as planned otherwise
