"""`sigchain keys revoke` (RFC 5011 revocation of a trust point's KSK): the Revoke time in the
key state and the K-files, the revoked key published with the REVOKE bit and self-signed (our
signer and dnssec-signzone -S agree, dnssec-verify accepts), an RFC 5011 resolver state drops
it, the plan removes it after the hold-down; refused for the only KSK."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import dns.dnssec
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone
import pytest

from sigchain.core.dnssec import algorithms, keyfile, timefmt
from sigchain.core.rollover import revoke
from sigchain.core.rollover.planner import plan
from sigchain.core.rollover.policy import KeyPolicy, KeySpec
from sigchain.core.rollover.states import Key
from sigchain.core.validate import rfc5011
from sigchain.edge import keystore
from sigchain.model.keys import FLAG_REVOKE, KeyRole, KeyTiming
from sigchain.services import keystate
from tests import clockshift
from tests.conftest import need, sc
from tests.unit.test_keys_run import FAST, ZONE, ZONE_TEXT, _at, _kdir, _snapshot
from tests.unit.test_validator_limits import colliding_rsa_key

T0 = timefmt.parse_timestamp14("20260101000000")
DAY = 86400
ORIGIN = dns.name.from_text(ZONE)


def _ksk(kdir: Path) -> int:
    """A KSK made (and in use) since T0, as an operator adds one before a revocation."""
    kdir.mkdir(mode=0o700, exist_ok=True)
    alg = algorithms.get(13)
    kp = keystore.new_pair(ORIGIN, alg, KeyRole.KSK, str(kdir),
                           KeyTiming(created=T0, publish=T0, activate=T0))
    keystore.write_new_pair(str(kdir), kp, alg)
    return kp.key_tag


def _apex(path: Path) -> tuple[dns.rrset.RRset, dns.rrset.RRset]:
    zone = dns.zone.from_file(str(path), ORIGIN, relativize=False)
    node = zone.find_node(ORIGIN)
    keys = node.find_rdataset(dns.rdataclass.IN, dns.rdatatype.DNSKEY)
    sigs = node.find_rdataset(dns.rdataclass.IN, dns.rdatatype.RRSIG, dns.rdatatype.DNSKEY)
    return (dns.rrset.from_rdata_list(ORIGIN, keys.ttl, list(keys)),
            dns.rrset.from_rdata_list(ORIGIN, sigs.ttl, list(sigs)))


def test_revoked_ksk_is_published_self_signed_and_dropped_by_a_5011_resolver(
        tmp_path: Path) -> None:
    kdir, policy = _kdir(tmp_path), tmp_path / "fast.toml"
    policy.write_text(FAST.replace('lifetime = "60d"', 'lifetime = "unlimited"'))
    old, other = _ksk(kdir), _ksk(kdir)
    sc("keys", "run", ZONE, "--policy", policy, "--keys", kdir, "--at", _at(T0), check=True)
    now = T0 + 3 * DAY
    done = json.loads(sc("keys", "revoke", ZONE, "--key", old, "--keys", kdir, "--at",
                         _at(now), "--json", check=True).stdout)
    revoked_tag = done["revoked_tag"]
    assert revoked_tag != old and done["leaves_at"] == now + 2 * 3600 + 300 + 30 * DAY
    assert keystore.load_pair(str(kdir / f"K{ZONE}+013+{old:05d}")).timing.revoke == now
    status = json.loads(sc("keys", "status", ZONE, "--keys", kdir, "--at", _at(now), "--json",
                           check=True).stdout)
    row = next(k for k in status["keys"] if k["tag"] == old)
    assert (row["revoked"], row["revoked_tag"], row["goal"]) == (now, revoked_tag, "hidden")
    text = sc("keys", "status", ZONE, "--keys", kdir, "--at", _at(now), check=True).stdout
    assert f"revoked since {timefmt.format_utc(now)} (published as tag {revoked_tag})" in text

    (tmp_path / "z.db").write_text(ZONE_TEXT)
    signed = tmp_path / "z.signed"
    sc("sign", tmp_path / "z.db", "--keys", kdir, "--at", _at(now + 3600), "-o", signed,
       check=True)
    dnskey, sigs = _apex(signed)
    flags = {dns.dnssec.key_id(rd): rd.flags for rd in dnskey}
    assert flags[revoked_tag] == 257 | FLAG_REVOKE and flags[other] == 257 and old not in flags
    self_sig = [s for s in sigs if s.key_tag == revoked_tag]
    assert self_sig, "the revoked key must sign the DNSKEY RRset itself"
    dns.dnssec.validate_rrsig(dnskey, self_sig[0], {ORIGIN: dnskey}, now=now + 3600)
    env = clockshift.environment(clockshift.build(tmp_path), now + 7200)
    verify = subprocess.run([need("dnssec-verify"), "-o", ZONE, str(signed)],
                            capture_output=True, text=True, env=env)
    assert verify.returncode == 0, verify.stderr
    assert "KSKs: 1 active, 0 stand-by, 1 revoked" in verify.stdout
    bind = subprocess.run([need("dnssec-signzone"), "-S", "-K", str(kdir), "-o", ZONE, "-f",
                           str(tmp_path / "z.bind"), str(tmp_path / "z.db")],
                          capture_output=True, text=True, cwd=tmp_path, env=env)
    assert bind.returncode == 0, bind.stderr
    assert set(_apex(tmp_path / "z.bind")[0]) == set(dnskey)  # BIND reads Revoke: as we do

    # A resolver tracking the trust point (RFC 5011) with both KSKs as anchors drops it.
    anchors = [rd.replace(flags=257) if rd.flags & FLAG_REVOKE else rd
               for rd in dnskey if rd.flags & 1]
    point = rfc5011.initial(ORIGIN, anchors, T0)
    point, events = rfc5011.observe(point, dnskey, sigs, now + 3600)
    assert [e.code for e in events if e.code == "KEY_REVOKED"] == ["KEY_REVOKED"]
    assert {k.tag for k in point.trusted_keys} == {other}

    # After the hold-down the plan removes it; the signed zone no longer carries it.
    later = done["leaves_at"]
    ran = json.loads(sc("keys", "run", ZONE, "--policy", policy, "--keys", kdir, "--at",
                        _at(later), "--json", check=True).stdout)
    assert {(a["kind"], a["key"]) for a in ran["actions"]} >= {("retire", str(old)),
                                                               ("remove", str(old))}
    sc("sign", tmp_path / "z.db", "--keys", kdir, "--at", _at(later + 3600), "-o", signed,
       check=True)
    assert {dns.dnssec.key_id(rd) for rd in _apex(signed)[0] if rd.flags & 1} == {other}


def test_the_only_ksk_is_never_revoked_and_nothing_is_written(tmp_path: Path) -> None:
    kdir = _kdir(tmp_path)
    ran = json.loads(sc("keys", "run", ZONE, "--policy", "ksk-zsk", "--keys", kdir, "--at",
                        _at(T0), "--json", check=True).stdout)
    ksk = next(k for k in ran["keys"] if k["role"] == "ksk")
    zsk = next(k for k in ran["keys"] if k["role"] == "zsk")
    before = _snapshot(kdir)
    out = sc("keys", "revoke", ZONE, "--key", ksk["tag"], "--keys", kdir, "--at",
             _at(T0 + 10 * DAY))
    assert out.returncode == 4 and f"key {ksk['id']} is the only KSK" in out.stderr
    zsk_out = sc("keys", "revoke", ZONE, "--key", zsk["tag"], "--keys", kdir)
    assert zsk_out.returncode == 2 and "is a ZSK" in zsk_out.stderr
    assert _snapshot(kdir) == before


def test_another_ksk_still_rumoured_is_not_enough() -> None:
    p = KeyPolicy("t", keys=(KeySpec("ksk", 13, None), KeySpec("zsk", 13, None)))
    a = Key("a", "ksk", 13, None, T0, published=T0, active=T0)
    b = Key("b", "ksk", 13, None, T0 + DAY, published=T0 + DAY, active=T0 + DAY)
    keys = [a, b, Key("z", "zsk", 13, None, T0, published=T0, active=T0)]
    assert "only KSK" in (revoke.refusal(keys, "a", p, T0 + DAY + 60) or "")
    assert revoke.refusal(keys, "a", p, T0 + 2 * DAY) is None
    # A DS for the revoked key may be cached: the other's DS must be in every cache too.
    with_ds = [a.replace(ds_published=T0), b, keys[2]]
    assert "and DS" in (revoke.refusal(with_ds, "a", p, T0 + 2 * DAY) or "")


def test_plan_withdraws_a_revoked_keys_ds_and_removes_it_after_the_hold_down() -> None:
    p = KeyPolicy("t", keys=(KeySpec("ksk", 13, None), KeySpec("zsk", 13, None)))
    gone_at = T0 + 5 * DAY
    a = Key("a", "ksk", 13, None, T0, published=T0, active=T0, cds_published=T0,
            ds_published=T0, revoked=gone_at)
    b = Key("b", "ksk", 13, None, T0, published=T0, active=T0, cds_published=T0,
            ds_published=T0)
    keys = [a, b, Key("z", "zsk", 13, None, T0, published=T0, active=T0)]
    first = plan(keys, p, [], gone_at)
    kinds = [(x.kind, x.key) for x in first.actions]
    assert ("withdraw-cds", "a") in kinds and ("await-ds-gone", "a") in kinds
    assert not any(k == "create" for k, _ in kinds)  # b carries on the KSK line
    out = revoke.removal_time(a, p)
    assert first.wake_at is not None and first.wake_at <= out
    assert ("remove", "a") not in [(x.kind, x.key) for x in plan(keys, p, [], out - 1).actions]
    assert ("remove", "a") in [(x.kind, x.key) for x in plan(keys, p, [], out).actions]


def test_a_version_1_key_state_is_read_and_upgraded(tmp_path: Path) -> None:
    import sqlite3

    kdir = _kdir(tmp_path)
    sc("keys", "run", ZONE, "--policy", "default", "--keys", kdir, "--at", _at(T0), check=True)
    db = kdir / keystate.DB_NAME
    conn = sqlite3.connect(db)
    conn.execute("ALTER TABLE keys DROP COLUMN revoked")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    assert len(keystate.load(str(kdir), ZONE).keys) == 1  # read only: as it is
    sc("keys", "run", ZONE, "--policy", "default", "--keys", kdir, "--at", _at(T0 + DAY),
       check=True)
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == keystate.SCHEMA_VERSION
    assert "revoked" in {row[1] for row in conn.execute("PRAGMA table_info(keys)")}
    conn.close()


def _first_draw_tagged(monkeypatch: pytest.MonkeyPatch, tag: int) -> list[object]:
    """The DNSKEYs new_pair makes from now on: the first (RSA) one with key tag `tag`."""
    real, drawn = keyfile.make_dnskey, []

    def make_dnskey(alg: algorithms.Algorithm, private: object, flags: int) -> object:
        drawn.append(colliding_rsa_key(tag, flags) if not drawn else real(alg, private, flags))
        return drawn[-1]

    monkeypatch.setattr(keyfile, "make_dnskey", make_dnskey)
    return drawn


def test_a_new_key_never_takes_the_tag_an_old_key_gets_once_revoked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """dnssec-keygen's collision rule: a new key's tag is neither an old key's tag nor the tag
    that key has once revoked (else revoking the old one would publish two keys of one tag).
    The first key drawn here is made to have the old KSK's revoked tag; it must be passed over."""
    kdir = tmp_path / "k"
    alg = algorithms.get(8)
    old = keystore.new_pair(ORIGIN, alg, KeyRole.KSK, str(kdir), KeyTiming(created=T0), bits=1024)
    keystore.write_new_pair(str(kdir), old, alg)
    revoked_tag = dns.dnssec.key_id(keyfile.revoked(old.dnskey))
    assert (8, revoked_tag) in keystore.existing_tags(str(kdir), ORIGIN)
    drawn = _first_draw_tagged(monkeypatch, revoked_tag)
    new = keystore.new_pair(ORIGIN, alg, KeyRole.ZSK, str(kdir), KeyTiming(created=T0), bits=1024)
    assert dns.dnssec.key_id(drawn[0]) == revoked_tag and len(drawn) == 2
    assert new.key_tag not in (old.key_tag, revoked_tag)


def test_a_new_key_avoids_the_tags_it_is_told_to(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`avoid`: tags of the zone's keys kept elsewhere (the lab's decoy KSK and the zone's own
    keys live in two directories); a first draw with such a tag is passed over."""
    alg, drawn = algorithms.get(8), _first_draw_tagged(monkeypatch, 4242)
    new = keystore.new_pair(ORIGIN, alg, KeyRole.KSK, str(tmp_path / "k"), KeyTiming(created=T0),
                            bits=1024, avoid=frozenset({(8, 4242)}))
    assert len(drawn) == 2 and new.key_tag != 4242
